package ledger

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
)

// Dispute files evidence that Offender misbehaved in Round of Job. Filed
// inside the round's dispute window (before it may settle), upheld
// evidence stops the offender's payment for the round and slashes
// Params.DisputeSlashPPM of its stake into the slash pool. Until evidence
// proves itself (verify/'s fraud proofs call DisputeRound directly), only
// an authorized slasher (Params.Slashers) may send it, and the Options
// Evidence hook, if set, must accept the evidence.
type Dispute struct {
	Job      JobID           `json:"job"`
	Round    uint64          `json:"round"`
	Offender gridmind.NodeID `json:"offender"`
	Evidence []byte          `json:"evidence"`
	Reason   string          `json:"reason,omitempty"`
}

func (*Dispute) Type() TxType { return TypeDispute }
func (b *Dispute) encode(e *encoder) {
	e.fixed(b.Job.raw())
	e.uvarint(b.Round)
	e.node(b.Offender)
	e.bytes(b.Evidence)
	e.str(b.Reason)
}
func (b *Dispute) decode(d *decoder) {
	b.Job = d.jobID("job")
	b.Round = d.uvarint("round")
	b.Offender = d.node("offender")
	b.Evidence = d.bytes("evidence", maxEvidence)
	b.Reason = d.str("reason", maxMemoBytes)
}
func (b *Dispute) check(c *checkCtx) error {
	if err := b.Job.validate(); err != nil {
		return err
	}
	if err := c.node("offender", b.Offender); err != nil {
		return err
	}
	if len(b.Evidence) == 0 || len(b.Evidence) > maxEvidence {
		return fmt.Errorf("evidence of %d bytes, want 1 to %d", len(b.Evidence), maxEvidence)
	}
	return checkString("reason", b.Reason, maxMemoBytes)
}
func (b *Dispute) apply(s *State, tx *Tx) (TxResult, *TxError) {
	m := s.metaRef()
	if !slices.Contains(m.Params.Slashers, tx.From) {
		return TxResult{}, reject(CodeUnauthorized, "%s is not an authorized slasher; evidence that proves itself goes through a fraud proof", tx.From.Short())
	}
	if s.opts.Evidence != nil {
		if err := s.opts.Evidence(b.Offender, b.Evidence); err != nil {
			return TxResult{}, reject(CodeInvalid, "evidence against %s refused: %v", b.Offender.Short(), err)
		}
	}
	return s.DisputeRound(DisputeRequest{
		Job: b.Job, Round: b.Round, Offender: b.Offender, Filer: tx.From,
		EvidenceHash: sha256.Sum256(b.Evidence), Reason: b.Reason,
	})
}

// DisputeRequest is upheld evidence against one participant of one round.
type DisputeRequest struct {
	Job      JobID
	Round    uint64
	Offender gridmind.NodeID
	// Filer sent the evidence (it is recorded as the slasher).
	Filer gridmind.NodeID
	// EvidenceHash names the evidence; each piece may be used once.
	EvidenceHash Hash
	Reason       string
}

// DisputeRound is the ledger's hook for evidence about a round: the
// caller has already decided the evidence holds (an authorized slasher's
// word, or a fraud proof the caller verified). Inside the round's dispute
// window it withholds the offender's payment for that round and for every
// other round of the job still in its window (its shares return to the
// requester) and slashes Params.DisputeSlashPPM of its
// bonded stake; a refusal (no such receipt, window closed, offender not a
// participant, evidence used before) changes nothing. Call it from a
// transaction handler on a fork, like every state change.
func (s *State) DisputeRound(d DisputeRequest) (TxResult, *TxError) {
	if _, ok := s.job(d.Job); !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", d.Job)
	}
	r, ok := s.receipt(d.Job, d.Round)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "round %d of job %s has no receipt", d.Round, d.Job)
	}
	if r.Settled { // an ended job's held rounds can still be disputed (held.go)
		return TxResult{}, reject(CodeConflict, "round %d of job %s is already settled: its dispute window is closed", d.Round, d.Job)
	}
	if end := s.settleFrom(&r); s.height() >= end {
		return TxResult{}, reject(CodeInvalid, "the dispute window of round %d of job %s closed at height %d (now %d)", d.Round, d.Job, end, s.height())
	}
	if !slices.ContainsFunc(r.Participants, func(p Participation) bool { return p.Node == d.Offender }) {
		return TxResult{}, reject(CodeInvalid, "%s did not take part in round %d of job %s", d.Offender.Short(), d.Round, d.Job)
	}
	if slices.Contains(r.Withheld, d.Offender) {
		return TxResult{}, reject(CodeConflict, "%s's payment for round %d of job %s is already withheld", d.Offender.Short(), d.Round, d.Job)
	}
	key := prefixSlash + d.EvidenceHash.String()
	if prev, used := get(s, selSlash, key); used {
		return TxResult{}, reject(CodeConflict, "this evidence was already used at height %d", prev.Height)
	}
	m := s.metaRef()
	a, _ := s.account(d.Offender)
	amount := takeBonded(&a, mulDiv(uint64(a.Stake+a.UnbondingTotal()), m.Params.DisputeSlashPPM, PPM))
	if amount > 0 {
		s.setAccount(a)
		meta := m.clone()
		meta.SlashPool += amount
		s.setMeta(meta)
	}
	rep := s.reputation(d.Offender)
	rep.Slashes++
	rep.SlashedTotal += amount
	_ = rep.Record.Slash(ReputationParams, uint64(s.height()))
	s.setReputation(rep)
	i, _ := slices.BinarySearch(r.Withheld, d.Offender)
	r.Withheld = slices.Insert(r.Withheld, i, d.Offender)
	s.setReceipt(r)
	// A proven offender loses all its unsettled pay for the job, not only
	// the round proven: a cheater cheats every round, and the audit that
	// caught it drew one of them. Every other receipted round still in its
	// dispute window withholds its share too (back to the requester).
	j, _ := s.job(d.Job)
	for _, round := range j.Pending {
		if round == d.Round {
			continue
		}
		other, ok := s.receipt(d.Job, round)
		if !ok || other.Settled || s.height() >= s.settleFrom(&other) || slices.Contains(other.Withheld, d.Offender) ||
			!slices.ContainsFunc(other.Participants, func(p Participation) bool { return p.Node == d.Offender }) {
			continue
		}
		i, _ := slices.BinarySearch(other.Withheld, d.Offender)
		other.Withheld = slices.Insert(other.Withheld, i, d.Offender)
		s.setReceipt(other)
	}
	put(s, refSlash, key, SlashRecord{
		EvidenceHash: d.EvidenceHash, Offender: d.Offender, Slasher: d.Filer, Height: s.height(),
		FractionPPM: m.Params.DisputeSlashPPM, Amount: amount, Reason: d.Reason,
	})
	return TxResult{Events: []Event{{Account: d.Offender, Kind: "slashed", Amount: amount, Counterparty: d.Filer, Job: d.Job}}}, nil
}

// takeBonded removes up to amount from a's stake, then its unbonding
// entries earliest first, and returns what it took.
func takeBonded(a *Account, amount uint64) gridmind.Amount {
	left := gridmind.Amount(amount)
	take := min(left, a.Stake)
	a.Stake -= take
	left -= take
	for i := range a.Unbonding {
		take = min(left, a.Unbonding[i].Amount)
		a.Unbonding[i].Amount -= take
		left -= take
	}
	a.Unbonding = slices.DeleteFunc(a.Unbonding, func(u Unbonding) bool { return u.Amount == 0 })
	return gridmind.Amount(amount) - left
}
