package jobs

import (
	"testing"

	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/train"
)

func TestRecentStatesKeepsTheLastRoundsWithinTheirBound(t *testing.T) {
	const params = 1 << 20 // 4 MiB of θ: 8 fit in recentKeepBytes
	r := newRecentStates(params)
	if r.keep != recentKeepBytes/(4*params) {
		t.Fatalf("keeps %d states of %d parameters", r.keep, params)
	}
	var hashes []ledger.Hash
	for round := range 12 {
		theta := make([]float32, params)
		theta[0] = float32(round)
		s := &train.GlobalState{Round: uint64(round), Theta: theta}
		r.add(s)
		r.add(s) // a state heard twice is kept once
		hashes = append(hashes, ledger.Hash(s.ThetaHash()))
	}
	for i, h := range hashes {
		theta, ok := r.get(h)
		if kept := i >= len(hashes)-r.keep; ok != kept || (ok && theta[0] != float32(i)) {
			t.Errorf("round %d: kept %v, want %v", i, ok, kept)
		}
	}
	if len(r.order) != r.keep || len(r.theta) != r.keep {
		t.Errorf("holds %d/%d states, want %d", len(r.order), len(r.theta), r.keep)
	}
	if small := newRecentStates(10); small.keep != recentKeepStates {
		t.Errorf("a small model keeps %d states, want %d", small.keep, recentKeepStates)
	}
}
