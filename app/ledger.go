package app

import (
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/reputation"
)

// LedgerOptions are the deterministic hooks every validator of a gridmind
// chain runs with: settlement pays each participant its share scaled by
// its reputation multiplier (0.5× for a node with no record, up to 1.0×).
func LedgerOptions() ledger.Options {
	return ledger.Options{Multiplier: ReputationMultiplier}
}

// ReputationMultiplier maps a provider's on-ledger counters to a payment
// multiplier in ppm through package reputation.
func ReputationMultiplier(r ledger.Reputation) uint64 {
	return ReputationScore(r, 0).Multiplier
}

// ReputationScore interprets the ledger's counters with package
// reputation. The counters are all-time (the ledger does not yet keep
// the decayed record), so they are evaluated as evidence at one height.
// A round a provider missed while holding a lease counts as rejected work
// (reputation.Params.RejectWeight failures): it walked away from work it
// had committed to, which costs the requester more than a plain failure.
func ReputationScore(r ledger.Reputation, height int64) reputation.Score {
	p := reputation.DefaultParams()
	var rec reputation.Record
	_ = rec.ObserveUptime(p, 0, r.BeatsSeen, r.BeatsExpected)
	_ = rec.AddWork(p, 0, r.RoundsFinished, 0, r.RoundsFailed)
	for i := uint64(0); i < r.Slashes && i < 16; i++ {
		_ = rec.Slash(p, 0)
	}
	return rec.Score(p, 0)
}
