package train

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
)

// Config sets up one worker's Coordinator.
type Config struct {
	// Self is this worker.
	Self gridmind.NodeID
	// Key is Self's node key: it signs this worker's commitments, parts and
	// reduced parts, which every peer checks (see auth.go).
	Key ed25519.PrivateKey
	// Job names the job; every signature covers it, so a statement made in
	// one job is worthless in another.
	Job string
	// Workers is the job's allow-list (its leased workers, present or
	// future); messages from anyone else are refused. Self must be in it.
	Workers []gridmind.NodeID
	// Initial is the state of the first round for a worker that starts or
	// resumes the job; nil for a worker joining a running job, which
	// fetches the state from a peer.
	Initial *GlobalState
	// NumParams is the length of the flat parameter vector.
	NumParams int
	// BlockSize is the quantization block (and the grain of the part split);
	// 0 means DefaultBlockSize.
	BlockSize int
	// Codec is how pseudo-gradients and combined parts travel; 0 means
	// CodecInt8. Combined parts go in the same codec as the parts, so int4
	// halves both directions. With CodecInt4 or a top-k codec (TopKCodec) a
	// reducer also keeps an error feedback of its own, so that requantizing
	// a mean to 7 levels, or re-sparsifying it, does not drop its small
	// elements round after round; with CodecInt8's 127 levels the combined
	// parts go without, as they always have.
	Codec Codec
	// Combiner merges a part's contributions; nil means Mean.
	Combiner Combiner
	// Screen is what a reducer checks before combining (see screen.go);
	// the zero value checks nothing. Network jobs use DefaultScreen.
	Screen Screen
	// Outer is the outer optimizer; zero means DefaultOuter.
	Outer Nesterov
	// Timing holds the deadlines; zero fields take DefaultTiming's values.
	Timing Timing
	// TrainingLeft, if set, says how much longer this worker's training of
	// round still needs (0: unknown). A worker left out of a round while
	// still training tells the job (MsgJoin's Lag), so that leaders wait
	// for a member that is steadily slower instead of leaving it out of
	// every round. Without it the coordinator estimates from its own past
	// training times.
	TrainingLeft func(round uint64) time.Duration
}

// Timing holds the coordinator's deadlines. The waits adapt to what the
// worker observed in earlier rounds, inside fixed bounds, so a job on fast
// links does not wait like one on slow links and a straggler does not hold
// everybody back for long.
type Timing struct {
	// ReadySlack is the fraction of the observed training time that a
	// leader waits for stragglers after the first "ready" arrived.
	ReadySlack float64
	// MinReadyWait and MaxReadyWait bound that wait.
	MinReadyWait, MaxReadyWait time.Duration
	// LeaderGrace: a worker whose "ready" went unanswered for twice its
	// estimate of the leader's ready wait (at most MaxReadyWait) plus
	// LeaderGrace sends it to the next leader in order.
	LeaderGrace time.Duration
	// ResendEvery repeats an unanswered "ready" to the same leader, which
	// recovers a lost message or announcement.
	ResendEvery time.Duration
	// ExchangeSlack is the multiple of the observed all-reduce time that a
	// reducer waits for parts (and a participant waits twice that for a
	// reduced part before trying the next reducer).
	ExchangeSlack float64
	// MinExchangeWait and MaxExchangeWait bound that wait.
	MinExchangeWait, MaxExchangeWait time.Duration
}

// DefaultTiming suits workers on the internet training for minutes per round.
func DefaultTiming() Timing {
	return Timing{
		ReadySlack:      0.25,
		MinReadyWait:    2 * time.Second,
		MaxReadyWait:    60 * time.Second,
		LeaderGrace:     5 * time.Second,
		ResendEvery:     2 * time.Second,
		ExchangeSlack:   3,
		MinExchangeWait: 3 * time.Second,
		MaxExchangeWait: 2 * time.Minute,
	}
}

// WithDefaults returns t with its zero fields set to DefaultTiming's.
func (t Timing) WithDefaults() Timing { return t.withDefaults() }

func (t Timing) withDefaults() Timing {
	d := DefaultTiming()
	if t.ReadySlack <= 0 {
		t.ReadySlack = d.ReadySlack
	}
	if t.MinReadyWait <= 0 {
		t.MinReadyWait = d.MinReadyWait
	}
	if t.MaxReadyWait <= 0 {
		t.MaxReadyWait = max(d.MaxReadyWait, t.MinReadyWait)
	}
	if t.LeaderGrace <= 0 {
		t.LeaderGrace = d.LeaderGrace
	}
	if t.ResendEvery <= 0 {
		t.ResendEvery = d.ResendEvery
	}
	if t.ExchangeSlack <= 0 {
		t.ExchangeSlack = d.ExchangeSlack
	}
	if t.MinExchangeWait <= 0 {
		t.MinExchangeWait = d.MinExchangeWait
	}
	if t.MaxExchangeWait <= 0 {
		t.MaxExchangeWait = max(d.MaxExchangeWait, t.MinExchangeWait)
	}
	return t
}

// LeaderTimeout is the longest a worker waits for an announcement before it
// turns to the next leader: it exceeds the longest wait a live leader can
// choose. The wait actually used adapts to observed round times (twice the
// expected ready wait plus LeaderGrace), so a dead leader costs seconds; an
// overtaken live leader's announcement is still accepted.
func (t Timing) LeaderTimeout() time.Duration { return t.MaxReadyWait + t.LeaderGrace }

func (c *Config) normalize() error {
	if c.Self == "" {
		return errors.New("train: config without Self")
	}
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("train: config without a signing key")
	}
	if id := gridmind.NodeIDFromPublicKey(c.Key.Public().(ed25519.PublicKey)); id != c.Self {
		return fmt.Errorf("train: key is %s's, not self %s's", id.Short(), c.Self.Short())
	}
	if len(c.Job) > MaxJobLen {
		return fmt.Errorf("train: job name of %d bytes (limit %d)", len(c.Job), MaxJobLen)
	}
	if err := c.Screen.Validate(); err != nil {
		return err
	}
	if c.NumParams <= 0 {
		return fmt.Errorf("train: NumParams %d must be positive", c.NumParams)
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.BlockSize < 0 || c.BlockSize > MaxBlockSize {
		return fmt.Errorf("train: block size %d outside 1..%d", c.BlockSize, MaxBlockSize)
	}
	if c.Codec == 0 {
		c.Codec = CodecInt8
	}
	if !c.Codec.Quantizes() && c.Codec != CodecFloat32 {
		return fmt.Errorf("train: unknown codec %d", c.Codec)
	}
	if c.Combiner == nil {
		c.Combiner = Mean{}
	}
	if c.Outer == (Nesterov{}) {
		c.Outer = DefaultOuter()
	}
	if err := c.Outer.Validate(); err != nil {
		return err
	}
	c.Timing = c.Timing.withDefaults()
	if c.Timing.MinReadyWait > c.Timing.MaxReadyWait || c.Timing.MinExchangeWait > c.Timing.MaxExchangeWait {
		return errors.New("train: a minimum wait exceeds its maximum")
	}
	c.Workers = sortedUnique(c.Workers)
	if len(c.Workers) > MaxWorkers {
		return fmt.Errorf("train: %d workers (limit %d)", len(c.Workers), MaxWorkers)
	}
	found := false
	for _, w := range c.Workers {
		found = found || w == c.Self
	}
	if !found {
		return fmt.Errorf("train: self %s is not among the job's %d workers", c.Self.Short(), len(c.Workers))
	}
	if s := c.Initial; s != nil {
		if len(s.Theta) != c.NumParams || len(s.Velocity) != c.NumParams {
			return fmt.Errorf("train: initial state has %d weights, want %d", len(s.Theta), c.NumParams)
		}
		if len(s.Participants) == 0 {
			return errors.New("train: initial state names no participants")
		}
	}
	return nil
}

// ewma is an exponentially weighted moving average of durations.
type ewma struct {
	value float64
	n     int
}

func (e *ewma) observe(d time.Duration) {
	if d < 0 {
		return
	}
	if e.n == 0 {
		e.value = float64(d)
	} else {
		e.value = 0.7*e.value + 0.3*float64(d)
	}
	e.n++
}

// atLeast raises the average to d if it is below.
func (e *ewma) atLeast(d time.Duration) {
	if e.n == 0 || e.value < float64(d) {
		e.value = float64(d)
		e.n = max(e.n, 1)
	}
}

func clampDuration(d, lo, hi time.Duration) time.Duration { return max(lo, min(hi, d)) }
