package ledger

import (
	"slices"

	"github.com/gridmind/gridmind"
)

// minParticipants is the fewest contributors a round of j needs to pay its
// whole pot: the spec's min_participants, or half its workers (rounded up).
func (j *Job) minParticipants() int {
	if j.Spec.MinParticipants > 0 {
		return j.Spec.MinParticipants
	}
	return (j.Spec.Workers + 1) / 2
}

// pot is what one round of j pays at most (at a multiplier of 1.0).
func (j *Job) pot() gridmind.Amount {
	if j.Spec.Rounds <= 0 {
		return j.Spec.Budget
	}
	return j.Spec.Budget / gridmind.Amount(j.Spec.Rounds)
}

// WorkPerRound is one worker's work in one round of the job, in work units
// (GFLOP): 6 FLOP per parameter per token, for TokensPerStep tokens in
// each of the spec's inner steps. It comes from the job as posted, never
// from what a worker says it did: everyone who contributed to a round did
// the same work. At least 1.
func (j *Job) WorkPerRound() uint64 {
	flopPerStep := 6 * j.Size.ModelParams * j.Size.TokensPerStep // < 2^63 by the size bounds
	return max(1, mulDiv(flopPerStep, uint64(max(j.Spec.InnerSteps, 1)), uint64(gridmind.WorkUnitFLOP)))
}

func (s *State) applySubmitReceipt(tx *Tx, b *SubmitReceipt) (TxResult, *TxError) {
	j, ok := s.job(b.Job)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", b.Job)
	}
	if !j.Open() {
		return TxResult{}, reject(CodeConflict, "job %s is %s", j.ID, j.State)
	}
	if b.Round >= uint64(j.Spec.Rounds) {
		return TxResult{}, reject(CodeInvalid, "round %d is beyond the job's %d rounds", b.Round, j.Spec.Rounds)
	}
	if _, exists := s.receipt(j.ID, b.Round); exists {
		return TxResult{}, reject(CodeConflict, "round %d of job %s already has a receipt", b.Round, j.ID)
	}
	if next := j.NextRound(); b.Round != next {
		return TxResult{}, reject(CodeInvalid, "round %d of job %s is out of order: rounds are receipted one after another, the next is %d", b.Round, j.ID, next)
	}
	for _, c := range b.Contributors {
		if !j.activeLease(c) {
			return TxResult{}, reject(CodeInvalid, "contributor %s holds no lease on job %s", c.Short(), j.ID)
		}
	}
	// Who vouches for the receipt: the requester (whose money it is), or
	// more than half of the job's leased providers. One provider alone
	// cannot receipt rounds, however it names itself.
	var signers []gridmind.NodeID
	if tx.From != j.Requester {
		msg := ReceiptSigningBytes(tx.ChainID, j.ID, b.Round, b.ModelHash, b.Contributors)
		for _, sg := range b.Signatures {
			if !j.activeLease(sg.Node) {
				return TxResult{}, reject(CodeInvalid, "signer %s holds no lease on job %s", sg.Node.Short(), j.ID)
			}
			if !verifyNodeSig(sg.Node, msg, sg.Sig) {
				return TxResult{}, reject(CodeBadSignature, "signature of %s does not match this receipt", sg.Node.Short())
			}
			signers = append(signers, sg.Node)
		}
		if quorum := j.activeLeases()/2 + 1; len(signers) < quorum {
			return TxResult{}, reject(CodeUnauthorized, "a receipt of job %s needs its requester or %d of its %d leased providers; %s brought %d signatures",
				j.ID, quorum, j.activeLeases(), tx.From.Short(), len(signers))
		}
	}
	work := j.WorkPerRound()
	parts := make([]Participation, len(b.Contributors))
	for i, c := range b.Contributors {
		parts[i] = Participation{Node: c, Work: work}
	}
	h := s.height()
	s.setReceipt(Receipt{
		Job: j.ID, Round: b.Round, ModelHash: b.ModelHash,
		Participants: parts, Submitter: tx.From, Signers: signers, SubmittedHeight: h,
	})
	j.Pending = append(j.Pending, b.Round) // the next round: Pending stays ascending
	j.ProgressHeight = h
	s.setJob(j)
	return TxResult{}, nil
}

// settleFrom is the first height at which a receipt may be settled: the
// end of its dispute window.
func (s *State) settleFrom(r *Receipt) int64 {
	return r.SubmittedHeight + s.metaRef().Params.SettleDelayBlocks
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
	// An ended job's unsettled receipts are rounds it holds until their
	// dispute window closes (held.go): they settle like any other.
	if len(j.Pending) == 0 {
		return TxResult{}, reject(CodeInternal, "job %s has an unsettled receipt for round %d but nothing pending", j.ID, b.Round)
	}
	if first := j.Pending[0]; first != b.Round {
		return TxResult{}, reject(CodeInvalid, "round %d of job %s waits for round %d to settle first", b.Round, j.ID, first)
	}
	// Anyone may settle a receipt, but only once its dispute window has
	// passed, the requester included: otherwise evidence filed in time
	// could come too late to stop a payment.
	if at := s.settleFrom(&r); s.height() < at {
		return TxResult{}, reject(CodeInvalid, "round %d of job %s is in its dispute window until height %d (now %d)", b.Round, j.ID, at, s.height())
	}
	events, err := s.settle(&j, &r)
	if err != nil {
		return TxResult{}, err
	}
	s.setJob(j)
	return TxResult{Events: events}, nil
}

// settle pays receipt r out of job j's escrow and updates the reputation
// records. It saves r and the accounts it pays; the caller saves j.
//
// A round's pot is Budget/Rounds (what is left in escrow if that is less),
// scaled down when fewer than the job's minimum contributed. Each participant gets pot × work/total work, times its reputation
// multiplier; a participant whose payment was withheld by evidence gets
// nothing. Rounding dust, what the multipliers hold back and withheld
// shares stay in escrow, and go back to the requester when the job ends.
func (s *State) settle(j *Job, r *Receipt) ([]Event, *TxError) {
	pot := min(j.pot(), j.Escrow)
	// A round that fewer than the spec's minimum contributed to pays that
	// fraction of its pot: the few who made it are not paid for the
	// missing ones' work, and the rest returns to the requester.
	if need := j.minParticipants(); len(r.Participants) < need {
		pot = gridmind.Amount(mulDiv(uint64(pot), uint64(len(r.Participants)), uint64(need)))
	}
	var totalWork uint64
	for _, p := range r.Participants {
		totalWork = satAdd(totalWork, p.Work)
	}
	payments := make([]Payment, len(r.Participants))
	var paid gridmind.Amount
	for i, p := range r.Participants {
		if slices.Contains(r.Withheld, p.Node) {
			payments[i] = Payment{Node: p.Node}
			continue
		}
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
		if slices.Contains(r.Withheld, pay.Node) {
			continue // its reputation already took the slash
		}
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
	// A leased provider missing from a settled round failed that round,
	// if the round was one it agreed to: a standby's record starts at the
	// round it was leased from.
	for _, l := range j.Leases {
		if !l.Active() || r.Round < l.FromRound {
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
	j.ProgressHeight = h
	if i, found := slices.BinarySearch(j.Pending, r.Round); found {
		j.Pending = slices.Delete(j.Pending, i, i+1)
	}
	r.Settled = true
	r.SettledHeight = h
	r.Pot = pot
	r.Payments = payments
	s.setReceipt(*r)
	switch {
	case j.Open() && j.RoundsSettled >= uint64(j.Spec.Rounds):
		ev, err := s.closeJob(j, JobCompleted)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	case !j.Open() && len(j.Pending) == 0:
		// The last round an ended job held: the rest goes back.
		ev, err := s.refund(j, j.Escrow)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	return events, nil
}
