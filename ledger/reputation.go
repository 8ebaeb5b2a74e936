package ledger

import (
	"crypto/sha256"
	"slices"

	"github.com/gridmind/gridmind"
)

// Epoch is the uptime epoch of the state's height: height / EpochBlocks.
func (s *State) Epoch() uint64 {
	m := s.metaRef()
	return uint64(max(m.Height, 0)) / uint64(max(m.Params.EpochBlocks, 1))
}

// attestWeight is how much one observer's word counts: its stake in units
// of MinAttestStake (1 GRID when that is 0), at most MaxAttestWeight. Many
// keys with the stake split between them weigh what one key would.
func attestWeight(p *Params, stake gridmind.Amount) uint64 {
	unit := p.MinAttestStake
	if unit == 0 {
		unit = gridmind.UnitsPerGRID
	}
	return min(uint64(stake/unit), p.MaxAttestWeight)
}

func (s *State) applyAttestUptime(tx *Tx, b *AttestUptime) (TxResult, *TxError) {
	a, _ := s.account(tx.From)
	m := s.metaRef()
	if a.Stake < m.Params.MinAttestStake {
		return TxResult{}, reject(CodeInsufficient, "observer stakes %s, attesting needs %s", a.Stake, m.Params.MinAttestStake)
	}
	weight := attestWeight(&m.Params, a.Stake)
	if weight == 0 {
		return TxResult{}, reject(CodeInsufficient, "observer stakes %s: its attestation would weigh nothing", a.Stake)
	}
	// Attestations are bound to the ledger's epoch, not one the observer
	// picks: one per observer per epoch, so one per observer per subject.
	epoch := s.Epoch()
	if b.Epoch != epoch {
		return TxResult{}, reject(CodeInvalid, "attestation for epoch %d, the ledger is in epoch %d (height %d / %d blocks)", b.Epoch, epoch, m.Height, m.Params.EpochBlocks)
	}
	obs := s.reputation(tx.From)
	if obs.LastAttestEpoch > b.Epoch {
		return TxResult{}, reject(CodeConflict, "%s already attested epoch %d", tx.From.Short(), obs.LastAttestEpoch-1)
	}
	obs.LastAttestEpoch = b.Epoch + 1
	s.setReputation(obs)
	for _, o := range b.Observations {
		r := s.reputation(o.Node)
		if r.UptimeEpoch != epoch+1 {
			r.UptimeEpoch, r.UptimeWeight = epoch+1, 0
		}
		// Each node's record takes at most UptimeWeightCap of weight per
		// epoch, however many observers (or sybils) attest it.
		w := min(weight, m.Params.UptimeWeightCap-min(r.UptimeWeight, m.Params.UptimeWeightCap))
		r.BeatsSeen = satAdd(r.BeatsSeen, o.Seen)
		r.BeatsExpected = satAdd(r.BeatsExpected, o.Expected)
		r.Attestations = satAdd(r.Attestations, 1)
		if w > 0 {
			r.UptimeWeight += w
			_ = r.Record.ObserveUptime(ReputationParams, uint64(s.height()), o.Seen*w, o.Expected*w)
		}
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
	takeBonded(&a, amount)
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
