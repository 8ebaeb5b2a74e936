package diloco

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// loop is Run's state; only Run's goroutine touches it.
type loop struct {
	w       *Worker
	ctx     context.Context
	sends   sync.WaitGroup
	jobs    chan trainJob
	results chan trainResult
	fetches chan fetchResult

	trainCancel context.CancelFunc
	trainSeq    uint64                 // of the latest training job; only its result ends training
	trained     map[uint64]trainResult // by round, for progress
	pending     map[uint64]*Progress   // waiting for their evaluation
	rejected    map[uint64][]train.Rejected
	lastDone    time.Time
	// lastProgress is when this worker last saw the job move: a round
	// completed here or reported done by a peer, a state fetched, its own
	// training finished; heard is when each peer was last heard from. They
	// bound how long a job that cannot progress keeps a worker (StallTimeout).
	lastProgress time.Time
	training     bool
	heard        map[gridmind.NodeID]time.Time
	lastBytes    int64
	summary      Summary
	finishing    bool
	lingerUntil  time.Time
	// A worker that finished the job goes on serving the final state while
	// members left out of the last round (behind: they said they are
	// fetching a state) have not all fetched one here, up to lingerCap:
	// otherwise a left-out member whose fetch takes longer than Linger (a
	// slow link, a loaded machine) finds everyone gone and waits out its
	// StallTimeout. served counts the states given since finishing.
	lingerCap time.Time
	served    int
	audit     *auditor // nil without Config.Audit
	// ahead is the next round's training begun while this round's
	// all-reduce runs (Config.Overlap).
	ahead *aheadTrain
	// When overlap starts the next training (aheadStart): this worker's
	// training of readyRound ended at readyAt; waits holds the recent
	// waits from such an end to the round's announcement, in rounds this
	// worker did not announce itself (led, led+1 is the last it did);
	// wake fires at a start that lies ahead.
	readyRound uint64
	readyAt    time.Time
	waited     bool
	waits      []time.Duration
	gaps       []time.Duration // the same from the end of the H steps (elasticBudget)
	aheads     []time.Duration // from the end of the H steps to the round's last ready, at the leader (elasticBudget)
	led        uint64
	wake       <-chan time.Time
}

// aheadTrain is training begun for round before the round's state exists,
// from start (the state of round−1).
type aheadTrain struct {
	round  uint64
	seq    uint64
	start  []float32
	cancel context.CancelFunc
	result *trainResult // once finished
	wanted bool         // the coordinator asked for round's training
	// target takes the round's real weights once known (the training
	// shifts to them at its next step).
	target chan []float32
}

// Run runs the worker until the job's last round is done (and the linger
// time has passed) or ctx ends. It returns what it achieved either way; the
// error is nil only when the job finished.
func (w *Worker) Run(ctx context.Context) (Summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := &loop{
		w:        w,
		ctx:      ctx,
		jobs:     make(chan trainJob, 8),
		results:  make(chan trainResult, 8),
		fetches:  make(chan fetchResult, 8),
		trained:  map[uint64]trainResult{},
		pending:  map[uint64]*Progress{},
		rejected: map[uint64][]train.Rejected{},
		lastDone: time.Now(),
		heard:    map[gridmind.NodeID]time.Time{},
		audit:    newAuditor(w),
	}
	l.summary.EvalLoss = math.NaN()
	if err := w.cfg.Transport.Serve(ctx, handler{w: w, ctx: ctx}); err != nil {
		return l.summary, gridmind.E(gridmind.KindUnavailable, "diloco.run", "serve: %w", err)
	}
	var trainer sync.WaitGroup
	trainer.Add(1)
	go func() { defer trainer.Done(); w.runTrainer(ctx, l.jobs, l.results) }()
	defer func() {
		cancel()
		if l.trainCancel != nil {
			l.trainCancel()
		}
		l.dropAhead()
		trainer.Wait()
		l.sends.Wait()
	}()

	err := l.run()
	l.summary.State, l.summary.StateHash = w.c.State(), w.c.StateHash()
	l.summary.Confirmed, l.summary.Of = w.c.Confirmed()
	l.summary.Refused = w.refused.snapshot()
	l.summary.ControlBytes, l.summary.BulkBytes, l.summary.StateBytes = w.controlBytes.Load(), w.bulkBytes.Load(), w.stateBytes.Load()
	return l.summary, err
}

func (l *loop) run() error {
	w := l.w
	ticker := time.NewTicker(w.cfg.TickEvery)
	defer ticker.Stop()
	l.lastProgress = time.Now()
	l.perform()
	for {
		select {
		case <-l.ctx.Done():
			return l.ctx.Err()
		case in := <-w.inbox:
			if in.state != nil {
				b := l.encodeState(in.state.round, in.state.hash)
				if l.finishing && b != nil {
					l.served++
				}
				in.state.reply <- b
				continue
			}
			if (in.msg.Type == train.MsgReady || in.msg.Type == train.MsgAnnounce) && w.bans.has(in.msg.From) {
				// A banned peer is admitted to no round and leads none (Ban).
				w.refused.add("banned")
				continue
			}
			if w.members[in.msg.From] {
				l.heard[in.msg.From] = time.Now()
				if in.msg.Type == train.MsgDone {
					l.lastProgress = time.Now()
				}
			}
			err := w.c.Step(time.Now(), in.msg)
			if err != nil && !errors.Is(err, train.ErrStale) {
				w.refused.add(refusalReason(err))
				w.log.Debug("message refused", "msg", in.msg.String(), "err", err)
			}
			l.audit.incoming(in.msg, err == nil)
		case r := <-l.results:
			if err := l.onTrainResult(r); err != nil {
				return err
			}
		case f := <-l.fetches:
			if f.err != nil {
				w.log.Info("state fetch failed", "round", f.round, "peer", f.peer.Short(), "err", f.err)
				w.c.FetchFailed(time.Now(), f.round, f.peer)
			} else if err := w.c.StateFetched(time.Now(), f.state); err != nil {
				w.log.Warn("fetched state refused", "round", f.round, "peer", f.peer.Short(), "err", err)
				w.c.FetchFailed(time.Now(), f.round, f.peer)
			} else {
				w.log.Info("state fetched; joining", "round", f.round, "peer", f.peer.Short())
				// The joiner's first round starts here, not when Run
				// started or when it last took part.
				l.lastDone = time.Now()
				l.lastProgress = l.lastDone
			}
		case <-l.wake:
			l.wake = nil // perform, below, starts the training that was due
		case now := <-ticker.C:
			// Peers banned on outside evidence (Ban, from any goroutine)
			// no longer count among the live members a joiner's quorum
			// needs, nor do their reports of a state.
			for peer := range w.bans.snapshot() {
				w.c.Distrust(peer)
			}
			w.c.Tick(now)
			if l.finishing && len(l.pending) == 0 && !now.Before(l.lingerUntil) &&
				(l.served >= w.c.Behind(now) || !now.Before(l.lingerCap)) {
				return nil
			}
			if !l.finishing && !l.training && now.Sub(l.lastProgress) > w.cfg.StallTimeout {
				return l.stalled(now)
			}
		}
		l.perform()
	}
}

// stalled is the error of a job that made no progress for StallTimeout:
// it names the peers heard from least recently, the likeliest slow or
// broken links.
func (l *loop) stalled(now time.Time) error {
	type quiet struct {
		id  gridmind.NodeID
		ago time.Duration
	}
	var peers []quiet
	for _, id := range l.w.cfg.Workers {
		if id == l.w.Self() {
			continue
		}
		ago := now.Sub(l.lastProgress) + l.w.cfg.StallTimeout // never heard: longer than anyone
		if t, ok := l.heard[id]; ok {
			ago = now.Sub(t)
		}
		peers = append(peers, quiet{id, ago})
	}
	slices.SortFunc(peers, func(a, b quiet) int { return cmp.Compare(b.ago, a.ago) })
	var names []string
	for _, p := range peers[:min(len(peers), 4)] {
		if _, ok := l.heard[p.id]; ok {
			names = append(names, fmt.Sprintf("%s (%s ago)", p.id.Short(), p.ago.Round(time.Second)))
		} else {
			names = append(names, p.id.Short()+" (never)")
		}
	}
	return gridmind.E(gridmind.KindUnavailable, "diloco.run",
		"no progress for %s at round %d (%s): the links to these peers are the likeliest cause: %s",
		now.Sub(l.lastProgress).Round(time.Second), l.w.c.Round(), l.w.c.Phase(), strings.Join(names, ", "))
}

func (l *loop) encodeState(round uint64, hash train.Hash) []byte {
	s := l.w.c.StateFor(round, hash)
	if s == nil {
		return nil
	}
	b, err := s.MarshalBinary()
	if err != nil {
		return nil
	}
	return b
}

func (l *loop) onTrainResult(r trainResult) error {
	w := l.w
	if r.isEval {
		p := l.pending[r.round]
		delete(l.pending, r.round)
		if r.err != nil {
			w.log.Warn("evaluation failed", "round", r.round, "err", r.err)
		} else {
			l.summary.EvalLoss = r.evalLoss
		}
		if p != nil {
			if r.err == nil {
				p.EvalLoss = r.evalLoss
			}
			l.report(*p)
		}
		l.maybeFinish()
		return nil
	}
	if r.ahead {
		// Trained from an estimate, never the round's θ: only
		// TrainingDoneFrom may take it.
		return l.onAheadResult(r)
	}
	if r.seq == l.trainSeq {
		l.training = false // an older job's result says nothing of the one in progress
	}
	if r.err != nil {
		if l.ctx.Err() != nil || errors.Is(r.err, context.Canceled) {
			return nil // cancelled because this worker was left out of the round: not progress
		}
		return gridmind.E(gridmind.KindInternal, "diloco.train", "round %d: %w", r.round, r.err)
	}
	l.lastProgress = time.Now()
	l.trained[r.round] = r
	for k := range l.trained {
		if k+4 < r.round {
			delete(l.trained, k)
		}
	}
	if err := w.c.TrainingDone(time.Now(), r.round, r.local); err != nil && !errors.Is(err, train.ErrStale) {
		w.log.Warn("training result refused", "round", r.round, "err", err)
	} else if err == nil {
		l.audit.trained(r)
	}
	return nil
}

// perform sends the coordinator's messages and carries out its actions.
func (l *loop) perform() {
	w := l.w
	for w.c.HasOutputs() {
		out := w.c.Outputs()
		for _, m := range out.Messages {
			if m.Type == train.MsgAnnounce {
				l.led = m.Round + 1
			}
			l.audit.outgoing(&m)
			if w.cfg.Tamper == nil {
				l.send(m)
				continue
			}
			for _, t := range w.cfg.Tamper(m) {
				l.send(t)
			}
		}
		for _, a := range out.Actions {
			switch a := a.(type) {
			case train.Train:
				l.onTrain(a)
			case train.FetchState:
				l.fetch(a)
			case train.RoundComplete:
				l.roundComplete(a)
			case train.Excluded:
				l.summary.Excluded++
				w.log.Info("left out of a round", "round", a.Round, "reason", a.Reason)
				l.dropAheadThrough(a.Round) // it will train that round from a fetched state
				if l.trainCancel != nil {
					l.trainCancel()
					l.trainCancel = nil
				}
			case train.HashMismatch:
				w.log.Warn("peer reached another state", "round", a.Round, "peer", a.Peer.Short(), "theirs", a.Theirs.Short(), "mine", a.Mine.Short())
			case train.Rejected:
				l.summary.Rejected = append(l.summary.Rejected, a)
				l.rejected[a.Round] = append(l.rejected[a.Round], a)
				w.log.Warn("contribution rejected by the reducers' screen", "round", a.Round, "worker", a.Worker.Short(),
					"reason", a.Reason.String(), "parts", a.Parts, "of", a.Of, "excluded_from_job", a.Banned)
				if w.cfg.OnRejected != nil {
					w.cfg.OnRejected(a)
				}
			case train.Misbehaviour:
				l.summary.Evidence = append(l.summary.Evidence, a.Evidence)
				w.log.Warn("worker excluded on evidence", "round", a.Evidence.Round, "offender", a.Evidence.Offender.Short(),
					"kind", a.Evidence.Kind.String(), "found_here", a.Detected)
				if w.cfg.OnEvidence != nil {
					w.cfg.OnEvidence(a.Evidence)
				}
			}
		}
	}
	l.noteWait()
	l.trainAhead()
}

func (l *loop) send(m train.Message) {
	w := l.w
	var data []byte
	var err error
	if m.Bulk() {
		data, err = m.MarshalBinary()
	} else {
		data, err = w.signer.seal(m, time.Now())
	}
	if err != nil {
		w.log.Error("cannot encode message", "msg", m.String(), "err", err)
		return
	}
	l.sends.Add(1)
	go func() {
		defer l.sends.Done()
		ctx, cancel := context.WithTimeout(l.ctx, w.cfg.SendTimeout)
		defer cancel()
		var err error
		switch {
		case m.Bulk():
			w.bulkBytes.Add(int64(len(data)))
			err = w.cfg.Transport.SendBulk(ctx, m.To, data)
		case m.To == "":
			w.controlBytes.Add(int64(len(data)))
			err = w.cfg.Transport.Broadcast(ctx, data)
		default:
			w.controlBytes.Add(int64(len(data)))
			err = w.cfg.Transport.Send(ctx, m.To, data)
		}
		if err != nil && l.ctx.Err() == nil {
			w.log.Debug("send failed", "msg", m.String(), "err", err)
		}
	}()
}

func (l *loop) fetch(a train.FetchState) {
	w := l.w
	l.sends.Add(1)
	go func() {
		defer l.sends.Done()
		ctx, cancel := context.WithTimeout(l.ctx, w.cfg.SendTimeout)
		defer cancel()
		res := fetchResult{round: a.Round, peer: a.Peer}
		res.state, res.err = l.fetchFrom(ctx, a.Peer, a)
		if sp, ok := w.cfg.Transport.(StateProvider); ok && res.err != nil {
			// The peer named by the protocol failed; ask the DHT who else holds it.
			peers, err := sp.FindStateProviders(ctx, a.StateHash)
			if err != nil {
				w.log.Debug("state provider lookup failed", "err", err)
			}
			for _, p := range peers {
				if p == a.Peer || p == w.Self() {
					continue
				}
				if st, err := l.fetchFrom(ctx, p, a); err == nil {
					res.state, res.err = st, nil
					break
				}
			}
		}
		select {
		case l.fetches <- res:
		case <-l.ctx.Done():
		}
	}()
}

func (l *loop) fetchFrom(ctx context.Context, peer gridmind.NodeID, a train.FetchState) (*train.GlobalState, error) {
	b, err := l.w.cfg.Transport.FetchState(ctx, peer, a.Round, a.StateHash)
	if err != nil {
		return nil, err
	}
	st, err := train.UnmarshalGlobalState(b, l.w.numParams)
	if err == nil && st.Hash() != a.StateHash {
		err = fmt.Errorf("%s sent a state that does not match hash %s", peer.Short(), a.StateHash.Short())
	}
	return st, err
}

func (l *loop) startTraining(a train.Train) {
	w := l.w
	if l.trainCancel != nil {
		l.trainCancel()
		l.trainCancel = nil
	}
	eval := w.cfg.Eval != nil && l.pending[a.Round-1] != nil
	if a.Round >= w.cfg.Rounds || w.leaving.Load() {
		l.finishing = true
		l.lingerUntil = time.Now().Add(w.cfg.Linger)
		l.lingerCap = l.lingerUntil
		if a.Round >= w.cfg.Rounds {
			// Long enough for a left-out member to see the round done
			// (its ready wait at most) and fetch over a slow link.
			l.lingerCap = l.lingerCap.Add(2 * w.cfg.Protocol.Timing.WithDefaults().MaxReadyWait)
		}
		if eval {
			l.enqueue(trainJob{ctx: l.ctx, round: a.Round, theta: a.Theta, eval: true, evalOnly: true})
		}
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	l.trainCancel = cancel
	l.training = true
	l.trainSeq++
	l.enqueue(trainJob{ctx: ctx, seq: l.trainSeq, round: a.Round, theta: a.Theta, eval: eval, extra: elasticBudget(l.aheads, l.gaps)})
}

func (l *loop) enqueue(j trainJob) {
	select {
	case l.jobs <- j:
	case <-l.ctx.Done():
	}
}

func (l *loop) maybeFinish() {
	if l.finishing && len(l.pending) == 0 {
		l.lingerUntil = time.Now().Add(l.w.cfg.Linger)
	}
}

func (l *loop) roundComplete(a train.RoundComplete) {
	w := l.w
	l.lastProgress = time.Now()
	if w.cfg.OnState != nil {
		w.cfg.OnState(a.State)
	}
	if a.Repaired {
		w.log.Warn("round re-applied without an equivocating reducer's part", "round", a.Round, "theta", a.ThetaHash.Short())
	} else {
		l.summary.Completed++
	}
	now := time.Now()
	total := w.controlBytes.Load() + w.bulkBytes.Load() + w.stateBytes.Load()
	p := Progress{
		Node: w.Self(), Round: a.Round, EvalLoss: math.NaN(), TrainLoss: math.NaN(),
		BytesSent: total, RoundBytes: total - l.lastBytes,
		Participants: len(a.Participants), Members: a.Participants, Contributors: len(a.Participants), Leader: a.Leader,
		ThetaHash: a.ThetaHash, StateHash: a.StateHash, AllReduce: a.AllReduce, RoundTime: now.Sub(l.lastDone),
	}
	for _, c := range a.Contributors {
		p.Contributors = min(p.Contributors, len(c))
	}
	p.Rejected = l.rejected[a.Round]
	for r := range l.rejected {
		if r+4 < a.Round {
			delete(l.rejected, r)
		}
	}
	if t, ok := l.trained[a.Round]; ok {
		p.TrainLoss, p.Tokens, p.TrainTime, p.Steps = t.stats.Loss, t.stats.Tokens, t.took, t.steps
		if t.took > 0 {
			p.TokensPerSec = float64(t.stats.Tokens) / t.took.Seconds()
		}
	}
	l.lastBytes, l.lastDone = total, now
	if sp, ok := w.cfg.Transport.(StateProvider); ok {
		l.sends.Add(1)
		go func() { // advertise the new state for joiners; best effort
			defer l.sends.Done()
			ctx, cancel := context.WithTimeout(l.ctx, w.cfg.SendTimeout)
			defer cancel()
			if err := sp.ProvideState(ctx, a.StateHash); err != nil && l.ctx.Err() == nil {
				w.log.Debug("state provider record failed", "err", err)
			}
		}()
	}
	next := a.Round + 1
	last := next >= w.cfg.Rounds
	if w.cfg.CheckpointDir != "" && (last || next%uint64(w.cfg.CheckpointEvery) == 0) {
		if err := SaveCheckpoint(w.cfg.CheckpointDir, a.State); err != nil {
			w.log.Error("checkpoint failed", "round", next, "err", err)
		}
	}
	evalDue := w.cfg.Eval != nil && (last || (w.cfg.EvalEvery > 0 && next%uint64(w.cfg.EvalEvery) == 0))
	if evalDue {
		l.pending[a.Round] = &p // reported when the evaluation (run before the next training) is done
		return
	}
	l.report(p)
}

func (l *loop) report(p Progress) {
	w := l.w
	w.log.Debug("round complete", "round", p.Round, "eval_loss", p.EvalLoss, "participants", p.Participants, "theta", p.ThetaHash.Short())
	if w.cfg.Progress != nil {
		w.cfg.Progress(p)
	}
}

// noteWait keeps how long this worker waited from the end of its training
// to the round's announcement (for aheadStart), and from the end of its H
// steps (for elasticBudget).
func (l *loop) noteWait() {
	w := l.w
	st, phase := w.c.State(), w.c.Phase()
	if st == nil {
		return
	}
	now := time.Now()
	switch {
	case phase == train.PhaseReady && (l.readyAt.IsZero() || l.readyRound != st.Round):
		l.readyRound, l.readyAt, l.waited = st.Round, now, false
	case phase == train.PhaseReducing && l.readyRound == st.Round && !l.readyAt.IsZero() && !l.waited:
		l.waited = true
		keep := func(list []time.Duration, d time.Duration) []time.Duration {
			list = append(list, d)
			return list[max(0, len(list)-waitsKept):]
		}
		if ahead, ok := w.c.ReadyAhead(st.Round); ok {
			if r, ok := l.trained[st.Round]; ok {
				l.aheads = keep(l.aheads, ahead+r.extraTook)
			}
		}
		if l.led == st.Round+1 {
			break // a leader's own announcement makes no trip
		}
		wait := now.Sub(l.readyAt)
		l.waits = keep(l.waits, wait)
		if r, ok := l.trained[st.Round]; ok {
			l.gaps = keep(l.gaps, wait+r.extraTook)
		}
	}
}

// elasticBudget is how long a worker with elastic steps
// (Config.MaxInnerSteps) trains on after its H steps: about as long as the
// round's last participant still trains after them. aheads are the recent
// times from this worker's H-th step to the last participant's "ready",
// as the leaders measured them (train.Coordinator.ReadyAhead, plus the
// extra steps' time): their median of the last three is the usual wait
// for the others. Without three of them (leaders that send no offsets)
// it falls back on gaps, the recent times from the H-th step to the
// round's announcement: the shortest is the announcement's trip alone
// (this worker was the last then), so the median of the last three less
// it is the usual wait — which a worker that always waits for the same
// slower members never sees, as its shortest gap holds their lag too.
// The worker takes three quarters of it, so that it does not become the
// one everyone waits for; one that does sees it at once (its wait shrinks
// to nothing) and takes three quarters of its extra time the next round.
func elasticBudget(aheads, gaps []time.Duration) time.Duration {
	if usual, ok := recentMedian(aheads); ok {
		return usual * 3 / 4
	}
	wait, _ := waitBeyondTrip(gaps)
	return wait * 3 / 4
}

// waitBeyondTrip is the usual part of recent waits for the announcement
// spent waiting for other participants: the median of the last three less
// the shortest kept (the announcement's trip alone, when this worker was
// the last). False with fewer than three waits.
func waitBeyondTrip(waits []time.Duration) (time.Duration, bool) {
	usual, ok := recentMedian(waits)
	if !ok {
		return 0, false
	}
	return max(0, usual-slices.Min(waits)), true
}

// recentMedian is the median of the last three of list (one odd round
// does not move it); false with fewer than three.
func recentMedian(list []time.Duration) (time.Duration, bool) {
	if len(list) < 3 {
		return 0, false
	}
	recent := slices.Clone(list[len(list)-3:])
	slices.Sort(recent)
	return recent[1], true
}

// trainAhead starts the next round's inner steps, from this worker's
// estimate of the next θ, while the current round's all-reduce runs
// (Config.Overlap), so that the trainer does not idle on it.
func (l *loop) trainAhead() {
	w := l.w
	if !w.cfg.Overlap {
		return
	}
	now := time.Now()
	st, phase := w.c.State(), w.c.Phase()
	if st == nil {
		return
	}
	if l.ahead != nil || l.finishing || w.leaving.Load() || st.Round+1 >= w.cfg.Rounds {
		return
	}
	switch phase {
	case train.PhaseReducing:
	case train.PhaseReady:
		if l.readyRound != st.Round {
			return
		}
		at, ok := aheadStart(l.readyAt, l.waits)
		if !ok {
			return
		}
		if now.Before(at) {
			l.wake = time.After(at.Sub(now))
			return
		}
		l.summary.EarlyStarts++
	default:
		return
	}
	l.startAhead(st.Round+1, l.estimate(st))
}

// waitsKept is how many rounds' waits for the announcement aheadStart
// looks back on.
const waitsKept = 8

// aheadStart is when a worker whose training ended at ready starts the
// next round's, before the round's announcement: at the moment the last
// participant's training probably ends. Every participant then starts
// together, as after a plain round's announcement, without idling for
// the announcement's trip (the "ready" to the leader, its gathering, the
// announcement back, a retransmission on loss).
//
// A worker's wait from its end to the announcement is the time the last
// participant still trains after it, plus that trip. The shortest of the
// recent waits is the trip alone (this worker was the last one then), the
// median of the last three the usual whole; the difference is the part
// spent waiting for the others. A worker never starts later than the
// announcement (trainAhead starts then regardless), and one that started
// early sees a longer wait next round and starts later: its start stays
// tied to the announcements, so a worker that was late once does not
// stay late, as it would if each started at its own end.
func aheadStart(ready time.Time, waits []time.Duration) (time.Time, bool) {
	wait, ok := waitBeyondTrip(waits)
	if !ok {
		return time.Time{}, false
	}
	return ready.Add(wait), true
}

// startAhead begins training round from start before the round's state
// exists.
func (l *loop) startAhead(round uint64, start []float32) {
	ctx, cancel := context.WithCancel(l.ctx)
	l.trainSeq++
	target := make(chan []float32, 1)
	l.ahead = &aheadTrain{round: round, seq: l.trainSeq, start: start, cancel: cancel, target: target}
	l.enqueue(trainJob{ctx: ctx, seq: l.trainSeq, round: round, theta: start, ahead: true, target: target, extra: elasticBudget(l.aheads, l.gaps)})
}

// onTrain carries out the coordinator's Train action.
func (l *loop) onTrain(a train.Train) {
	if l.takeAhead(a) {
		return
	}
	l.dropAheadThrough(a.Round)
	l.startTraining(a)
}

// takeAhead answers the coordinator's Train action with the training begun
// ahead for that round, if there is one; it reports whether it did.
func (l *loop) takeAhead(a train.Train) bool {
	w := l.w
	ah := l.ahead
	if ah == nil || ah.round != a.Round || w.leaving.Load() {
		return false
	}
	if l.trainCancel != nil {
		l.trainCancel()
		l.trainCancel = nil
	}
	if w.cfg.Eval != nil && l.pending[a.Round-1] != nil {
		// The evaluation of θ_{r+1} queues behind the training.
		l.enqueue(trainJob{ctx: l.ctx, round: a.Round, theta: a.Theta, eval: true, evalOnly: true})
	}
	ah.wanted = true
	if ah.target != nil {
		ah.target <- slices.Clone(a.Theta) // kept with the audit inputs; the coordinator's may change
		ah.target = nil
	}
	l.training = ah.result == nil
	if ah.result != nil {
		l.deliverAhead()
	}
	return true
}

// onAheadResult takes the result of training begun ahead.
func (l *loop) onAheadResult(r trainResult) error {
	ah := l.ahead
	if ah == nil || ah.seq != r.seq {
		return nil // given up
	}
	if r.err != nil {
		l.dropAhead()
		if l.ctx.Err() != nil || errors.Is(r.err, context.Canceled) {
			return nil
		}
		return gridmind.E(gridmind.KindInternal, "diloco.train", "round %d: %w", r.round, r.err)
	}
	l.lastProgress = time.Now()
	ah.result = &r
	l.trained[r.round] = r
	if ah.wanted {
		l.deliverAhead()
	}
	return nil
}

// deliverAhead hands the finished ahead training to the coordinator.
func (l *loop) deliverAhead() {
	w := l.w
	ah := l.ahead
	l.ahead, l.training = nil, false
	err := w.c.TrainingDoneFrom(time.Now(), ah.round, ah.result.from, ah.result.local, ah.result.took)
	if err != nil && !errors.Is(err, train.ErrStale) {
		w.log.Warn("training result refused", "round", ah.round, "err", err)
	} else if err == nil {
		l.audit.trained(*ah.result)
	}
}

// dropAhead gives up the training begun ahead, if any.
func (l *loop) dropAhead() {
	if l.ahead == nil {
		return
	}
	if l.ahead.wanted {
		l.training = false // the coordinator waited on it
	}
	l.ahead.cancel()
	l.ahead = nil
}

// dropAheadThrough gives up the training begun ahead if it is for round
// or an earlier one (a later one stays useful).
func (l *loop) dropAheadThrough(round uint64) {
	if l.ahead != nil && l.ahead.round <= round {
		l.dropAhead()
	}
}

// estimate is where θ_{r+1} will probably be: the outer step of st (round
// r's state) with this worker's own pseudo-gradient of round r standing in
// for the round's combined one (an "eager" update). Training ahead from it
// rather than from θ_r makes the Δ that reaches θ_{r+1} much less stale;
// without an own Δ of round r it is θ_r. Call while st's round is the
// coordinator's (its Δ is the coordinator's, read-only).
func (l *loop) estimate(st *train.GlobalState) []float32 {
	delta := l.w.c.PseudoGradient()
	if delta == nil {
		return st.Theta
	}
	outer := l.w.cfg.Protocol.Outer
	if outer == (train.Nesterov{}) {
		outer = train.DefaultOuter()
	}
	theta, velocity := slices.Clone(st.Theta), slices.Clone(st.Velocity)
	if err := outer.Step(theta, velocity, delta); err != nil {
		return st.Theta
	}
	return theta
}
