package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// TypeRoundEvidence follows the issue 11 types (13 dispute, 14 fraud
// proof).
const TypeRoundEvidence TxType = 15

// maxRoundEvidence bounds the encoded evidence of one RoundEvidence: what
// fits in a transaction. Equivocation and impersonation evidence is a few
// hundred bytes; part-mismatch evidence carries one part of a
// pseudo-gradient, which fits only for small models (the training plane
// still excludes the offender from the job for the larger ones).
const maxRoundEvidence = MaxTxBytes - 1024

// RoundEvidence files the training protocol's own evidence against a
// worker (train.Evidence: a part that does not match its signed
// commitment, two different reduced results signed for one slot, a
// reduced part signed for a slot it was not the reducer of). The evidence
// is self-contained and signed by the offender, so it proves itself:
// anyone may send it, and no authorized slasher is needed. The offender
// must have held a lease on the job (the evidence's job is the ledger's
// job id, its round the ledger's round).
//
// Upheld, it is the dispute of that round: when the round's receipt is in
// its dispute window and names the offender, its payment for the round is
// withheld (DisputeRound); either way Params.DisputeSlashPPM of its bonded
// stake goes to the slash pool, its reputation records the slash, its
// lease on the job ends and it may not be leased there again. One offender
// is punished once per job and round, however many pieces of evidence
// there are.
type RoundEvidence struct {
	Evidence train.Evidence `json:"evidence"`
}

func init() {
	RegisterTx(TypeRoundEvidence, "round-evidence", func() Body { return &RoundEvidence{} })
}

func (*RoundEvidence) Type() TxType { return TypeRoundEvidence }

func (b *RoundEvidence) encode(e *encoder) {
	raw, err := b.Evidence.MarshalBinary()
	if err != nil { // check refuses what cannot be encoded before anyone encodes it
		raw = nil
	}
	e.bytes(raw)
}

func (b *RoundEvidence) decode(d *decoder) {
	ev, raw := nested(d, "evidence", maxRoundEvidence, train.UnmarshalEvidence)
	if d.err != nil {
		return
	}
	// One byte form per transaction: the evidence must re-encode to what
	// was sent.
	if again, err := ev.MarshalBinary(); err != nil || !bytes.Equal(again, raw) {
		d.fail("evidence is not in canonical form")
		return
	}
	// Empty lists decode as nil, so a decoded body equals the one signed.
	ev.Participants = nilIfEmpty(ev.Participants)
	ev.Roots = nilIfEmpty(ev.Roots)
	ev.Proof = nilIfEmpty(ev.Proof)
	ev.PartSig = nilIfEmpty(ev.PartSig)
	ev.Payload = nilIfEmpty(ev.Payload)
	ev.Commitment.Sig = nilIfEmpty(ev.Commitment.Sig)
	ev.A.Sig, ev.B.Sig = nilIfEmpty(ev.A.Sig), nilIfEmpty(ev.B.Sig)
	b.Evidence = *ev
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (b *RoundEvidence) check(c *checkCtx) error {
	ev := &b.Evidence
	raw, err := ev.MarshalBinary()
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if len(raw) > maxRoundEvidence {
		return fmt.Errorf("evidence of %d bytes, at most %d", len(raw), maxRoundEvidence)
	}
	switch ev.Kind {
	case train.EvidencePartMismatch, train.EvidenceEquivocation, train.EvidenceImpersonation:
	default:
		return fmt.Errorf("evidence of unknown kind %d", ev.Kind)
	}
	if err := JobID(ev.Job).validate(); err != nil {
		return fmt.Errorf("evidence for job %q: not a ledger job: %w", shorten(ev.Job), err)
	}
	if ev.Round >= MaxRounds {
		return fmt.Errorf("evidence for round %d, want below %d", ev.Round, MaxRounds)
	}
	return c.node("offender", ev.Offender)
}

func (b *RoundEvidence) apply(s *State, tx *Tx) (TxResult, *TxError) {
	ev := &b.Evidence
	id := JobID(ev.Job)
	j, ok := s.job(id)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", id)
	}
	if !slices.ContainsFunc(j.Leases, func(l Lease) bool { return l.Provider == ev.Offender }) {
		return TxResult{}, reject(CodeInvalid, "%s never held a lease on job %s", ev.Offender.Short(), id)
	}
	if err := ev.Verify(); err != nil { // a bad signature included: the message says which
		return TxResult{}, reject(CodeInvalid, "%v", err)
	}
	key := roundEvidenceKey(id, ev.Round, ev.Offender)
	if prev, used := get(s, selSlash, prefixSlash+key.String()); used {
		return TxResult{}, reject(CodeConflict, "%s was already punished for round %d of job %s at height %d", ev.Offender.Short(), ev.Round, id, prev.Height)
	}
	reason := fmt.Sprintf("round evidence: %s in round %d", ev.Kind, ev.Round)
	var events []Event
	if s.inDisputeWindow(&j, ev.Round, ev.Offender) {
		res, err := s.DisputeRound(DisputeRequest{Job: id, Round: ev.Round, Offender: ev.Offender, Filer: tx.From, EvidenceHash: key, Reason: reason})
		if err != nil {
			return TxResult{}, err
		}
		events = res.Events
	} else {
		events = s.slashForEvidence(ev.Offender, tx.From, id, key, reason)
	}
	jj, _ := s.job(id) // DisputeRound may have saved the job
	s.exclude(&jj, ev.Offender, ev.Round)
	s.setJob(jj)
	events = append(events, Event{Account: ev.Offender, Kind: "excluded", Job: id})
	return TxResult{Events: events}, nil
}

// roundEvidenceKey names the punishment of offender for round of job: it
// is taken once, whatever the evidence.
func roundEvidenceKey(job JobID, round uint64, offender gridmind.NodeID) Hash {
	b := append([]byte(job), 0)
	b = binary.BigEndian.AppendUint64(b, round)
	return Hash(verify.HashBytes("gridmind/ledger/round-evidence/v1", append(b, offender...)))
}

// inDisputeWindow reports whether round of j has an unsettled receipt
// still in its dispute window that names offender as a contributor.
func (s *State) inDisputeWindow(j *Job, round uint64, offender gridmind.NodeID) bool {
	r, ok := s.receipt(j.ID, round)
	if !ok || r.Settled || s.height() >= s.settleFrom(&r) || slices.Contains(r.Withheld, offender) {
		return false
	}
	return slices.ContainsFunc(r.Participants, func(p Participation) bool { return p.Node == offender })
}

// slashForEvidence slashes Params.DisputeSlashPPM of offender's bonded
// stake into the slash pool for upheld evidence named key, with no round
// payment to withhold, and records it.
func (s *State) slashForEvidence(offender, filer gridmind.NodeID, job JobID, key Hash, reason string) []Event {
	m := s.metaRef()
	a, _ := s.account(offender)
	amount := takeBonded(&a, mulDiv(uint64(a.Stake+a.UnbondingTotal()), m.Params.DisputeSlashPPM, PPM))
	if amount > 0 {
		s.setAccount(a)
		meta := m.clone()
		meta.SlashPool += amount
		s.setMeta(meta)
	}
	rep := s.reputation(offender)
	rep.Slashes++
	rep.SlashedTotal += amount
	_ = rep.Record.Slash(ReputationParams, uint64(s.height()))
	s.setReputation(rep)
	put(s, refSlash, prefixSlash+key.String(), SlashRecord{
		EvidenceHash: key, Offender: offender, Slasher: filer, Height: s.height(),
		FractionPPM: m.Params.DisputeSlashPPM, Amount: amount, Reason: reason,
	})
	return []Event{{Account: offender, Kind: "slashed", Amount: amount, Counterparty: filer, Job: job}}
}
