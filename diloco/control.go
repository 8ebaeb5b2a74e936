package diloco

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// Control messages (ready, join, announce, done) travel as signed
// gridmind envelopes so that a leader's announcement or a "done" hash can
// be checked by anyone who relays it.
const (
	envelopeType = "train"
	// MaxClockSkew is how far an envelope's timestamp may be from the
	// receiver's clock.
	MaxClockSkew = 2 * time.Minute
	replayWindow = 4096
)

type controlBody struct {
	Job string `json:"job"`
	Msg []byte `json:"msg"`
}

type signer struct {
	key ed25519.PrivateKey
	job string
	mu  sync.Mutex
	seq uint64
}

func newSigner(key ed25519.PrivateKey, job string, now time.Time) *signer {
	// Start the sequence at the clock so a restarted worker's numbers are
	// higher than before its restart, without persisting a counter.
	return &signer{key: key, job: job, seq: uint64(now.UnixNano())}
}

func (s *signer) seal(m train.Message, now time.Time) ([]byte, error) {
	raw, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	return gridmind.SignEnvelope(s.key, envelopeType, seq, now, controlBody{Job: s.job, Msg: raw})
}

// opener checks control envelopes: signature, clock skew, job, replay,
// and that the signer is the message's sender.
type opener struct {
	job     string
	allowed map[gridmind.NodeID]bool // the job's workers; nil allows any signer
	mu      sync.Mutex
	seen    map[gridmind.NodeID]*seqWindow
}

type seqWindow struct {
	max  uint64
	seen map[uint64]bool
}

func newOpener(job string, workers []gridmind.NodeID) *opener {
	o := &opener{job: job, seen: map[gridmind.NodeID]*seqWindow{}}
	if len(workers) > 0 {
		o.allowed = map[gridmind.NodeID]bool{}
		for _, w := range workers {
			o.allowed[w] = true
		}
	}
	return o
}

func (o *opener) open(data []byte, now time.Time) (train.Message, error) {
	env, err := gridmind.OpenEnvelope(data, now, MaxClockSkew)
	if err != nil {
		return train.Message{}, err
	}
	if env.Type != envelopeType {
		return train.Message{}, fmt.Errorf("%w: envelope type %q", gridmind.ErrMalformed, env.Type)
	}
	var body controlBody
	if err := env.Decode(&body); err != nil {
		return train.Message{}, err
	}
	if o.allowed != nil && !o.allowed[env.From] {
		// Checked before the replay window so strangers cannot fill it.
		return train.Message{}, fmt.Errorf("%w: %s is not a worker of job %q", gridmind.ErrBadSignature, env.From.Short(), o.job)
	}
	if body.Job != o.job {
		return train.Message{}, fmt.Errorf("control message for job %q, this is %q", body.Job, o.job)
	}
	m, err := train.UnmarshalMessage(body.Msg)
	if err != nil {
		return train.Message{}, err
	}
	if m.From != env.From {
		return train.Message{}, fmt.Errorf("%w: %s signed a message from %s", gridmind.ErrBadSignature, env.From.Short(), m.From.Short())
	}
	if m.Bulk() {
		return train.Message{}, fmt.Errorf("%w: %s in a control envelope", gridmind.ErrMalformed, m.Type)
	}
	if err := o.checkReplay(env.From, env.Seq); err != nil {
		return train.Message{}, err
	}
	return m, nil
}

func (o *opener) checkReplay(from gridmind.NodeID, seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	w := o.seen[from]
	if w == nil {
		if len(o.seen) > 4*train.MaxWorkers {
			return fmt.Errorf("%w: too many senders", gridmind.ErrReplay)
		}
		w = &seqWindow{seen: map[uint64]bool{}}
		o.seen[from] = w
	}
	if w.seen[seq] || (w.max > replayWindow && seq <= w.max-replayWindow) {
		return fmt.Errorf("%w: %s seq %d", gridmind.ErrReplay, from.Short(), seq)
	}
	w.seen[seq] = true
	if seq > w.max {
		w.max = seq
		if len(w.seen) > 2*replayWindow {
			for s := range w.seen {
				if w.max > replayWindow && s <= w.max-replayWindow {
					delete(w.seen, s)
				}
			}
		}
	}
	return nil
}
