package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/gridmind/gridmind"
)

// Apply executes a verified transaction on s, which must be a fork. A
// refused transaction changes nothing and comes back with its code and a
// reason. Every handler checks everything before it writes anything; a
// CodeInternal result means the state is broken and the block must not be
// committed.
func (s *State) Apply(v *VerifiedTx) TxResult {
	if s.parent == nil {
		return result(reject(CodeInternal, "apply to a committed base; fork it first"))
	}
	tx := v.tx
	m := s.metaRef()
	if tx.ChainID != m.ChainID {
		return result(reject(CodeWrongChain, "transaction is for chain %q, this is chain %q", tx.ChainID, m.ChainID))
	}
	sender, ok := s.account(tx.From)
	if !ok {
		return result(reject(CodeNotFound, "account %s has never been funded", tx.From))
	}
	if tx.Nonce != sender.Nonce {
		if tx.Nonce < sender.Nonce {
			return result(reject(CodeBadNonce, "nonce %d of %s was already used (next is %d)", tx.Nonce, tx.From.Short(), sender.Nonce))
		}
		return result(reject(CodeBadNonce, "nonce %d of %s is ahead of the next nonce %d", tx.Nonce, tx.From.Short(), sender.Nonce))
	}
	r, err := s.applyWithFee(tx)
	if err != nil {
		return result(err)
	}
	// The handler may have changed the sender's account (a payment to
	// itself, say), so read it again before counting the nonce.
	sender, _ = s.account(tx.From)
	sender.Nonce++
	s.setAccount(sender)
	return r
}

func result(err *TxError) TxResult { return TxResult{Code: err.Code, Log: err.Msg} }

func (s *State) applyTransfer(tx *Tx, b *Transfer) (TxResult, *TxError) {
	from, _ := s.account(tx.From)
	if from.Balance < b.Amount {
		return TxResult{}, reject(CodeInsufficient, "balance %s of %s is less than the %s to send", from.Balance, tx.From.Short(), b.Amount)
	}
	from.Balance -= b.Amount
	s.setAccount(from)
	if err := s.credit(b.To, b.Amount); err != nil {
		return TxResult{}, err
	}
	return TxResult{Events: []Event{
		{Account: tx.From, Kind: "sent", Amount: b.Amount, Counterparty: b.To},
		{Account: b.To, Kind: "received", Amount: b.Amount, Counterparty: tx.From},
	}}, nil
}

func (s *State) applyStake(tx *Tx, b *Stake) (TxResult, *TxError) {
	a, _ := s.account(tx.From)
	if a.Balance < b.Amount {
		return TxResult{}, reject(CodeInsufficient, "balance %s is less than the %s to stake", a.Balance, b.Amount)
	}
	a.Balance -= b.Amount
	a.Stake += b.Amount // cannot overflow: balance + stake ≤ supply
	s.setAccount(a)
	return TxResult{Events: []Event{{Account: tx.From, Kind: "staked", Amount: b.Amount}}}, nil
}

func (s *State) applyUnstake(tx *Tx, b *Unstake) (TxResult, *TxError) {
	a, _ := s.account(tx.From)
	m := s.metaRef()
	if a.Stake < b.Amount {
		return TxResult{}, reject(CodeInsufficient, "stake %s is less than the %s to unstake", a.Stake, b.Amount)
	}
	if len(a.Unbonding) >= m.Params.MaxUnbonding {
		return TxResult{}, reject(CodeInvalid, "already %d unbonding entries (the most allowed); wait for one to be released", len(a.Unbonding))
	}
	if p, ok := s.provider(tx.From); ok && p.ActiveLeases > 0 {
		// The stake a lease was granted on stays at risk while it runs.
		if floor := max(m.Params.MinProviderStake, p.stakeFloor()); a.Stake-b.Amount < floor {
			return TxResult{}, reject(CodeInvalid, "provider holds %d active leases; its stake may not fall below %s", p.ActiveLeases, floor)
		}
	}
	// Release at the earliest in the next block: this block's queue has
	// already been processed by BeginBlock.
	release := m.Height + max(m.Params.UnbondingBlocks, 1)
	a.Stake -= b.Amount
	a.Unbonding = append(a.Unbonding, Unbonding{Amount: b.Amount, ReleaseHeight: release})
	s.setAccount(a)
	q, _ := get(s, selUnb, unbondKey(release))
	var queue unbondQueue
	if q != nil {
		queue = q.clone()
	}
	if !slices.Contains(queue.Accounts, tx.From) {
		queue.Accounts = append(queue.Accounts, tx.From)
	}
	put(s, refUnb, unbondKey(release), queue)
	return TxResult{Events: []Event{{Account: tx.From, Kind: "unstaked", Amount: b.Amount}}}, nil
}

func (s *State) applyRegisterProvider(tx *Tx, b *RegisterProvider) (TxResult, *TxError) {
	// Registering costs only the fee: stake is what a lease needs (see
	// applyAssignLease), so a provider may register, then stake.
	m := s.metaRef()
	offer := b.Offer
	offer.Node = tx.From
	offer.Hardware.GPUs = slices.Clone(offer.Hardware.GPUs)
	p, exists := s.provider(tx.From)
	kind := "updated-offer"
	if !exists {
		p = Provider{RegisteredHeight: m.Height}
		kind = "registered"
	}
	p.Offer = offer
	p.UpdatedHeight = m.Height
	s.setProvider(p)
	return TxResult{Events: []Event{{Account: tx.From, Kind: kind}}}, nil
}

// JobIDFor is the id of the job that the transaction with this chain,
// sender and nonce creates, so a requester knows it before submitting.
func JobIDFor(chainID string, requester gridmind.NodeID, nonce uint64) JobID {
	h := sha256.New()
	h.Write([]byte("gridmind/job/v1\x00"))
	h.Write([]byte(chainID))
	h.Write([]byte{0})
	h.Write([]byte(requester))
	h.Write(binary.BigEndian.AppendUint64(nil, nonce))
	return jobIDFromBytes(h.Sum(nil)[:jobIDBytes])
}

func (s *State) applyPostJob(tx *Tx, b *PostJob) (TxResult, *TxError) {
	a, _ := s.account(tx.From)
	m := s.metaRef()
	if a.Balance < b.Spec.Budget {
		return TxResult{}, reject(CodeInsufficient, "balance %s is less than the job budget %s", a.Balance, b.Spec.Budget)
	}
	id := JobIDFor(tx.ChainID, tx.From, tx.Nonce)
	if b.Spec.DeadlineUnix > 0 && b.Spec.DeadlineUnix <= m.Time {
		return TxResult{}, reject(CodeInvalid, "job deadline %d has passed (ledger time %d)", b.Spec.DeadlineUnix, m.Time)
	}
	if _, exists := s.job(id); exists {
		return TxResult{}, reject(CodeConflict, "job %s already exists", id)
	}
	a.Balance -= b.Spec.Budget
	s.setAccount(a)
	spec := b.Spec
	spec.RegionsAllowed = slices.Clone(spec.RegionsAllowed)
	spec.RegionsExcluded = slices.Clone(spec.RegionsExcluded)
	s.setJob(Job{ID: id, Requester: tx.From, Spec: spec, Size: b.Size, State: JobOpen, Escrow: spec.Budget,
		PostedHeight: m.Height, ProgressHeight: m.Height})
	return TxResult{Data: []byte(id), Events: []Event{{Account: tx.From, Kind: "escrowed", Amount: spec.Budget, Job: id}}}, nil
}

// requesterJob loads a job that the sender must own and that must be open.
func (s *State) requesterJob(tx *Tx, id JobID) (Job, *TxError) {
	j, ok := s.job(id)
	if !ok {
		return Job{}, reject(CodeNotFound, "no job %s", id)
	}
	if j.Requester != tx.From {
		return Job{}, reject(CodeUnauthorized, "job %s belongs to %s, not %s", id, j.Requester.Short(), tx.From.Short())
	}
	if !j.Open() {
		return Job{}, reject(CodeConflict, "job %s is %s", id, j.State)
	}
	return j, nil
}

func (s *State) applyAssignLease(tx *Tx, b *AssignLease) (TxResult, *TxError) {
	j, err := s.requesterJob(tx, b.Job)
	if err != nil {
		return TxResult{}, err
	}
	p, ok := s.provider(b.Provider)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "%s is not a registered provider", b.Provider)
	}
	if j.activeLease(b.Provider) {
		return TxResult{}, reject(CodeConflict, "%s already holds a lease on job %s", b.Provider.Short(), j.ID)
	}
	if s.Excluded(j.ID, b.Provider) {
		return TxResult{}, reject(CodeUnauthorized, "%s was excluded from job %s for proven fraud", b.Provider.Short(), j.ID)
	}
	if ban, banned := s.Banned(b.Provider); banned {
		return TxResult{}, reject(CodeUnauthorized, "%s was banned at height %d for proven inference fraud", b.Provider.Short(), ban.Height)
	}
	if n := j.activeLeases(); n >= j.Spec.Workers {
		return TxResult{}, reject(CodeInvalid, "job %s already has its %d workers", j.ID, j.Spec.Workers)
	}
	m := s.metaRef()
	if m.Height > b.ValidUntil {
		return TxResult{}, reject(CodeInvalid, "the provider's acceptance expired at height %d (now %d)", b.ValidUntil, m.Height)
	}
	if next := j.NextRound(); b.FromRound < next {
		return TxResult{}, reject(CodeInvalid, "lease from round %d is in the past: job %s takes round %d next", b.FromRound, j.ID, next)
	}
	if !verifyNodeSig(b.Provider, LeaseAcceptanceBytes(m.ChainID, j.ID, b.Provider, tx.From, b.FromRound, b.ValidUntil), b.Acceptance) {
		return TxResult{}, reject(CodeBadSignature, "acceptance is not %s's signature over this lease", b.Provider.Short())
	}
	// A provider's stake must exceed what one cheating round could earn
	// (the round's whole pot), so that losing it costs more than the lie
	// gains; and meet the chain's and the job's minimums. The same stake
	// backs the provider's other leases, so it must exceed one round's
	// pot of every job it is leased on together (stakeFloor).
	need := max(m.Params.MinProviderStake, j.Spec.MinStake, j.pot()+1)
	withThis := p.clone()
	withThis.LeaseFloors = append(withThis.LeaseFloors, LeaseFloor{Job: j.ID, Stake: need, Pot: j.pot()})
	if a, _ := s.account(b.Provider); a.Stake < withThis.stakeFloor() {
		if len(p.LeaseFloors) == 0 {
			return TxResult{}, reject(CodeInsufficient, "provider %s stakes %s, the job needs %s (more than one round's pot of %s)", b.Provider.Short(), a.Stake, need, j.pot())
		}
		return TxResult{}, reject(CodeInsufficient, "provider %s stakes %s; with its %d other leases it needs %s (more than one round's pot of every job it is leased on together, %s of it this job's)",
			b.Provider.Short(), a.Stake, len(p.LeaseFloors), withThis.stakeFloor(), j.pot())
	}
	if j.Spec.MaxPricePerUnit > 0 && p.Offer.PricePerUnit > j.Spec.MaxPricePerUnit {
		return TxResult{}, reject(CodeInvalid, "provider %s asks %s per unit, the job pays at most %s", b.Provider.Short(), p.Offer.PricePerUnit, j.Spec.MaxPricePerUnit)
	}
	j.Leases = append(j.Leases, Lease{Provider: b.Provider, StartHeight: m.Height, FromRound: b.FromRound})
	j.State = JobRunning
	j.ProgressHeight = m.Height
	s.setJob(j)
	p.ActiveLeases++
	p.LeaseFloors = append(p.LeaseFloors, LeaseFloor{Job: j.ID, Stake: need, Pot: j.pot()})
	s.setProvider(p)
	return TxResult{Events: []Event{{Account: b.Provider, Kind: "leased", Job: j.ID, Counterparty: tx.From}}}, nil
}

func (s *State) applyCancelJob(tx *Tx, b *CancelJob) (TxResult, *TxError) {
	j, err := s.requesterJob(tx, b.Job)
	if err != nil {
		return TxResult{}, err
	}
	return s.endJob(j, JobCancelled)
}

// endJob ends j now: rounds whose dispute window has closed are settled
// first (work already receipted is paid before the refund: ending a job
// must not be a way to take back what providers earned), the leases end,
// and the escrow goes back to the requester except the pots of rounds
// still in their dispute window, which are held until it closes (held.go):
// ending a job must not be a way to skip the audit of a round either.
func (s *State) endJob(j Job, final JobState) (TxResult, *TxError) {
	var events []Event
	for len(j.Pending) > 0 {
		r, ok := s.receipt(j.ID, j.Pending[0])
		if !ok {
			return TxResult{}, reject(CodeInternal, "job %s lists pending round %d without a receipt", j.ID, j.Pending[0])
		}
		if s.height() < s.settleFrom(&r) {
			break // in its dispute window, and so are the later ones
		}
		ev, err := s.settle(&j, &r)
		if err != nil {
			return TxResult{}, err
		}
		events = append(events, ev...)
	}
	if j.Open() { // settling the last round may have completed the job
		ev, err := s.closeJob(&j, final)
		if err != nil {
			return TxResult{}, err
		}
		events = append(events, ev...)
	}
	s.setJob(j)
	return TxResult{Events: events}, nil
}

// closeJob ends all leases, refunds what is left in escrow beyond the
// pots its pending rounds hold, schedules those to settle, and moves the
// job to its final state. The caller saves j.
func (s *State) closeJob(j *Job, final JobState) ([]Event, *TxError) {
	h := s.height()
	for i := range j.Leases {
		if !j.Leases[i].Active() {
			continue
		}
		j.Leases[i].EndHeight = h
		if p, ok := s.provider(j.Leases[i].Provider); ok && p.ActiveLeases > 0 {
			p.ActiveLeases--
			p.LeaseFloors = slices.DeleteFunc(p.LeaseFloors, func(f LeaseFloor) bool { return f.Job == j.ID })
			s.setProvider(p)
		}
	}
	held := j.heldFor()
	j.State = final
	j.EndedHeight = h
	events, err := s.refund(j, j.Escrow-held)
	if err != nil {
		return nil, err
	}
	s.queueHeld(j)
	return events, nil
}

// refund returns amount of j's escrow to its requester. The caller saves j.
func (s *State) refund(j *Job, amount gridmind.Amount) ([]Event, *TxError) {
	if amount == 0 {
		return nil, nil
	}
	if amount > j.Escrow {
		return nil, reject(CodeInternal, "refund of %s from job %s's escrow of %s", amount, j.ID, j.Escrow)
	}
	if err := s.credit(j.Requester, amount); err != nil {
		return nil, err
	}
	j.Escrow -= amount
	j.Refunded += amount
	return []Event{{Account: j.Requester, Kind: "refunded", Amount: amount, Job: j.ID}}, nil
}
