package diloco

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// Config runs one worker of a DiLoCo job.
type Config struct {
	// Job names the job; control messages of other jobs are refused.
	Job string
	// Key signs this worker's control messages; its NodeID must be Transport.Self().
	Key ed25519.PrivateKey
	// Trainer is the local model. The worker owns it while Run runs.
	Trainer gridmind.Trainer
	// Batches returns this worker's data for a round.
	Batches func(round uint64) gridmind.BatchSource
	// InnerSteps is H, the optimizer steps per round.
	InnerSteps int
	// Rounds ends the job: Run returns once the global state reaches this round.
	Rounds uint64
	// Transport carries the job's traffic.
	Transport Transport
	// Workers is the job's allow-list (every leased worker, present or future).
	Workers []gridmind.NodeID
	// Initial is the state to start from (see InitialState, LoadCheckpoint);
	// nil joins a running job by fetching the state from a peer.
	Initial *train.GlobalState
	// Protocol sets the quantization, combine rule, outer optimizer and
	// timing; its Self, Workers, Initial and NumParams are filled in here.
	Protocol train.Config

	// Eval, if set, measures the loss of the global weights after a round
	// (the trainer holds them when it is called). EvalBatches is a shortcut
	// for Trainer.Evaluate on those batches.
	Eval        func(ctx context.Context, t gridmind.Trainer) (float64, error)
	EvalBatches []gridmind.Batch
	// EvalEvery evaluates after every EvalEvery-th round and after the
	// last; 0 means only after the last.
	EvalEvery int
	// Progress, if set, is called after each round this worker completes,
	// from the worker's goroutine.
	Progress func(Progress)
	// OnRejected and OnEvidence, if set, hear of every rejected
	// contribution and every verified breach (for metrics and the ledger),
	// from the worker's goroutine.
	OnRejected func(train.Rejected)
	OnEvidence func(*train.Evidence)
	// OnState, if set, hears each global state this worker reaches at the
	// end of a round (a repaired round's too), from the worker's
	// goroutine. Nothing modifies a state once reached (each round makes
	// a new one), and neither may the callee.
	OnState func(*train.GlobalState)
	// OnRefused, if set, hears the reason of every inbound message refused
	// (the reasons of Summary.Refused), from any goroutine.
	OnRefused func(reason string)
	// Tamper, if set, replaces each message the protocol sends with what it
	// returns. Only adversaries set it: the byzantine benchmark and tests
	// use it to make a worker deviate anywhere in the round.
	Tamper func(train.Message) []train.Message
	// Audit, if set, makes the worker commit to every round it trains
	// (a signed verify.Commitment on its "done") and keep what an auditor
	// needs to re-run it; it also keeps the commitments peers send (see
	// audit.go). The caller serves it to auditors.
	Audit *AuditLog
	// Shirk, if positive, makes the worker an adversary the reducers'
	// screen does not see: it runs only InnerSteps−Shirk inner steps and
	// scales its pseudo-gradient up to the size of a full round's, while
	// committing to InnerSteps. Only the demo and tests set it.
	Shirk int
	// Overlap hides the round's communication behind computation: once
	// round r's membership is announced, this worker's trainer goes on to
	// round r+1's inner steps while round r's all-reduce runs, starting
	// from its own estimate of θ_{r+1} (θ_r stepped by the outer optimizer
	// with its own Δ_r); the Δ of those steps is applied to the real
	// θ_{r+1} (see train.Coordinator.TrainingDoneFrom). Without it the
	// trainer idles from its "ready" until the round completes. Every
	// worker of a job should use the same setting, or their rounds drift
	// apart in time (the result stays correct, only slower).
	Overlap bool
	// MaxInnerSteps, above InnerSteps, makes the inner steps elastic: a
	// worker that ends its H steps while the round's last participant
	// still trains goes on, up to MaxInnerSteps, for about as long as it
	// would otherwise wait (elasticBudget), so a faster device computes
	// instead of idling for the slowest. It commits to the steps it ran.
	// At most ElasticMax(InnerSteps); 0 means InnerSteps (no extra steps).
	MaxInnerSteps int
	// CheckpointDir, if set, receives the global state every
	// CheckpointEvery rounds (default 5) and after the last round.
	CheckpointDir   string
	CheckpointEvery int

	// TickEvery is the coordinator's clock resolution (default 50ms).
	TickEvery time.Duration
	// Linger keeps serving peers after the last round (default 2s), so a
	// slower peer can still get a forwarded part or the final state.
	Linger time.Duration
	// SendTimeout bounds one send or fetch (default 30s).
	SendTimeout time.Duration
	// StallTimeout ends Run with an error naming the quietest peers when
	// the job makes no progress for that long while this worker is not
	// training: no round completes here or elsewhere, no state arrives.
	// The default is twice the longest a live round can wait on the
	// protocol's deadlines (ready wait, leader grace, exchange waits).
	StallTimeout time.Duration
	Logger       *slog.Logger
}

// DefaultSendTimeout is Config.SendTimeout's default.
const DefaultSendTimeout = 30 * time.Second

// DefaultStallTimeout is Config.StallTimeout's default for a protocol
// timing (zero fields take train.DefaultTiming's) and a send timeout:
// twice the longest a live round can wait on the protocol's deadlines
// (ready wait, leader grace, exchange waits, one send).
func DefaultStallTimeout(timing train.Timing, send time.Duration) time.Duration {
	t := timing.WithDefaults()
	return 2 * (t.MaxReadyWait + t.LeaderGrace + 4*t.MaxExchangeWait + send)
}

// Progress describes one completed round, seen from one worker.
type Progress struct {
	Node         gridmind.NodeID
	Round        uint64  // the round that finished
	EvalLoss     float64 // loss of θ_{Round+1}; NaN when not evaluated this round
	TrainLoss    float64 // this worker's mean inner loss in the round; NaN if it did not train it
	Tokens       int64   // tokens this worker trained on in the round
	TokensPerSec float64
	BytesSent    int64 // this worker, since it started
	RoundBytes   int64 // this worker, since its previous progress report
	Participants int
	Members      []gridmind.NodeID // the round's participants
	Contributors int               // smallest number of contributors to any part
	Leader       gridmind.NodeID
	ThetaHash    train.Hash
	StateHash    train.Hash
	// Rejected lists the workers whose contribution the reducers of a
	// majority of parts dropped in this round (the same on every worker).
	Rejected  []train.Rejected
	AllReduce time.Duration
	RoundTime time.Duration // since the previous round completed here, or this worker started or fetched the state it joined with
	TrainTime time.Duration // of that, the time this worker spent in its inner steps (0 if it did not train the round)
	Steps     int           // the inner steps it ran (H, more with elastic steps; 0 if it did not train the round)
}

// Summary is what Run leaves behind.
type Summary struct {
	State     *train.GlobalState // the last state held (nil if none)
	StateHash train.Hash
	Completed int // rounds this worker took part in to the end
	Excluded  int // rounds it was left out of
	// EarlyStarts counts rounds (Config.Overlap) whose training began
	// before this worker heard the previous round's announcement.
	EarlyStarts  int
	ControlBytes int64
	BulkBytes    int64
	StateBytes   int64 // state served to peers
	EvalLoss     float64
	// Confirmed and Of: how many of the last round's Of participants
	// (this worker included) reported the state this worker holds. Only a
	// state confirmed by a majority is the job's model.
	Confirmed, Of int
	// Rejected and Evidence are what this worker saw go wrong with others:
	// screened-out contributions and verified protocol breaches.
	Rejected []train.Rejected
	Evidence []*train.Evidence
	// Refused counts inbound messages refused, by reason (control-envelope,
	// bulk-decode, signature, excluded-sender, stranger, bad-evidence,
	// protocol, banned); stale messages are not counted.
	Refused map[string]int
}

// Majority reports whether a majority of the last round's participants
// confirmed the final state.
func (s Summary) Majority() bool { return s.Of > 0 && 2*s.Confirmed > s.Of }

// BytesSent is all the worker sent.
func (s Summary) BytesSent() int64 { return s.ControlBytes + s.BulkBytes + s.StateBytes }

// InitialState builds round 0's state from a trainer's starting weights.
// Every starting worker must use the same weights (trainers built from the
// same seed) and the same worker list.
func InitialState(t gridmind.Trainer, workers []gridmind.NodeID) (*train.GlobalState, error) {
	theta, err := t.Params()
	if err != nil {
		return nil, fmt.Errorf("diloco: initial weights: %w", err)
	}
	return train.NewGlobalState(theta, workers)
}

// Worker runs one worker of a job.
type Worker struct {
	cfg    Config
	c      *train.Coordinator
	log    *slog.Logger
	signer *signer
	opener *opener
	inbox  chan inbound

	numParams int
	members   map[gridmind.NodeID]bool // the job's allow-list, read by transport goroutines (never written after NewWorker)
	maxFrame  int

	controlBytes, bulkBytes, stateBytes atomic.Int64
	refused                             refusals
	leaving                             atomic.Bool // Leave was called
	bans                                banList     // peers refused on outside evidence (Ban)
	progress                            *trainProgress
}

// trainProgress is where the trainer goroutine is in a round's inner
// steps, read by the loop's coordinator (train.Config.TrainingLeft) when
// the round goes ahead without this worker.
type trainProgress struct {
	mu     sync.Mutex
	active bool
	round  uint64
	began  time.Time
	done   int
}

func (p *trainProgress) start(round uint64) {
	p.mu.Lock()
	p.active, p.round, p.began, p.done = true, round, time.Now(), 0
	p.mu.Unlock()
}

func (p *trainProgress) stepped(done int) {
	p.mu.Lock()
	p.done = done
	p.mu.Unlock()
}

func (p *trainProgress) stop() {
	p.mu.Lock()
	p.active = false
	p.mu.Unlock()
}

// left is how much longer the training of round needs to reach h steps at
// the pace of the steps done so far (0 if unknown or already there).
func (p *trainProgress) left(round uint64, h int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active || p.round != round || p.done <= 0 || p.done >= h {
		return 0
	}
	return time.Duration(float64(time.Since(p.began)) / float64(p.done) * float64(h-p.done))
}

// Ban makes this worker keep peer out of the job's rounds from now on, for
// reason, on evidence from outside the job, such as a fraud proof on the
// ledger (jobs bans a peer the ledger excluded from the job); the round
// protocol's own exclusions come from evidence found within the job
// (train.Evidence, repeated screen rejections). The worker drops the
// peer's "ready", so as a leader it never admits it to a round, and any
// announcement the peer makes as a leader, so no round it leads goes
// ahead here (the attempt passes to the next leader). Its other messages
// are still taken: honest workers learn of the proof at slightly different
// times, and a round that a leader which had not yet banned it admitted it
// to must still complete for everyone, or the ban would split the job.
// Once every honest worker has banned it, it is in no round. Banning this
// worker itself, or a peer outside the job, does nothing. Safe to call
// from any goroutine.
func (w *Worker) Ban(peer gridmind.NodeID, reason string) {
	if peer == w.c.Self() || !w.members[peer] {
		return
	}
	if w.bans.add(peer, reason) {
		w.log.Warn("peer banned: its contributions are refused", "peer", peer.Short(), "reason", reason)
	}
}

// Banned lists the peers banned with Ban, with the reasons.
func (w *Worker) Banned() map[gridmind.NodeID]string { return w.bans.snapshot() }

// banList is the set of banned peers; transport goroutines read it.
type banList struct {
	mu sync.RWMutex
	m  map[gridmind.NodeID]string
}

// add bans id; it reports whether id was not banned before.
func (b *banList) add(id gridmind.NodeID, reason string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[id]; ok {
		return false
	}
	if b.m == nil {
		b.m = map[gridmind.NodeID]string{}
	}
	b.m[id] = reason
	return true
}

func (b *banList) has(id gridmind.NodeID) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.m[id]
	return ok
}

func (b *banList) snapshot() map[gridmind.NodeID]string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[gridmind.NodeID]string, len(b.m))
	for k, v := range b.m {
		out[k] = v
	}
	return out
}

// Leave asks the worker to stop at the next round boundary: it finishes
// the round it is in (its peers get its part and its "done") and starts no
// other, then Run returns after the linger time, as at the job's end. A
// worker that learns it may no longer train the job (its lease ended)
// leaves this way rather than vanishing mid-round, which would hold its
// peers' all-reduce until their exchange deadline. Safe to call from any
// goroutine.
func (w *Worker) Leave() { w.leaving.Store(true) }

// refusals counts refused inbound messages by reason; transport goroutines
// and the loop both add to it.
type refusals struct {
	mu   sync.Mutex
	n    map[string]int
	hook func(string) // Config.OnRefused
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
	r.mu.Unlock()
	if r.hook != nil {
		r.hook(reason)
	}
}

func (r *refusals) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

// refusalReason names why the coordinator refused a message.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, train.ErrBadSignature):
		return "signature"
	case errors.Is(err, train.ErrBanned):
		return "excluded-sender"
	case errors.Is(err, train.ErrUnknownSender):
		return "stranger"
	case errors.Is(err, train.ErrNotEvidence):
		return "bad-evidence"
	}
	return "protocol"
}

type inbound struct {
	msg   train.Message
	state *stateRequest
}

type stateRequest struct {
	round uint64
	hash  train.Hash
	reply chan []byte
}

// NewWorker checks cfg.
func NewWorker(cfg Config) (*Worker, error) {
	const op = "diloco.worker"
	bad := func(format string, args ...any) error { return gridmind.E(gridmind.KindInvalid, op, format, args...) }
	switch {
	case cfg.Job == "":
		return nil, bad("job name is empty")
	case len(cfg.Key) != ed25519.PrivateKeySize:
		return nil, bad("no signing key")
	case cfg.Trainer == nil:
		return nil, bad("no trainer")
	case cfg.Batches == nil:
		return nil, bad("no batch source")
	case cfg.InnerSteps <= 0:
		return nil, bad("inner steps %d must be positive", cfg.InnerSteps)
	case cfg.Shirk < 0 || cfg.Shirk >= cfg.InnerSteps:
		return nil, bad("shirk %d must be below the inner steps %d", cfg.Shirk, cfg.InnerSteps)
	case cfg.MaxInnerSteps != 0 && (cfg.MaxInnerSteps < cfg.InnerSteps || cfg.MaxInnerSteps > ElasticMax(cfg.InnerSteps)):
		return nil, bad("max inner steps %d: want 0 or %d to %d (the inner steps to ElasticMax of them)", cfg.MaxInnerSteps, cfg.InnerSteps, ElasticMax(cfg.InnerSteps))
	case cfg.Rounds == 0:
		return nil, bad("rounds must be positive")
	case cfg.Transport == nil:
		return nil, bad("no transport")
	}
	self := gridmind.NodeIDFromPublicKey(cfg.Key.Public().(ed25519.PublicKey))
	if cfg.Transport.Self() != self {
		return nil, bad("transport is %s but the key is %s", cfg.Transport.Self().Short(), self.Short())
	}
	if cfg.Eval == nil && len(cfg.EvalBatches) > 0 {
		batches := cfg.EvalBatches
		cfg.Eval = func(ctx context.Context, t gridmind.Trainer) (float64, error) { return t.Evaluate(ctx, batches) }
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 5
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = 50 * time.Millisecond
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Second
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout(cfg.Protocol.Timing, cfg.SendTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pc := cfg.Protocol
	pc.Self, pc.Key, pc.Job, pc.Workers, pc.Initial, pc.NumParams = self, cfg.Key, cfg.Job, cfg.Workers, cfg.Initial, cfg.Trainer.NumParams()
	progress := &trainProgress{}
	pc.TrainingLeft = func(round uint64) time.Duration { return progress.left(round, cfg.InnerSteps) }
	c, err := train.NewCoordinator(pc)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	// The largest frame the round can need: a state (θ and momentum in
	// float32) or a float32 part, plus lists of node ids and hashes.
	bound := 8*pc.NumParams + 64<<10 + 256*len(cfg.Workers)
	if l, ok := cfg.Transport.(interface{ LimitBulk(int) }); ok {
		l.LimitBulk(bound)
	}
	members := map[gridmind.NodeID]bool{}
	for _, id := range cfg.Workers {
		members[id] = true
	}
	now := time.Now()
	return &Worker{
		refused:  refusals{hook: cfg.OnRefused},
		members:  members,
		maxFrame: bound,
		cfg:      cfg,
		c:        c,
		log:      cfg.Logger.With("node", self.Short(), "job", cfg.Job),
		signer:   newSigner(cfg.Key, cfg.Job, now),
		opener:   newOpener(cfg.Job, cfg.Workers),
		inbox:    make(chan inbound, 256),

		numParams: pc.NumParams,
		progress:  progress,
	}, nil
}

// Self is this worker's node id.
func (w *Worker) Self() gridmind.NodeID { return w.c.Self() }

// handler adapts the transport's callbacks to the worker's loop.
type handler struct {
	w   *Worker
	ctx context.Context
}

func (h handler) push(in inbound) {
	select {
	case h.w.inbox <- in:
	case <-h.ctx.Done():
	}
}

func (h handler) Control(from gridmind.NodeID, data []byte) {
	m, err := h.w.opener.open(data, time.Now())
	if err != nil {
		h.w.refused.add("control-envelope")
		h.w.log.Debug("control message refused", "from", from.Short(), "err", err)
		return
	}
	h.push(inbound{msg: m})
}

var _ Gate = handler{}

// Admit lets only the job's workers open its streams, with frames no
// larger than the round can need.
func (h handler) Admit(from gridmind.NodeID, protocol string) (int, bool) {
	if !h.w.members[from] {
		return 0, false
	}
	if protocol == ProtocolControl {
		return gridmind.MaxEnvelopeBytes, true
	}
	return h.w.maxFrame, true
}

func (h handler) Bulk(from gridmind.NodeID, data []byte) {
	m, err := train.UnmarshalMessage(data)
	if err == nil && (!m.Bulk() || m.From != from) {
		err = fmt.Errorf("%s claiming to be from %s", m.Type, m.From.Short())
	}
	if err != nil {
		h.w.refused.add("bulk-decode")
		h.w.log.Debug("bulk message refused", "from", from.Short(), "err", err)
		return
	}
	h.push(inbound{msg: m})
}

func (h handler) State(ctx context.Context, round uint64, hash train.Hash) ([]byte, error) {
	req := &stateRequest{round: round, hash: hash, reply: make(chan []byte, 1)}
	h.push(inbound{state: req})
	select {
	case b := <-req.reply:
		if b == nil {
			return nil, gridmind.E(gridmind.KindNotFound, "diloco.state", "round %d state %s not held here", round, hash.Short())
		}
		h.w.stateBytes.Add(int64(len(b)))
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.ctx.Done():
		return nil, h.ctx.Err()
	}
}

type trainJob struct {
	ctx      context.Context
	seq      uint64 // which startTraining asked for it (loop.trainSeq)
	ahead    bool   // begun before the round's state existed (loop.startAhead)
	round    uint64
	theta    []float32
	evalOnly bool
	eval     bool // evaluate theta (the result of round-1) first
	// target (training ahead) takes the round's real weights once known:
	// the training moves to them at its next step (verify.ShiftTrainer).
	target <-chan []float32
	// extra is how long the trainer may go on after the H steps
	// (Config.MaxInnerSteps, elasticBudget).
	extra time.Duration
}

type trainResult struct {
	seq      uint64
	ahead    bool
	round    uint64
	isEval   bool
	evalLoss float64
	local    []float32
	stats    gridmind.TrainStats
	took     time.Duration
	err      error
	// from is what Δ is taken from: the weights the steps started from,
	// or, with shiftAt > 0, the round's real weights a training begun
	// ahead moved to after shiftAt steps.
	from    []float32
	shiftAt int
	// steps is how many inner steps it committed to (H, or more with
	// elastic steps); extraTook is the time the steps beyond H took.
	steps     int
	extraTook time.Duration
	// With Config.Audit: θ_r, the trainer's state before the inner steps
	// and the hash of its state after them.
	start       []float32
	stateBefore []byte
	optAfter    verify.Hash
}

type fetchResult struct {
	round uint64
	peer  gridmind.NodeID
	state *train.GlobalState
	err   error
}

// runTrainer is the only goroutine that touches the Trainer.
func (w *Worker) runTrainer(ctx context.Context, jobs <-chan trainJob, results chan<- trainResult) {
	t := w.cfg.Trainer
	send := func(r trainResult) {
		select {
		case results <- r:
		case <-ctx.Done():
		}
	}
	for {
		var job trainJob
		select {
		case job = <-jobs:
		case <-ctx.Done():
			return
		}
		if err := t.SetParams(job.theta); err != nil {
			send(trainResult{round: job.round, err: fmt.Errorf("set params: %w", err)})
			continue
		}
		if job.eval {
			loss, err := w.cfg.Eval(ctx, t)
			send(trainResult{round: job.round - 1, isEval: true, evalLoss: loss, err: err})
		}
		if job.evalOnly {
			continue
		}
		if err := job.ctx.Err(); err != nil {
			// Cancelled before it started (the worker was left out while
			// this goroutine evaluated): the loop still hears of it, or it
			// would think the worker trains for ever and never see a stall.
			send(trainResult{seq: job.seq, ahead: job.ahead, round: job.round, err: err})
			continue
		}
		start := time.Now()
		res := trainResult{seq: job.seq, ahead: job.ahead, round: job.round}
		if w.cfg.Audit != nil {
			var before bytes.Buffer
			if err := t.Save(&before); err != nil {
				send(trainResult{round: job.round, err: fmt.Errorf("save state for audits: %w", err)})
				continue
			}
			res.start, res.stateBefore = job.theta, before.Bytes()
		}
		res.from = job.theta
		res.stats, res.err = w.trainSteps(job, &res)
		if res.err == nil {
			res.local, res.err = t.Params()
		}
		if res.err == nil && w.cfg.Audit != nil {
			res.optAfter, res.err = verify.TrainerState(t)
		}
		if res.err == nil && w.cfg.Shirk > 0 {
			// Δ of the steps it ran, scaled to look like H steps' worth.
			scale := float32(w.cfg.InnerSteps) / float32(w.cfg.InnerSteps-w.cfg.Shirk)
			for i, v := range res.local {
				res.local[i] = res.from[i] + scale*(v-res.from[i])
			}
		}
		res.took = time.Since(start)
		send(res)
	}
}

// trainSteps runs the round's inner steps of job on the trainer. Training
// ahead (job.target set) checks for the round's real weights after every
// step from the first: once they are known, it moves its parameters by
// their difference from the estimate it started from (verify.ShiftTrainer, as an
// auditor re-runs it), keeps the optimizer state and trains the rest from
// there, so only the steps before they arrived work from the estimate. It
// never waits for them: if they come after the last step, the training
// stays the estimate's. With elastic steps (job.extra) it goes on after
// the H-th step for as many steps as fit in job.extra at the pace of the
// first H.
func (w *Worker) trainSteps(job trainJob, res *trainResult) (gridmind.TrainStats, error) {
	t := w.cfg.Trainer
	steps := w.cfg.InnerSteps - w.cfg.Shirk
	src := w.cfg.Batches(job.round)
	var total gridmind.TrainStats
	var lossSum float64
	run := func(n int) error {
		s, err := t.TrainSteps(job.ctx, n, src)
		total.Steps += s.Steps
		total.Tokens += s.Tokens
		total.FLOPs += s.FLOPs
		lossSum += s.Loss * float64(s.Steps)
		if total.Steps > 0 {
			total.Loss = lossSum / float64(total.Steps) // the mean over all the steps
		}
		return err
	}
	res.steps = w.cfg.InnerSteps // a shirker commits to H
	w.progress.start(job.round)
	defer w.progress.stop()
	began, extraFrom := time.Now(), time.Time{}
	elastic := w.cfg.MaxInnerSteps > w.cfg.InnerSteps && job.extra > 0 && w.cfg.Shirk == 0
	shifted := job.target == nil
	for done := 0; ; {
		if done == steps {
			if !elastic {
				break
			}
			elastic, extraFrom = false, time.Now()
			steps += min(w.cfg.MaxInnerSteps-w.cfg.InnerSteps, elasticSteps(job.extra, extraFrom.Sub(began), done))
			res.steps = steps
			if done == steps {
				break
			}
		}
		if !shifted && done > 0 {
			select {
			case target := <-job.target:
				if err := w.shiftTo(job, res, target, done); err != nil {
					return total, err
				}
				shifted = true
			default:
			}
		}
		n := 1 // one at a time while the weights may still come
		if shifted {
			// In a few chunks, so that the progress (trainProgress) says
			// how far it got if the round goes ahead without it.
			n = min(steps-done, max(1, w.cfg.InnerSteps/16))
		}
		if err := run(n); err != nil {
			return total, err
		}
		done += n
		w.progress.stepped(done)
	}
	if !extraFrom.IsZero() {
		res.extraTook = time.Since(extraFrom)
	}
	return total, nil
}

// elasticSteps is how many steps fit in budget at the pace of the done
// steps that took took.
func elasticSteps(budget, took time.Duration, done int) int {
	if done <= 0 || took <= 0 || budget <= 0 {
		return 0
	}
	return int(budget * time.Duration(done) / took)
}

// ElasticMax is the most inner steps a worker may run and commit to in a
// round of a job with h inner steps (Config.MaxInnerSteps): half as many
// again. It bounds what an auditor re-runs and how far one worker's Δ
// can outgrow the others' before the screen looks at it.
func ElasticMax(h int) int { return h + h/2 }

// MaxInnerStepsFor is Config.MaxInnerSteps for a job with h inner steps,
// elastic or not: ElasticMax(h), or 0 (none) where that leaves no room.
func MaxInnerStepsFor(elastic bool, h int) int {
	if !elastic || ElasticMax(h) == h {
		return 0
	}
	return ElasticMax(h)
}

// shiftTo moves the trainer from job's estimate to the round's real weights
// target after done steps.
func (w *Worker) shiftTo(job trainJob, res *trainResult, target []float32, done int) error {
	if err := verify.ShiftTrainer(w.cfg.Trainer, job.theta, target); err != nil {
		return fmt.Errorf("shift to the round's weights: %w", err)
	}
	res.from, res.shiftAt = target, done
	return nil
}
