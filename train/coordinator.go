package train

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
)

// Phase is where a worker stands in the current round.
type Phase uint8

const (
	// PhaseSyncing: no usable state; waiting for a "done" that says which
	// state to fetch.
	PhaseSyncing Phase = iota
	// PhaseFetching: a FetchState action is out.
	PhaseFetching
	// PhaseTraining: a Train action is out.
	PhaseTraining
	// PhaseReady: "ready" sent, waiting for the leader's announcement.
	PhaseReady
	// PhaseReducing: in the all-reduce.
	PhaseReducing
)

var phaseNames = [...]string{"syncing", "fetching", "training", "ready", "reducing"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Action is something the driver must do or may report.
type Action interface{ isAction() }

// Train asks the driver to load Theta (read-only) into its trainer, run the
// round's inner steps and call TrainingDone with the local weights.
type Train struct {
	Round     uint64
	Theta     []float32
	StateHash Hash
}

// FetchState asks the driver to fetch the global state of Round from Peer
// and call StateFetched, or FetchFailed if the peer does not deliver.
type FetchState struct {
	Round     uint64
	StateHash Hash
	Peer      gridmind.NodeID
}

// RoundComplete reports a finished round; State is the state that starts
// Round+1 (read-only), for progress and checkpoints.
type RoundComplete struct {
	Round        uint64
	State        *GlobalState
	StateHash    Hash
	ThetaHash    Hash
	Leader       gridmind.NodeID
	Attempt      uint32
	Participants []gridmind.NodeID
	Contributors [][]gridmind.NodeID // per part, in part order
	AllReduce    time.Duration       // from accepting the announcement to the last combined part
	// Repaired: an earlier RoundComplete for this round is replaced. A
	// reducer was caught equivocating after the round completed, and every
	// honest worker re-applied the round without that part's update.
	Repaired bool
}

// Rejected reports that the reducers of a majority of parts dropped
// Worker's contribution to Round (Reason is the most common verdict).
// Every worker reports the same, from the same signed results; a worker
// rejected in RejectStrikes rounds is excluded from the job (Banned).
type Rejected struct {
	Round  uint64
	Worker gridmind.NodeID
	Reason DropReason
	Parts  int // parts whose reducer dropped it
	Of     int // parts in the round
	Banned bool
}

// Misbehaviour reports verified evidence against a worker: it is excluded
// from the job at once, and Evidence can be filed on the ledger.
type Misbehaviour struct {
	Evidence *Evidence
	// Detected: this worker found it (rather than receiving it from a peer).
	Detected bool
}

// RejectStrikes is how many rejected rounds exclude a worker from the job.
const RejectStrikes = 2

// Excluded reports that this worker takes no part in Round and will
// re-synchronize; any training in progress is wasted and may be cancelled.
type Excluded struct {
	Round  uint64
	Reason string
}

// HashMismatch reports that Peer reached a different state after Round.
// Nothing is decided here: the next leader admits the majority's state and
// the others re-synchronize.
type HashMismatch struct {
	Round        uint64
	Peer         gridmind.NodeID
	Theirs, Mine Hash
}

func (Train) isAction()         {}
func (FetchState) isAction()    {}
func (RoundComplete) isAction() {}
func (Excluded) isAction()      {}
func (HashMismatch) isAction()  {}
func (Rejected) isAction()      {}
func (Misbehaviour) isAction()  {}

// Output is what the Coordinator wants done since the last call to Outputs.
type Output struct {
	Messages []Message
	Actions  []Action
}

// Errors returned by Step and friends; the driver counts and logs them.
var (
	ErrUnknownSender = errors.New("train: sender is not a worker of this job")
	ErrStale         = errors.New("train: stale input")
	ErrBadState      = errors.New("train: fetched state does not match")
	ErrBanned        = errors.New("train: sender is excluded")
)

// Distrust tells the coordinator that peer was banned on outside evidence
// (a fraud proof on the ledger; the driver drops its "ready" and
// announcements): its word no longer counts towards the quorum a syncing
// worker needs, nor does it count as a live member (syncing.go). Its
// messages in a round already under way are still taken, so that workers
// that learn of the ban at different times still agree on that round.
func (c *Coordinator) Distrust(peer gridmind.NodeID) {
	if peer == c.cfg.Self || !c.allowed[peer] {
		return
	}
	if c.distrusted == nil {
		c.distrusted = map[gridmind.NodeID]bool{}
	}
	c.distrusted[peer] = true
}

// Banned reports the workers excluded from the job, with the reason.
func (c *Coordinator) Banned() map[gridmind.NodeID]string {
	out := make(map[gridmind.NodeID]string, len(c.banned))
	for k, v := range c.banned {
		out[k] = v
	}
	return out
}

// Coordinator runs the DiLoCo round protocol for one worker. It is not safe
// for concurrent use: one goroutine (the driver's loop) owns it.
type Coordinator struct {
	cfg     Config
	allowed map[gridmind.NodeID]bool

	phase     Phase
	state     *GlobalState // θ_r, momentum, participants; nil before the first fetch
	stateHash Hash
	feedback  ErrorFeedback
	// reduceResidual is the reducer's error feedback for int4: per element,
	// what the combined parts this worker reduced (and everyone applied)
	// lost to quantization, added to the next part it reduces that covers
	// the element. nil until first needed; see finishReduction.
	reduceResidual []float32
	reducerCodec   reducerCodec // its buffers for the next part it reduces
	// partBufs are buffers of finished reductions' contributions, for
	// the next contributions to decode into (partBuffer).
	partBufs [][]float32
	// spareCombined is the combined vector of the round before the last
	// completed one, for the next round's reduced parts to decode into.
	spareCombined []float32

	trainStart time.Time // zero until the first clock reading after a Train action from NewCoordinator
	trainTime  ewma      // observed training durations
	spread     ewma      // observed spread of "ready" arrivals at a leader
	exchange   ewma      // observed all-reduce durations

	// PhaseReady
	pseudo        [][]byte // this round's encoded pseudo-gradient, one payload per part of the coming split
	pseudoVec     []float32
	pseudoQ       Quantized
	leaves        []Hash // block hashes of the decoded pseudo-gradient
	commitment    Commitment
	readyAttempt  uint32
	holdReady     bool // "ready" waits for the previous round's dones (maybeReleaseReady)
	attemptStart  time.Time
	lastReadySent time.Time

	ar        *allReduce
	early     []Message // parts and results that arrived before their announcement
	completed *completedRound

	leads map[leadKey]*leadRound
	joins map[uint64]map[gridmind.NodeID]bool
	// joining holds the members that said they are fetching a state
	// ("join") and reported no round since: they are behind, so they
	// neither count as live members nor vouch for a state (syncing.go).
	joining map[gridmind.NodeID]bool

	dones map[uint64]map[gridmind.NodeID]Hash // state hash each peer reported after a round
	fetch *fetchTarget
	// syncSince is when a syncing worker first heard of a state it could
	// fetch; after syncFallback it stops waiting for a quorum (syncing.go).
	syncSince time.Time
	// heard is when each peer last sent this worker a message it took,
	// firstHeard the first time any did: the quorum counts live members.
	heard      map[gridmind.NodeID]time.Time
	firstHeard time.Time
	distrusted map[gridmind.NodeID]bool // Distrust

	// banned workers proved to break the protocol, or were rejected
	// RejectStrikes times: their messages are refused and no leader admits them.
	banned  map[gridmind.NodeID]string
	strikes map[gridmind.NodeID]int

	local []Message // messages to self, handled before a public call returns
	out   Output
}

type fetchTarget struct {
	round uint64
	hash  Hash
	peers []gridmind.NodeID
	tried map[gridmind.NodeID]bool
}

// NewCoordinator checks cfg and returns a coordinator; with cfg.Initial it
// starts training that round at once (see Outputs), without it waits to join.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:     cfg,
		allowed: map[gridmind.NodeID]bool{},
		leads:   map[leadKey]*leadRound{},
		joins:   map[uint64]map[gridmind.NodeID]bool{},
		joining: map[gridmind.NodeID]bool{},
		dones:   map[uint64]map[gridmind.NodeID]Hash{},
		banned:  map[gridmind.NodeID]string{},
		strikes: map[gridmind.NodeID]int{},
	}
	c.feedback.Codec = cfg.Codec
	c.feedback.recycle = true // the coordinator's own, never copied
	for _, w := range cfg.Workers {
		c.allowed[w] = true
	}
	if cfg.Initial != nil {
		// No clock here: the training time is measured from the first
		// Tick or Step (see clock), not from the zero time, which would
		// make every wait estimated from it MaxReadyWait for dozens of rounds.
		s := cfg.Initial.Clone()
		c.adopt(time.Time{}, s, s.Hash())
	}
	return c, nil
}

// Self is this worker.
func (c *Coordinator) Self() gridmind.NodeID { return c.cfg.Self }

// Phase is where this worker stands.
func (c *Coordinator) Phase() Phase { return c.phase }

// PseudoGradient is this worker's Δ of the current round (read-only), from
// TrainingDone until the next state is adopted; nil before.
func (c *Coordinator) PseudoGradient() []float32 { return c.pseudoVec }

// Round is the round of the state held (0 before the first fetch).
func (c *Coordinator) Round() uint64 {
	if c.state == nil {
		return 0
	}
	return c.state.Round
}

// State is the state held (read-only), or nil before the first fetch.
func (c *Coordinator) State() *GlobalState { return c.state }

// StateHash is the hash of State.
func (c *Coordinator) StateHash() Hash { return c.stateHash }

// StateFor returns the held state if it is round's state with hash, for
// serving a peer's fetch; nil otherwise.
func (c *Coordinator) StateFor(round uint64, hash Hash) *GlobalState {
	if c.state == nil || c.state.Round != round || c.stateHash != hash {
		return nil
	}
	return c.state
}

// Confirmed reports, for the last round this worker completed, how many of
// that round's participants (this worker included) said "done" with the
// state it reached, and how many participants there were. A worker whose
// state a majority did not confirm holds a model nobody else has: it must
// not serve it as the job's model.
func (c *Coordinator) Confirmed() (agree, of int) {
	done := c.completed
	if done == nil {
		return 0, 0
	}
	agree = 1
	for p, h := range c.dones[done.round] {
		if p != c.cfg.Self && h == done.stateHash && slices.Contains(done.participants, p) {
			agree++
		}
	}
	return agree, len(done.participants)
}

// AddWorker extends the job's allow-list (a new lease).
func (c *Coordinator) AddWorker(id gridmind.NodeID) {
	if id != "" && len(id) <= MaxNodeIDLen && len(c.allowed) < MaxWorkers {
		c.allowed[id] = true
	}
}

// Outputs returns and forgets what is to be done: messages to send (in
// order) and actions to perform.
func (c *Coordinator) Outputs() Output {
	out := c.out
	c.out = Output{}
	return out
}

// HasOutputs reports whether Outputs would return anything.
func (c *Coordinator) HasOutputs() bool { return len(c.out.Messages)+len(c.out.Actions) > 0 }

// Step feeds a message from a peer.
func (c *Coordinator) Step(now time.Time, m Message) error {
	if !c.allowed[m.From] {
		return fmt.Errorf("%w: %s", ErrUnknownSender, m.From.Short())
	}
	if m.From == c.cfg.Self {
		return fmt.Errorf("train: message claims to come from this worker")
	}
	if why, ok := c.banned[m.From]; ok {
		return fmt.Errorf("%w: %s is excluded from the job (%s)", ErrBanned, m.From.Short(), why)
	}
	if m.To != "" && m.To != c.cfg.Self {
		return fmt.Errorf("train: %s addressed to %s", m.Type, m.To.Short())
	}
	c.clock(now)
	c.heardFrom(now, m.From) // syncing.go
	err := c.handle(now, m)
	c.drain(now)
	return err
}

// clock notes the first time reading after NewCoordinator started
// training, as that training's start.
func (c *Coordinator) clock(now time.Time) {
	if c.phase == PhaseTraining && c.trainStart.IsZero() {
		c.trainStart = now
	}
}

// Tick advances the clock: leader deadlines, resends, takeovers.
func (c *Coordinator) Tick(now time.Time) {
	c.clock(now)
	c.tickLeader(now)
	switch c.phase {
	case PhaseReady:
		c.tickReady(now)
	case PhaseReducing:
		c.tickAllReduce(now)
	case PhaseSyncing:
		if !c.syncSince.IsZero() {
			c.chooseFetch(now) // a quorum after listening, or the fallback
		}
	}
	c.drain(now)
}

// TrainingDone reports the local weights after the inner steps of round.
// A report for another round or phase is stale and ignored.
func (c *Coordinator) TrainingDone(now time.Time, round uint64, local []float32) error {
	took := time.Duration(-1) // no clock was seen while it trained
	if !c.trainStart.IsZero() {
		took = now.Sub(c.trainStart)
	}
	var start []float32
	if c.state != nil {
		start = c.state.Theta
	}
	return c.TrainingDoneFrom(now, round, start, local, took)
}

// TrainingDoneFrom reports weights whose inner steps started from start
// rather than from the round's θ: a driver that overlaps communication
// with computation (diloco's Config.Overlap) begins round r+1's steps from
// its own estimate of θ_{r+1} while round r's all-reduce still runs. The
// pseudo-gradient start − local then joins the round's all-reduce and is
// applied to the real θ_{r+1}. took is how long the inner steps ran (< 0:
// unknown); the leader's ready wait is scaled on it.
func (c *Coordinator) TrainingDoneFrom(now time.Time, round uint64, start, local []float32, took time.Duration) error {
	if c.phase != PhaseTraining || c.state == nil || c.state.Round != round {
		return fmt.Errorf("%w: training of round %d finished while %s round %d", ErrStale, round, c.phase, c.Round())
	}
	if len(start) != c.cfg.NumParams {
		return fmt.Errorf("%w: training started from %d weights, want %d", ErrBadState, len(start), c.cfg.NumParams)
	}
	delta, err := PseudoGradient(start, local)
	if err != nil {
		c.exclude(now, round, "training diverged: "+err.Error())
		c.drain(now)
		return err
	}
	if took >= 0 {
		c.trainTime.observe(took)
	}
	c.pseudoVec = delta
	if c.cfg.Codec.Quantizes() {
		if c.pseudoQ, err = c.feedback.Compress(delta, c.cfg.BlockSize); err != nil {
			c.exclude(now, round, "quantization failed: "+err.Error())
			c.drain(now)
			return err
		}
		// Commit to what receivers decode, not to the float32 Δ.
		if c.leaves, err = QuantizedLeaves(c.pseudoQ); err != nil {
			c.exclude(now, round, "quantization failed: "+err.Error())
			c.drain(now)
			return err
		}
	} else {
		c.leaves = BlockLeaves(delta, c.cfg.BlockSize)
	}
	c.commitment = SignCommitment(c.cfg.Key, c.cfg.Job, Commitment{
		Worker: c.cfg.Self, Round: round, Start: c.stateHash, Root: MerkleRoot(c.leaves),
		NumParams: c.cfg.NumParams, BlockSize: c.cfg.BlockSize, Codec: c.cfg.Codec,
	})
	c.phase = PhaseReady
	c.readyAttempt = 0
	c.attemptStart = now
	c.holdReady = true
	c.maybeReleaseReady(now)
	c.drain(now)
	return nil
}

// maybeReleaseReady sends the held "ready" once every peer that took part
// in the previous round to the end has said "done" (or the exchange wait
// since that round passed): their signed headers are what reveals a
// reducer that equivocated, and the round can still be repaired only
// before this worker commits to the next one. Where training takes longer
// than a broadcast, the dones are in before training ends and this costs
// nothing.
func (c *Coordinator) maybeReleaseReady(now time.Time) {
	if c.phase != PhaseReady || !c.holdReady {
		return
	}
	if done := c.completed; done != nil && c.state != nil && done.round+1 == c.state.Round && now.Sub(done.at) < c.exchangeWait() {
		heard := c.dones[done.round]
		for _, p := range done.participants {
			if _, ok := heard[p]; !ok && p != c.cfg.Self && !c.isBanned(p) && !slices.Contains(done.suspects, p) {
				return
			}
		}
	}
	c.holdReady = false
	c.attemptStart = now
	c.sendReady(now)
}

func (c *Coordinator) isBanned(id gridmind.NodeID) bool {
	_, ok := c.banned[id]
	return ok
}

// StateFetched hands over a state fetched for a FetchState action; it is
// adopted only if it is the state asked for, hash and all.
func (c *Coordinator) StateFetched(now time.Time, s *GlobalState) error {
	f := c.fetch
	if c.phase != PhaseFetching || f == nil || s == nil || s.Round != f.round {
		return fmt.Errorf("%w: state fetched while %s", ErrStale, c.phase)
	}
	if len(s.Theta) != c.cfg.NumParams || len(s.Velocity) != c.cfg.NumParams {
		return fmt.Errorf("%w: %d weights, want %d", ErrBadState, len(s.Theta), c.cfg.NumParams)
	}
	if h := s.Hash(); h != f.hash {
		return fmt.Errorf("%w: hash %s, want %s", ErrBadState, h.Short(), f.hash.Short())
	}
	c.fetch = nil
	c.feedback.Reset() // the carried errors belong to updates of a state we left
	c.reduceResidual = nil
	c.adopt(now, s, f.hash)
	c.drain(now)
	return nil
}

// FetchFailed reports that peer did not deliver the state of round; the
// next peer known to hold it is tried.
func (c *Coordinator) FetchFailed(now time.Time, round uint64, peer gridmind.NodeID) {
	if c.phase != PhaseFetching || c.fetch == nil || c.fetch.round != round {
		return
	}
	c.fetch.tried[peer] = true
	c.nextFetch()
}

// adopt makes s, whose hash is hash, the state of its round and starts training it.
func (c *Coordinator) adopt(now time.Time, s *GlobalState, hash Hash) {
	c.state = s
	c.stateHash = hash
	c.ar = nil
	c.pseudo, c.pseudoVec, c.pseudoQ, c.leaves, c.commitment = nil, nil, Quantized{}, nil, Commitment{}
	c.early = slices.DeleteFunc(c.early, func(m Message) bool { return m.Round < s.Round })
	c.phase = PhaseTraining
	c.trainStart = now
	c.syncSince = time.Time{}
	c.out.Actions = append(c.out.Actions, Train{Round: s.Round, Theta: s.Theta, StateHash: c.stateHash})
}

// exclude drops out of round and waits to re-synchronize.
func (c *Coordinator) exclude(now time.Time, round uint64, reason string) {
	c.excludeLate(now, round, reason, 0)
}

// excludeLate drops out of round, which went ahead lag before this
// worker's training of it would have ended, and waits to re-synchronize.
// It tells the job at once that it will fetch the next round's state and
// join it (with the lag, which leaders wait for from then on): the
// leader of the next round then waits for it, and the members still
// reporting rounds know it is behind.
func (c *Coordinator) excludeLate(now time.Time, round uint64, reason string, lag time.Duration) {
	c.out.Actions = append(c.out.Actions, Excluded{Round: round, Reason: reason})
	lag = min(max(lag, 0), MaxLag)
	if lag > 0 {
		c.noteLag(lag) // as a leader it would have left itself out too
	}
	c.send(Message{Type: MsgJoin, Round: round + 1, Lag: lag})
	c.ar = nil
	c.phase = PhaseSyncing
	c.fetch = nil
	c.syncSince = time.Time{}
	// A "done" that already arrived may say what to fetch.
	c.chooseFetch(now)
}

func (c *Coordinator) handle(now time.Time, m Message) error {
	switch m.Type {
	case MsgReady:
		return c.onReady(now, m)
	case MsgJoin:
		return c.onJoin(m)
	case MsgAnnounce:
		return c.onAnnounce(now, m)
	case MsgPart:
		return c.onPart(now, m)
	case MsgReduced:
		return c.onReduced(now, m)
	case MsgDone:
		return c.onDone(now, m)
	case MsgEvidence:
		return c.onEvidence(now, m)
	}
	return fmt.Errorf("train: message type %d unknown", m.Type)
}

// send queues m to its destination; messages to self (and broadcasts,
// which include self) are handled locally before the public call returns.
func (c *Coordinator) send(m Message) {
	m.From = c.cfg.Self
	if m.To != c.cfg.Self {
		c.out.Messages = append(c.out.Messages, m)
	}
	if m.To == c.cfg.Self || m.To == "" {
		c.local = append(c.local, m)
	}
}

func (c *Coordinator) drain(now time.Time) {
	for len(c.local) > 0 {
		m := c.local[0]
		c.local = c.local[1:]
		_ = c.handle(now, m) // errors on our own messages only mean "stale"
	}
}

func (c *Coordinator) onDone(now time.Time, m Message) error {
	if m.From == c.cfg.Self {
		return nil
	}
	c.compareHeaders(now, m)
	byPeer := c.dones[m.Round]
	if byPeer == nil {
		byPeer = map[gridmind.NodeID]Hash{}
		c.dones[m.Round] = byPeer
		for r := range c.dones { // keep a few recent rounds only
			if r+4 < m.Round {
				delete(c.dones, r)
			}
		}
		if len(c.dones) > 8 {
			delete(c.dones, m.Round)
			return fmt.Errorf("%w: done for round %d", ErrStale, m.Round)
		}
	}
	byPeer[m.From] = m.StateHash
	delete(c.joining, m.From) // it holds a state again
	defer c.maybeReleaseReady(now)
	if c.completed != nil && c.completed.round == m.Round && c.completed.stateHash != m.StateHash {
		c.out.Actions = append(c.out.Actions, HashMismatch{Round: m.Round, Peer: m.From, Theirs: m.StateHash, Mine: c.completed.stateHash})
	}
	if c.phase == PhaseSyncing || c.phase == PhaseFetching {
		c.chooseFetch(now) // syncing.go
	}
	return nil
}

func (c *Coordinator) startFetch(round uint64, hash Hash, peers []gridmind.NodeID) {
	c.phase = PhaseFetching
	c.fetch = &fetchTarget{round: round, hash: hash, peers: slices.Clone(peers), tried: map[gridmind.NodeID]bool{}}
	// Tell the job now, while the others are still training this round,
	// so that its leader waits for this worker instead of announcing as
	// soon as the previous participants are ready: a joiner is behind by
	// the fetch, and one that said nothing until it held the state would
	// miss every round whose training is shorter than a fetch. A joiner
	// whose fetch fails costs that round at most the leader's ready wait.
	c.send(Message{Type: MsgJoin, Round: round})
	c.nextFetch()
}

func (c *Coordinator) nextFetch() {
	for _, p := range c.fetch.peers {
		if !c.fetch.tried[p] && p != c.cfg.Self {
			c.fetch.tried[p] = true
			c.out.Actions = append(c.out.Actions, FetchState{Round: c.fetch.round, StateHash: c.fetch.hash, Peer: p})
			return
		}
	}
	c.fetch = nil
	c.phase = PhaseSyncing // wait for the next "done"
	c.syncSince = time.Time{}
}

// majorityHash returns the hash reported by most peers (ties go to the
// smaller hash, so every worker decides alike) and those peers, sorted.
func majorityHash(byPeer map[gridmind.NodeID]Hash) (Hash, []gridmind.NodeID) {
	count := map[Hash]int{}
	for _, h := range byPeer {
		count[h]++
	}
	var best Hash
	bestN := 0
	for h, n := range count {
		if n > bestN || (n == bestN && slices.Compare(h[:], best[:]) < 0) {
			best, bestN = h, n
		}
	}
	var peers []gridmind.NodeID
	for p, h := range byPeer {
		if h == best {
			peers = append(peers, p)
		}
	}
	slices.Sort(peers)
	return best, peers
}

// leaderOf is the leader of round at attempt among participants (sorted):
// the list rotates with the round so leadership is shared, and each
// attempt moves to the next worker in order.
func leaderOf(participants []gridmind.NodeID, round uint64, attempt uint32) gridmind.NodeID {
	if len(participants) == 0 {
		return ""
	}
	return participants[(round+uint64(attempt))%uint64(len(participants))]
}

// LeaderOf exposes the leader rule for tests and tools.
func LeaderOf(participants []gridmind.NodeID, round uint64, attempt uint32) gridmind.NodeID {
	return leaderOf(participants, round, attempt)
}
