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

// ReputationMultiplier is a provider's payment multiplier in ppm: package
// reputation's score of the decayed record the ledger keeps, as of the
// record's last evidence.
func ReputationMultiplier(r ledger.Reputation) uint64 {
	return r.Score(0).Multiplier
}

// ReputationScore is a node's reputation at a chain height: the ledger's
// decayed record (finished rounds, rounds missed under lease counted as
// rejected work, attested uptime, slashes) brought forward to height, so
// old events fade.
func ReputationScore(r ledger.Reputation, height int64) reputation.Score {
	return r.Score(height)
}
