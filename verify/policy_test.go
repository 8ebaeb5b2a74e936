package verify

import (
	"testing"

	"github.com/gridmind/gridmind"
)

func TestPolicyRate(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    Record
		want uint64
	}{
		{"new node", Record{}, 450_000},
		{"in probation", Record{Rounds: 19}, 450_000},
		{"just out of probation", Record{Rounds: 20}, 450_000},
		{"40 clean rounds", Record{Rounds: 40}, 225_000},
		{"long reliable", Record{Rounds: 1000}, 10_000},
		{"very long reliable: never zero", Record{Rounds: 1 << 40}, 10_000},
		{"recently wrong", Record{Rounds: 1000, Faults: 1, RoundsSinceFault: 50}, 450_000},
		{"wrong long ago", Record{Rounds: 5000, Faults: 1, RoundsSinceFault: 1000}, 10_000},
	}
	for _, tc := range cases {
		if got := p.Rate(tc.r); got != tc.want {
			t.Errorf("%s: rate %d ppm, want %d", tc.name, got, tc.want)
		}
	}
	bad := Policy{NewRatePPM: 100, MinRatePPM: 0, ProbationRounds: 1}
	if bad.Validate() == nil {
		t.Error("a zero minimum rate validates")
	}
}

func TestNewNodeIsCaughtWithin10Rounds(t *testing.T) {
	// 1 − (1 − p)¹⁰ ≥ 99% for the rate a new node gets.
	p := DefaultPolicy().Rate(Record{})
	miss := 1.0
	for i := 0; i < 10; i++ {
		miss *= 1 - float64(p)/PPM
	}
	if 1-miss < 0.99 {
		t.Fatalf("new-node rate %d ppm detects a persistent cheater within 10 rounds with probability %.4f", p, 1-miss)
	}
}

func TestEconomics(t *testing.T) {
	r := 2 * gridmind.UnitsPerGRID // pay per round
	for _, tc := range []struct{ rate, slash uint64 }{{10_000, PPM}, {500_000, PPM}, {10_000, 250_000}, {1, 1}} {
		s := RequiredStake(r, tc.rate, tc.slash)
		if g := ExpectedGain(r, s, tc.rate, tc.slash); g.Sign() >= 0 {
			t.Errorf("rate %d slash %d: required stake %s leaves gain %s ≥ 0", tc.rate, tc.slash, s, g.FloatString(6))
		}
		if g := ExpectedGain(r, s-1, tc.rate, tc.slash); g.Sign() < 0 {
			t.Errorf("rate %d slash %d: stake %s is not the smallest (gain at s−1 is %s)", tc.rate, tc.slash, s, g.FloatString(6))
		}
	}
	// S > r/(p·f): at 1% audits and a full slash, 2 GRID per round needs more than 200 GRID.
	if got := RequiredStake(r, 10_000, PPM); got != 200*gridmind.UnitsPerGRID+1 {
		t.Errorf("required stake %s, want 200.000001 GRID", got)
	}
	// The rate a stake requires: 200 GRID staked, 2 GRID per round → more than 1%.
	if got := RequiredRatePPM(r, 200*gridmind.UnitsPerGRID, PPM); got != 10_001 {
		t.Errorf("required rate %d ppm, want 10001", got)
	}
	if got := RequiredRatePPM(r, 0, PPM); got != PPM {
		t.Errorf("no stake: rate %d, want every round", got)
	}
	// RateFor raises a reliable node's rate when its stake is thin for the pay.
	pol := DefaultPolicy()
	reliable := Record{Rounds: 10_000}
	if got := pol.RateFor(reliable, r, 1000*gridmind.UnitsPerGRID, PPM); got != pol.MinRatePPM {
		t.Errorf("well-staked reliable node audited at %d ppm, want the floor %d", got, pol.MinRatePPM)
	}
	if got := pol.RateFor(reliable, r, 20*gridmind.UnitsPerGRID, PPM); got != 100_001 {
		t.Errorf("thinly staked reliable node audited at %d ppm, want 100001", got)
	}
}
