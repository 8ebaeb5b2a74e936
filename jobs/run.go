package jobs

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
)

// EventKind says what an Event is about.
type EventKind string

const (
	EventPosted   EventKind = "posted"
	EventPlaced   EventKind = "placed"
	EventStarted  EventKind = "started"
	EventRound    EventKind = "round"    // a round's reports are in
	EventSettled  EventKind = "settled"  // a round was paid on the ledger
	EventMissing  EventKind = "missing"  // an active worker stopped reporting
	EventJoined   EventKind = "joined"   // a standby worker was asked to join
	EventFinished EventKind = "finished" // every round settled
	EventError    EventKind = "error"
)

// Event is one thing that happened to a job, for progress displays.
type Event struct {
	Kind      EventKind
	Job       ledger.JobID
	Text      string
	Round     *RoundResult
	Placement *market.Placement
	Node      gridmind.NodeID
}

// RoundResult is a round as the requester saw it.
type RoundResult struct {
	Round        uint64                     `json:"round"`
	ThetaHash    string                     `json:"theta_hash"`
	EvalLoss     float64                    `json:"eval_loss"`
	TrainLoss    float64                    `json:"train_loss"`
	Participants []gridmind.NodeID          `json:"participants"`
	Tokens       int64                      `json:"tokens"`
	TokensPerSec float64                    `json:"tokens_per_sec"`
	BytesSent    int64                      `json:"bytes_sent"` // all participants, this round
	Seconds      float64                    `json:"seconds"`
	EnergyWh     float64                    `json:"energy_wh"`
	RenewableWh  float64                    `json:"renewable_wh"`
	CO2Grams     float64                    `json:"co2_g"`
	Reports      map[gridmind.NodeID]Report `json:"reports"`
	Payments     []ledger.Payment           `json:"payments,omitempty"`
	Settled      bool                       `json:"settled"`
}

type roundState struct {
	first   time.Time
	reports map[gridmind.NodeID]Report
	closed  bool
}

// Run follows one job this node requested.
type Run struct {
	ID           ledger.JobID
	Spec         gridmind.JobSpec
	Placement    *market.Placement
	Active       []gridmind.NodeID
	Standby      []gridmind.NodeID
	PostedHeight int64

	req  *Requester
	opts SubmitOptions

	mu        sync.Mutex
	rounds    map[uint64]*roundState
	results   []RoundResult
	lastSeen  map[gridmind.NodeID]uint64 // last round each worker reported
	missing   []gridmind.NodeID
	goneSince map[gridmind.NodeID]time.Time // active workers not connected, since when
	joined    []gridmind.NodeID
	settleQ   chan uint64
	wg        sync.WaitGroup
	done      chan struct{}
	doneOnce  sync.Once
	err       error
	finished  bool

	settledSeen map[uint64]bool // rounds whose settlement was reported
	lastErr     string          // the last settlement error reported, to report each once
}

func newRun(r *Requester, id ledger.JobID, spec gridmind.JobSpec, o SubmitOptions, active, standby []gridmind.NodeID) *Run {
	return &Run{
		ID: id, Spec: spec, req: r, opts: o,
		Active: slices.Clone(active), Standby: slices.Clone(standby),
		rounds: map[uint64]*roundState{}, lastSeen: map[gridmind.NodeID]uint64{}, goneSince: map[gridmind.NodeID]time.Time{},
		done: make(chan struct{}), settleQ: make(chan uint64, spec.Rounds+1), settledSeen: map[uint64]bool{},
	}
}

// workers lists the job's workers: active, then standby.
func (run *Run) workers() []gridmind.NodeID {
	return append(slices.Clone(run.Active), run.Standby...)
}

// start protects the connections to the workers (the connection manager
// may trim others: a worker with no connection is taken for gone) and
// starts following the job on the ledger until it ends or ctx does.
func (run *Run) start(ctx context.Context) {
	for _, p := range run.workers() {
		run.req.Node.Host().Protect(p, "job/"+string(run.ID))
	}
	run.wg.Add(1)
	go run.settleLoop(ctx)
}

func (run *Run) emit(e Event) {
	if run.opts.Events != nil {
		run.opts.Events(e)
	}
}

// accept takes one worker's report of a round.
func (run *Run) accept(from gridmind.NodeID, rep Report) error {
	run.mu.Lock()
	defer run.mu.Unlock()
	if !slices.Contains(run.Active, from) && !slices.Contains(run.Standby, from) {
		return fmt.Errorf("%s is not a worker of job %s", from.Short(), run.ID)
	}
	if rep.Error != "" {
		run.emit(Event{Kind: EventError, Job: run.ID, Node: from, Text: rep.Error})
		return nil
	}
	if rep.Round >= uint64(run.Spec.Rounds) {
		return fmt.Errorf("round %d is beyond the job's %d", rep.Round, run.Spec.Rounds)
	}
	rs := run.rounds[rep.Round]
	if rs == nil {
		rs = &roundState{first: time.Now(), reports: map[gridmind.NodeID]Report{}}
		run.rounds[rep.Round] = rs
	}
	if rs.closed {
		return nil // a straggler's report after the round was settled
	}
	rs.reports[from] = rep
	run.lastSeen[from] = rep.Round
	if len(rs.reports) >= rep.Participants && rep.Participants > 0 {
		run.closeRound(rep.Round)
	}
	return nil
}

// closeRound settles round r with the reports it has (caller holds mu).
// Earlier rounds still waiting for a straggler are closed first: a later
// round is complete, so whoever did not report the earlier one is gone,
// and rounds are settled in order.
func (run *Run) closeRound(r uint64) {
	rs := run.rounds[r]
	if rs == nil || rs.closed {
		return
	}
	for earlier := range run.rounds {
		if earlier < r && !run.rounds[earlier].closed {
			run.closeRound(earlier)
		}
	}
	rs.closed = true
	best, contributors := tally(rs.reports)
	res := RoundResult{Round: r, ThetaHash: best, EvalLoss: -1, Reports: map[gridmind.NodeID]Report{}}
	var trainLoss float64
	for id, rep := range rs.reports {
		if !contributors[id] {
			continue
		}
		res.Reports[id] = rep
		res.Participants = append(res.Participants, id)
		res.Tokens += rep.Tokens
		res.TokensPerSec += rep.TokensPerSec
		res.BytesSent += rep.RoundBytes
		res.EnergyWh += rep.EnergyWh
		res.RenewableWh += rep.RenewableWh
		res.CO2Grams += rep.CO2Grams
		res.Seconds = max(res.Seconds, rep.RoundSeconds)
		trainLoss += rep.TrainLoss
		if rep.EvalLoss >= 0 {
			res.EvalLoss = rep.EvalLoss
		}
	}
	res.Participants = sortedIDs(res.Participants)
	if n := len(res.Participants); n > 0 {
		res.TrainLoss = trainLoss / float64(n)
	}
	run.results = append(run.results, res)
	sort.Slice(run.results, func(i, j int) bool { return run.results[i].Round < run.results[j].Round })
	run.emit(Event{Kind: EventRound, Job: run.ID, Round: &res})
	run.checkMissing(r)
	run.settleQ <- r
}

// checkMissing notices active workers that did not report round r and,
// for each, asks a standby worker to join at the next round boundary.
func (run *Run) checkMissing(r uint64) {
	for _, id := range run.Active {
		if last, ok := run.lastSeen[id]; ok && last >= r {
			continue
		}
		run.replace(id, fmt.Sprintf("worker %s missed round %d", id.Short(), r))
	}
}

// checkGone notices an active worker whose node has dropped off the
// network (no libp2p connection for a while) before it misses a round, so
// a standby can be brought in a round sooner (caller holds mu).
func (run *Run) checkGone(now time.Time) {
	connected := map[gridmind.NodeID]bool{}
	for _, id := range run.req.Node.Host().Peers() {
		connected[id] = true
	}
	for _, id := range run.Active {
		if connected[id] {
			delete(run.goneSince, id)
			continue
		}
		since, ok := run.goneSince[id]
		if !ok {
			run.goneSince[id] = now
			continue
		}
		if now.Sub(since) >= goneAfter {
			run.replace(id, fmt.Sprintf("worker %s dropped off the network", id.Short()))
		}
	}
}

// goneAfter is how long a worker may be unreachable before it is replaced:
// long enough to ride out a reconnect, short next to a round.
const goneAfter = 2 * time.Second

// replace marks an active worker missing (once) and leases the next unused
// standby worker, which joins at the next round boundary (caller holds mu).
func (run *Run) replace(id gridmind.NodeID, why string) {
	if slices.Contains(run.missing, id) {
		return
	}
	run.missing = append(run.missing, id)
	run.emit(Event{Kind: EventMissing, Job: run.ID, Node: id, Text: why})
	for _, sb := range run.Standby {
		if slices.Contains(run.joined, sb) {
			continue
		}
		run.joined = append(run.joined, sb)
		// The standby joins at a round boundary: its record starts two
		// rounds after the latest one seen, so it is never counted as
		// missing a round it could not have joined.
		var from uint64
		for r := range run.rounds {
			from = max(from, r+2)
		}
		go func(sb gridmind.NodeID) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := run.req.join(ctx, run.ID, sb, from); err != nil {
				run.emit(Event{Kind: EventError, Job: run.ID, Node: sb, Text: "join: " + err.Error()})
				return
			}
			run.emit(Event{Kind: EventJoined, Job: run.ID, Node: sb, Text: fmt.Sprintf("standby %s joins in place of %s", sb.Short(), id.Short())})
		}(sb)
		return
	}
}

// settleLoop follows the job on the ledger until it ends: it closes
// rounds whose stragglers did not report in time, and reconciles the
// ledger with the rounds closed here (see sync) until the ledger shows
// every round settled, retrying whatever failed.
func (run *Run) settleLoop(ctx context.Context) {
	defer run.wg.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			run.finish(ctx.Err())
			return
		case now := <-tick.C:
			run.mu.Lock()
			run.checkGone(now)
			for r, rs := range run.rounds {
				if !rs.closed && time.Since(rs.first) > run.opts.ReportTimeout {
					run.closeRound(r)
				}
			}
			run.mu.Unlock()
		case <-run.settleQ:
		}
		// Several steps may be due at once (a receipt, then the next
		// round's); take them without waiting for the next tick.
		for range 2 * run.Spec.Rounds {
			acted, done, err := run.sync(ctx)
			if err != nil {
				run.reportError(err)
			}
			if done {
				run.mu.Lock()
				run.finished = err == nil
				run.mu.Unlock()
				if err == nil {
					run.emit(Event{Kind: EventFinished, Job: run.ID, Text: fmt.Sprintf("all %d rounds settled", run.Spec.Rounds)})
				}
				run.req.forget(run.ID)
				run.finish(err)
				return
			}
			if !acted || err != nil {
				break
			}
		}
	}
}

// reportError emits a settlement error, once until a different one comes.
func (run *Run) reportError(err error) {
	msg := err.Error()
	run.mu.Lock()
	same := msg == run.lastErr
	run.lastErr = msg
	run.mu.Unlock()
	if !same {
		run.emit(Event{Kind: EventError, Job: run.ID, Text: "settlement (will retry): " + msg})
	}
}

// sync does the next thing the ledger needs for this job, reading the
// ledger afresh each time (so a failed or lost transaction is simply done
// again, with the wallet's nonce re-read): settle the oldest receipted
// round once its dispute window has passed, else submit the receipt of the
// next round if it has closed here. done is true when the job has ended on
// the ledger; err then says why if it did not complete.
func (run *Run) sync(ctx context.Context) (acted, done bool, err error) {
	c := run.req.Client
	job, err := c.Job(ctx, run.ID)
	if err != nil {
		return false, false, err
	}
	receipts, err := c.Receipts(ctx, run.ID)
	if err != nil {
		return false, false, err
	}
	run.noteSettled(receipts)
	switch {
	case job.State == ledger.JobCompleted:
		return false, true, nil
	case !job.Open():
		return false, true, gridmind.E(gridmind.KindConflict, "jobs", "job %s was %s on the ledger after %d of %d rounds settled (paid %s, refunded %s)",
			run.ID, job.State, job.RoundsSettled, run.Spec.Rounds, job.Paid, job.Refunded)
	case run.opts.WithholdPayment:
		return false, false, nil
	}
	if len(job.Pending) > 0 {
		params, err := run.params(ctx)
		if err != nil {
			return false, false, err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return false, false, err
		}
		if first, due := settleable(job, receipts, params, st.Height); due {
			if _, err := run.req.Wallet.Submit(ctx, &ledger.SettleRound{Job: run.ID, Round: first}); err != nil {
				return false, false, fmt.Errorf("settling round %d: %w", first, err)
			}
			return true, false, nil
		}
	}
	next := job.NextRound()
	if next >= uint64(run.Spec.Rounds) {
		return false, false, nil
	}
	run.mu.Lock()
	res, ok := run.result(next)
	run.mu.Unlock()
	if !ok {
		return false, false, nil // not closed here yet
	}
	if len(res.Participants) == 0 {
		return false, false, fmt.Errorf("round %d has no agreeing reports to receipt", next)
	}
	hash, err := ledger.ParseHash(res.ThetaHash)
	if err != nil {
		return false, false, fmt.Errorf("round %d: θ hash: %w", next, err)
	}
	// A worker whose lease ended since (a fraud proof excludes it) is not
	// credited: the ledger only receipts contributors holding leases.
	contributors := slices.DeleteFunc(sortedIDs(res.Participants), func(id gridmind.NodeID) bool {
		return !slices.ContainsFunc(job.Leases, func(l ledger.Lease) bool { return l.Provider == id && l.Active() })
	})
	if len(contributors) == 0 {
		return false, false, fmt.Errorf("round %d: no contributor holds a lease any more", next)
	}
	if _, err := run.req.Wallet.Submit(ctx, &ledger.SubmitReceipt{Job: run.ID, Round: next, ModelHash: hash, Contributors: contributors}); err != nil {
		return false, false, fmt.Errorf("receipt of round %d: %w", next, err)
	}
	return true, false, nil
}

// params reads the chain's rules (they never change).
func (run *Run) params(ctx context.Context) (ledger.Params, error) {
	return run.req.params(ctx)
}

// noteSettled records and reports the rounds the ledger shows settled.
func (run *Run) noteSettled(receipts []ledger.Receipt) {
	for _, rc := range receipts {
		if !rc.Settled {
			continue
		}
		run.mu.Lock()
		if run.settledSeen[rc.Round] {
			run.mu.Unlock()
			continue
		}
		run.settledSeen[rc.Round] = true
		res := RoundResult{Round: rc.Round, ThetaHash: rc.ModelHash.String(), EvalLoss: -1}
		for i := range run.results {
			if run.results[i].Round == rc.Round {
				run.results[i].Payments = rc.Payments
				run.results[i].Settled = true
				res = run.results[i]
			}
		}
		run.mu.Unlock()
		res.Payments, res.Settled = rc.Payments, true
		run.emit(Event{Kind: EventSettled, Job: run.ID, Round: &res, Text: fmt.Sprintf("round %d settled at height %d", rc.Round, rc.SettledHeight)})
	}
}

// result returns a copy of round r's result (caller holds mu).
func (run *Run) result(r uint64) (RoundResult, bool) {
	for _, res := range run.results {
		if res.Round == r {
			return res, true
		}
	}
	return RoundResult{}, false
}

func (run *Run) finish(err error) {
	run.doneOnce.Do(func() {
		for _, p := range run.workers() {
			run.req.Node.Host().Unprotect(p, "job/"+string(run.ID))
		}
		run.mu.Lock()
		run.err = err
		run.mu.Unlock()
		close(run.done)
	})
}

// Wait blocks until every round is settled (or ctx ends) and returns the
// rounds as seen by the requester.
func (run *Run) Wait(ctx context.Context) ([]RoundResult, error) {
	select {
	case <-ctx.Done():
		return run.Results(), ctx.Err()
	case <-run.done:
	}
	run.wg.Wait()
	run.mu.Lock()
	defer run.mu.Unlock()
	return slices.Clone(run.results), run.err
}

// Results returns the rounds so far.
func (run *Run) Results() []RoundResult {
	run.mu.Lock()
	defer run.mu.Unlock()
	return slices.Clone(run.results)
}

// Missing lists active workers that stopped reporting.
func (run *Run) Missing() []gridmind.NodeID {
	run.mu.Lock()
	defer run.mu.Unlock()
	return slices.Clone(run.missing)
}

// tally reads a round's reports, any of which may lie: the round's model
// is the θ hash most reports name (ties to the smaller hash), and its
// contributors are the workers that reported that hash, that a majority
// of those reports list among the round's members (when they list
// members), and that no majority of them lists as rejected by the screen.
// So one worker's report cannot credit a worker that was not in the round
// (itself included) nor take the credit of one that was.
func tally(reports map[gridmind.NodeID]Report) (string, map[gridmind.NodeID]bool) {
	votes := map[string]int{}
	for _, rep := range reports {
		votes[rep.ThetaHash]++
	}
	best := ""
	for h, v := range votes {
		if v > votes[best] || (v == votes[best] && h < best) {
			best = h
		}
	}
	agreeing, listing := 0, 0
	members := map[gridmind.NodeID]int{}
	rejected := map[gridmind.NodeID]int{}
	for _, rep := range reports {
		if rep.ThetaHash != best {
			continue
		}
		agreeing++
		for _, id := range slices.Compact(sortedIDs(rep.Rejected)) {
			rejected[id]++
		}
		if len(rep.Members) > 0 {
			listing++
			for _, id := range slices.Compact(sortedIDs(rep.Members)) {
				members[id]++
			}
		}
	}
	contributors := map[gridmind.NodeID]bool{}
	for id, rep := range reports {
		switch {
		case rep.ThetaHash != best,
			2*rejected[id] > agreeing,
			listing > 0 && 2*members[id] <= listing:
			continue
		}
		contributors[id] = true
	}
	return best, contributors
}

// settleable returns j's oldest receipted round and whether its dispute
// window has passed for a transaction in the block after height (anyone
// may then settle it).
func settleable(j ledger.Job, receipts []ledger.Receipt, params ledger.Params, height int64) (uint64, bool) {
	if len(j.Pending) == 0 {
		return 0, false
	}
	first := j.Pending[0]
	i := slices.IndexFunc(receipts, func(r ledger.Receipt) bool { return r.Round == first })
	return first, i >= 0 && height+1 >= receipts[i].SubmittedHeight+params.SettleDelayBlocks
}
