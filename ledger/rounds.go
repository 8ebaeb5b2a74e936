package ledger

import (
	"slices"

	"github.com/gridmind/gridmind"
)

func (s *State) applySubmitReceipt(tx *Tx, b *SubmitReceipt) (TxResult, *TxError) {
	j, ok := s.job(b.Job)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", b.Job)
	}
	if !j.Open() {
		return TxResult{}, reject(CodeConflict, "job %s is %s", j.ID, j.State)
	}
	if tx.From != j.Requester && !j.activeLease(tx.From) {
		return TxResult{}, reject(CodeUnauthorized, "%s is neither the requester of job %s nor a leased provider", tx.From.Short(), j.ID)
	}
	if b.Round >= uint64(j.Spec.Rounds) {
		return TxResult{}, reject(CodeInvalid, "round %d is beyond the job's %d rounds", b.Round, j.Spec.Rounds)
	}
	if _, exists := s.receipt(j.ID, b.Round); exists {
		return TxResult{}, reject(CodeConflict, "round %d of job %s already has a receipt", b.Round, j.ID)
	}
	for _, p := range b.Participants {
		if !j.activeLease(p.Node) {
			return TxResult{}, reject(CodeInvalid, "participant %s holds no lease on job %s", p.Node.Short(), j.ID)
		}
	}
	s.setReceipt(Receipt{
		Job: j.ID, Round: b.Round, ModelHash: b.ModelHash,
		Participants: slices.Clone(b.Participants), Submitter: tx.From, SubmittedHeight: s.height(),
	})
	i, _ := slices.BinarySearch(j.Pending, b.Round)
	j.Pending = slices.Insert(j.Pending, i, b.Round)
	s.setJob(j)
	return TxResult{}, nil
}

func (s *State) applySettleRound(tx *Tx, b *SettleRound) (TxResult, *TxError) {
	j, ok := s.job(b.Job)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", b.Job)
	}
	r, ok := s.receipt(b.Job, b.Round)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "round %d of job %s has no receipt", b.Round, b.Job)
	}
	if r.Settled {
		return TxResult{}, reject(CodeConflict, "round %d of job %s was settled at height %d", b.Round, b.Job, r.SettledHeight)
	}
	if !j.Open() {
		return TxResult{}, reject(CodeConflict, "job %s is %s", j.ID, j.State)
	}
	if tx.From != j.Requester {
		if tx.From != r.Submitter && !j.activeLease(tx.From) {
			return TxResult{}, reject(CodeUnauthorized, "%s may not settle job %s: not its requester, the submitter or a leased provider", tx.From.Short(), j.ID)
		}
		if at := r.SubmittedHeight + s.metaRef().Params.SettleDelayBlocks; s.height() < at {
			return TxResult{}, reject(CodeInvalid, "round %d of job %s can be settled by a provider from height %d (now %d)", b.Round, j.ID, at, s.height())
		}
	}
	events, err := s.settle(&j, &r)
	if err != nil {
		return TxResult{}, err
	}
	s.setJob(j)
	return TxResult{Events: events}, nil
}

// settle pays receipt r out of job j's escrow and updates the reputation
// counters. It saves r and the accounts it pays; the caller saves j.
//
// A round's pot is Budget/Rounds (what is left in escrow if that is less).
// Each participant gets pot × work/total work, times its reputation
// multiplier; rounding dust and what the multipliers hold back stay in
// escrow, and go back to the requester when the job ends.
func (s *State) settle(j *Job, r *Receipt) ([]Event, *TxError) {
	pot := min(j.Spec.Budget/gridmind.Amount(j.Spec.Rounds), j.Escrow)
	var totalWork uint64
	for _, p := range r.Participants {
		totalWork += p.Work // checked not to overflow when decoded
	}
	payments := make([]Payment, len(r.Participants))
	var paid gridmind.Amount
	for i, p := range r.Participants {
		share := mulDiv(uint64(pot), p.Work, totalWork)
		mult := s.opts.multiplier(s.reputation(p.Node))
		amount := gridmind.Amount(mulDiv(share, mult, PPM))
		payments[i] = Payment{Node: p.Node, Amount: amount, MultiplierPPM: mult}
		paid += amount
	}
	if paid > j.Escrow { // impossible: shares of pot round down and pot ≤ escrow
		return nil, reject(CodeInternal, "round %d of job %s would pay %s from an escrow of %s", r.Round, j.ID, paid, j.Escrow)
	}
	h := s.height()
	var events []Event
	for _, pay := range payments {
		if pay.Amount > 0 {
			if err := s.credit(pay.Node, pay.Amount); err != nil {
				return nil, err
			}
		}
		rep := s.reputation(pay.Node)
		rep.RoundsFinished++
		// Heights only go forward, so the record never refuses evidence.
		_ = rep.Record.AddWork(ReputationParams, uint64(h), 1, 0, 0)
		s.setReputation(rep)
		events = append(events, Event{Account: pay.Node, Kind: "paid", Amount: pay.Amount, Counterparty: j.Requester, Job: j.ID})
	}
	// A leased provider missing from a settled round failed that round.
	for _, l := range j.Leases {
		if !l.Active() {
			continue
		}
		if _, found := slices.BinarySearchFunc(r.Participants, l.Provider, func(p Participation, id gridmind.NodeID) int {
			switch {
			case p.Node < id:
				return -1
			case p.Node > id:
				return 1
			}
			return 0
		}); !found {
			rep := s.reputation(l.Provider)
			rep.RoundsFailed++
			// Walking away from leased work counts as rejected work.
			_ = rep.Record.AddWork(ReputationParams, uint64(h), 0, 0, 1)
			s.setReputation(rep)
		}
	}
	j.Escrow -= paid
	j.Paid += paid
	j.RoundsSettled++
	if i, found := slices.BinarySearch(j.Pending, r.Round); found {
		j.Pending = slices.Delete(j.Pending, i, i+1)
	}
	r.Settled = true
	r.SettledHeight = h
	r.Pot = pot
	r.Payments = payments
	s.setReceipt(*r)
	if j.RoundsSettled >= uint64(j.Spec.Rounds) {
		ev, err := s.closeJob(j, JobCompleted)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	return events, nil
}
