package ledger

import (
	"crypto/sha256"
	"slices"

	"github.com/gridmind/gridmind"
)

func (s *State) applyAttestUptime(tx *Tx, b *AttestUptime) (TxResult, *TxError) {
	a, _ := s.account(tx.From)
	m := s.metaRef()
	if a.Stake < m.Params.MinAttestStake {
		return TxResult{}, reject(CodeInsufficient, "observer stakes %s, attesting needs %s", a.Stake, m.Params.MinAttestStake)
	}
	obs := s.reputation(tx.From)
	if obs.LastAttestEpoch > b.Epoch {
		return TxResult{}, reject(CodeConflict, "epoch %d already attested by %s (last attested epoch %d)", b.Epoch, tx.From.Short(), obs.LastAttestEpoch-1)
	}
	obs.LastAttestEpoch = b.Epoch + 1
	s.setReputation(obs)
	for _, o := range b.Observations {
		r := s.reputation(o.Node)
		r.BeatsSeen = satAdd(r.BeatsSeen, o.Seen)
		r.BeatsExpected = satAdd(r.BeatsExpected, o.Expected)
		r.Attestations = satAdd(r.Attestations, 1)
		_ = r.Record.ObserveUptime(ReputationParams, uint64(s.height()), o.Seen, o.Expected)
		s.setReputation(r)
	}
	return TxResult{}, nil
}

// slash moves part of an offender's stake (then unbonding, earliest first)
// into the slash pool. Slashed value is neither burned nor paid out: it
// stays in the pool, which the supply invariant counts, until a later
// rule (refunds to requesters, say) spends it.
func (s *State) applySlash(tx *Tx, b *Slash) (TxResult, *TxError) {
	m := s.metaRef()
	if !slices.Contains(m.Params.Slashers, tx.From) {
		return TxResult{}, reject(CodeUnauthorized, "%s is not an authorized slasher", tx.From.Short())
	}
	if s.opts.Evidence != nil {
		if err := s.opts.Evidence(b.Offender, b.Evidence); err != nil {
			return TxResult{}, reject(CodeInvalid, "evidence against %s refused: %v", b.Offender.Short(), err)
		}
	}
	evidence := Hash(sha256.Sum256(b.Evidence))
	key := prefixSlash + evidence.String()
	if prev, used := get(s, selSlash, key); used {
		return TxResult{}, reject(CodeConflict, "this evidence was already used at height %d", prev.Height)
	}
	a, ok := s.account(b.Offender)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no account %s", b.Offender)
	}
	bonded := a.Stake + a.UnbondingTotal()
	amount := mulDiv(uint64(bonded), b.FractionPPM, PPM)
	if amount == 0 {
		return TxResult{}, reject(CodeInsufficient, "%s has %s bonded: nothing to slash", b.Offender.Short(), bonded)
	}
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
	s.setAccount(a)
	meta := m.clone()
	meta.SlashPool += gridmind.Amount(amount)
	s.setMeta(meta)
	rep := s.reputation(b.Offender)
	rep.Slashes++
	rep.SlashedTotal += gridmind.Amount(amount)
	_ = rep.Record.Slash(ReputationParams, uint64(m.Height))
	s.setReputation(rep)
	put(s, refSlash, key, SlashRecord{
		EvidenceHash: evidence, Offender: b.Offender, Slasher: tx.From, Height: m.Height,
		FractionPPM: b.FractionPPM, Amount: gridmind.Amount(amount), Reason: b.Reason,
	})
	return TxResult{Events: []Event{{Account: b.Offender, Kind: "slashed", Amount: gridmind.Amount(amount), Counterparty: tx.From}}}, nil
}
