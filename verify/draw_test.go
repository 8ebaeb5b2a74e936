package verify

import (
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestAuditedFollowsTheRate(t *testing.T) {
	_, worker := testKey(1)
	for _, rate := range []uint64{0, 10_000, 500_000, PPM} {
		n := 0
		const draws = 20_000
		for i := 0; i < draws; i++ {
			seed := Seed(h("beacon"), "job", uint64(i))
			if Audited(seed, worker, rate) {
				n++
			}
		}
		want := float64(rate) / PPM * draws
		if diff := float64(n) - want; diff > 0.05*draws || diff < -0.05*draws {
			t.Errorf("rate %d ppm: audited %d of %d, want about %.0f", rate, n, draws, want)
		}
		if rate == 0 && n != 0 || rate == PPM && n != draws {
			t.Errorf("rate %d ppm: audited %d of %d", rate, n, draws)
		}
	}
}

func TestDrawDependsOnTheBeacon(t *testing.T) {
	_, worker := testKey(1)
	// A worker cannot learn its fate before the beacon exists: over many
	// beacons the same (job, round, worker) is sometimes audited, sometimes not.
	seen := map[bool]int{}
	for i := 0; i < 64; i++ {
		seen[Audited(Seed(h(string(rune(i))), "job", 3), worker, 500_000)]++
	}
	if seen[true] == 0 || seen[false] == 0 {
		t.Fatalf("audited %v over 64 beacons: the draw ignores the beacon", seen)
	}
}

func TestCommitteeIsDeterministicAndExcludesTheWorker(t *testing.T) {
	var candidates []gridmind.NodeID
	for i := 0; i < 10; i++ {
		_, id := testKey(i)
		candidates = append(candidates, id)
	}
	worker := candidates[4]
	seed := Seed(h("b"), "job", 1)
	a := Committee(seed, worker, candidates, 3)
	shuffled := slices.Clone(candidates)
	slices.Reverse(shuffled)
	b := Committee(seed, worker, append(shuffled, candidates[0]), 3)
	if !slices.Equal(a, b) || len(a) != 3 {
		t.Fatalf("committee depends on candidate order or duplicates: %v vs %v", a, b)
	}
	if slices.Contains(a, worker) {
		t.Fatal("the worker audits itself")
	}
	if c := Committee(Seed(h("other"), "job", 1), worker, candidates, 3); slices.Equal(a, c) {
		t.Log("two beacons gave the same committee (possible, unlikely)")
	}
	if got := Committee(seed, worker, candidates[:2], 3); len(got) != 2 {
		t.Fatalf("committee from 2 candidates has %d members", len(got))
	}
}
