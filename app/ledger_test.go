package app

import (
	"testing"

	"github.com/gridmind/gridmind/ledger"
)

func TestReputationFromLedgerCounters(t *testing.T) {
	fresh := ReputationScore(ledger.Reputation{}, 0)
	steady := ReputationScore(ledger.Reputation{RoundsFinished: 5}, 0)
	crashed := ReputationScore(ledger.Reputation{RoundsFinished: 1, RoundsFailed: 3}, 0)
	slashed := ReputationScore(ledger.Reputation{RoundsFinished: 5, Slashes: 1}, 0)
	if !(steady.Total > fresh.Total && crashed.Total < fresh.Total && slashed.Total < steady.Total/2) {
		t.Fatalf("fresh %v steady %v crashed %v slashed %v", fresh, steady, crashed, slashed)
	}
	if m := ReputationMultiplier(ledger.Reputation{RoundsFinished: 5}); m <= ReputationMultiplier(ledger.Reputation{}) || m > ledger.PPM {
		t.Fatalf("multiplier %d does not reward finished work within 1.0", m)
	}
}
