package ledger

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// TypeAuditEquivocation is numbered away from the ledger's own types
// (issue 11 reserved 14 for FraudProof and keeps the low numbers).
const TypeAuditEquivocation TxType = 40

// AuditEquivocation reports an auditor that signed two different results
// about the same work (verify.Equivocation): it re-executed a
// deterministic computation and said two things, so at least one is a lie,
// whichever way its committee voted. Without this an auditor could sign a
// match for the cheater and a mismatch for the accuser and let whichever
// proof suits it decide. Anyone with FraudParams.MinAuditorStake staked may
// send it. The auditor loses FraudParams.SlashPPM of its bonded stake,
// FraudParams.AuditorSharePPM of that to the sender and the rest burned,
// and its reputation records the slash; each (auditor, commitment, part)
// is punished once. A and B are in canonical order (A's encoding sorts
// first), so each pair has one form.
type AuditEquivocation struct {
	A verify.Result `json:"a"`
	B verify.Result `json:"b"`
}

func init() {
	RegisterTx(TypeAuditEquivocation, "audit-equivocation", func() Body { return &AuditEquivocation{} })
}

func (*AuditEquivocation) Type() TxType { return TypeAuditEquivocation }

func (b *AuditEquivocation) encode(e *encoder) { e.bytes(b.A.Encode()); e.bytes(b.B.Encode()) }

func (b *AuditEquivocation) decode(d *decoder) {
	for _, r := range []*verify.Result{&b.A, &b.B} {
		if *r, _ = nested(d, "result", verify.MaxResultBytes, verify.DecodeResult); d.err != nil {
			return
		}
	}
}

func (b *AuditEquivocation) check(c *checkCtx) error {
	if err := b.A.CheckShape(); err != nil {
		return err
	}
	if err := b.B.CheckShape(); err != nil {
		return err
	}
	if bytes.Compare(b.A.Encode(), b.B.Encode()) >= 0 {
		return errors.New("results must be two different ones, in the order of their encodings")
	}
	return nil
}

func (b *AuditEquivocation) apply(s *State, tx *Tx) (TxResult, *TxError) {
	if a, _ := s.account(tx.From); a.Stake < FraudParams.MinAuditorStake {
		return TxResult{}, reject(CodeInsufficient, "reporting an equivocation needs %s staked, %s has %s", FraudParams.MinAuditorStake, tx.From.Short(), a.Stake)
	}
	err := verify.Equivocation(&b.A, &b.B)
	switch {
	case errors.Is(err, verify.ErrBadSignature):
		return TxResult{}, reject(CodeBadSignature, "%v", err)
	case err != nil:
		return TxResult{}, reject(CodeInvalid, "%v", err)
	}
	auditor := b.A.Auditor
	if auditor == tx.From {
		return TxResult{}, reject(CodeInvalid, "an auditor cannot report its own equivocation (it would take the reporter's share of its own slash)")
	}
	evidence := Hash(verify.HashBytes("gridmind/ledger/audit-equivocation/v1",
		fmt.Appendf(append(append([]byte(auditor), b.A.Commitment[:]...), 0), "%d", b.A.Part)))
	key := prefixSlash + evidence.String()
	if prev, used := get(s, selSlash, key); used {
		return TxResult{}, reject(CodeConflict, "this equivocation was already punished at height %d", prev.Height)
	}
	h := s.height()
	acct, _ := s.account(auditor)
	slashed := takeBonded(&acct, mulDiv(uint64(acct.Stake+acct.UnbondingTotal()), FraudParams.SlashPPM, PPM))
	s.setAccount(acct)
	reward := gridmind.Amount(mulDiv(uint64(slashed), FraudParams.AuditorSharePPM, PPM))
	var events []Event
	if reward > 0 {
		if err := s.credit(tx.From, reward); err != nil {
			return TxResult{}, err
		}
		events = append(events, Event{Account: tx.From, Kind: "audit-reward", Amount: reward, Counterparty: auditor})
	}
	meta := s.metaRef().clone()
	meta.Burned += slashed - reward
	s.setMeta(meta)
	rep := s.reputation(auditor)
	rep.Slashes++
	rep.SlashedTotal += slashed
	_ = rep.Record.Slash(ReputationParams, uint64(h))
	s.setReputation(rep)
	put(s, refSlash, key, SlashRecord{EvidenceHash: evidence, Offender: auditor, Slasher: tx.From, Height: h,
		FractionPPM: FraudParams.SlashPPM, Amount: slashed, Reason: "audit equivocation: two different results about the same work"})
	events = append(events, Event{Account: auditor, Kind: "slashed", Amount: slashed, Counterparty: tx.From})
	return TxResult{Events: events}, nil
}
