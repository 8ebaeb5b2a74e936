package app

import (
	"testing"

	"github.com/gridmind/gridmind/ledger"
)

// record builds an on-ledger reputation the way settlement and slashing do.
func record(finished, missed, slashes uint64, height int64) ledger.Reputation {
	var r ledger.Reputation
	p := ledger.ReputationParams
	h := uint64(height)
	for range finished {
		r.Record.AddWork(p, h, 1, 0, 0)
	}
	for range missed {
		r.Record.AddWork(p, h, 0, 0, 1)
	}
	for range slashes {
		r.Record.Slash(p, h)
	}
	return r
}

func TestReputationFromTheLedgerRecord(t *testing.T) {
	fresh := ReputationScore(ledger.Reputation{}, 100)
	steady := ReputationScore(record(5, 0, 0, 100), 100)
	crashed := ReputationScore(record(1, 3, 0, 100), 100)
	slashed := ReputationScore(record(5, 0, 1, 100), 100)
	if !(steady.Total > fresh.Total && crashed.Total < fresh.Total && slashed.Total < steady.Total/2) {
		t.Fatalf("fresh %v steady %v crashed %v slashed %v", fresh, steady, crashed, slashed)
	}
	// Old failures fade: the same crash, a long time later, weighs less.
	later := ReputationScore(record(1, 3, 0, 100), 100+10*int64(ledger.ReputationParams.HalfLifeBlocks))
	if later.Total <= crashed.Total {
		t.Fatalf("failures did not fade: %v then %v", crashed, later)
	}
	if m := ReputationMultiplier(record(5, 0, 0, 100)); m <= ReputationMultiplier(ledger.Reputation{}) || m > ledger.PPM {
		t.Fatalf("multiplier %d does not reward finished work within 1.0", m)
	}
}
