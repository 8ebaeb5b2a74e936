package ledger

import (
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestExclusionEndsTheLeaseFloor: a provider excluded from one job (proven
// fraud) is no longer held to that job's stake floor while it works on
// another; the other job's floor still holds.
func TestExclusionEndsTheLeaseFloor(t *testing.T) {
	h := jobHarness(t, Options{})
	big := h.postJob(gridmind.JobSpec{Name: "big", Workers: 1, Rounds: 1, Budget: 12 * grid})    // pot 12 GRID
	small := h.postJob(gridmind.JobSpec{Name: "small", Workers: 1, Rounds: 1, Budget: 5 * grid}) // pot 5 GRID, floor 10 (the chain's minimum)
	h.must("req", h.lease(big, "req", "p1", 0))
	h.must("req", h.lease(small, "req", "p1", 0))
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 3 * grid}) // 17 left: not more than both pots
	h.begin("")
	j, _ := h.fork.Job(big)
	h.fork.exclude(&j, h.id("p1"), 0)
	h.fork.setJob(j)
	h.end()
	if p, _ := h.state().Provider(h.id("p1")); p.ActiveLeases != 1 || len(p.LeaseFloors) != 1 || p.LeaseFloors[0].Job != small {
		t.Fatalf("after the exclusion: %+v", p)
	}
	h.must("p1", &Unstake{Amount: 10 * grid})               // 10 left: small's floor
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 1 * grid}) // below it
}

// TestStakeCoversEveryConcurrentLease: one stake backs all of a
// provider's leases, so it must exceed one round's pot of every job it is
// leased on together: otherwise a cheater leased on several jobs could
// cheat in a round of each and lose its stake only once.
func TestStakeCoversEveryConcurrentLease(t *testing.T) {
	h := jobHarness(t, Options{})
	a := h.postJob(gridmind.JobSpec{Name: "a", Workers: 1, Rounds: 1, Budget: 12 * grid}) // pot 12
	b := h.postJob(gridmind.JobSpec{Name: "b", Workers: 1, Rounds: 2, Budget: 20 * grid}) // pot 10
	h.must("req", h.lease(a, "req", "p1", 0))                                             // 20 > 12
	r := h.refuse(CodeInsufficient, "req", h.lease(b, "req", "p1", 0))                    // 20 < 12 + 10
	if !strings.Contains(r.Log, "other leases") {
		t.Fatalf("refusal does not say why: %s", r.Log)
	}
	h.must("p1", &Stake{Amount: 2 * grid})
	h.refuse(CodeInsufficient, "req", h.lease(b, "req", "p1", 0)) // 22: not more than 22
	h.must("p1", &Stake{Amount: 1})
	h.must("req", h.lease(b, "req", "p1", 0))
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 1})
	h.must("req", &CancelJob{Job: a})
	h.must("p1", &Unstake{Amount: 12 * grid}) // 10 GRID + 1 µGRID left: more than b's pot
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 1})
}
