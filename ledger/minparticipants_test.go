package ledger

import (
	"testing"

	"github.com/gridmind/gridmind"
)

// A round below the job's minimum number of contributors pays only that
// fraction of its pot; the rest goes back to the requester.
func TestRoundBelowMinimumPaysItsShare(t *testing.T) {
	h := jobHarness(t, Options{Multiplier: func(Reputation) uint64 { return PPM }})
	p1, p2 := h.id("p1"), h.id("p2")
	// 3 workers: the minimum defaults to 2. 30 GRID over 2 rounds: pots of 15.
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 3, Rounds: 2, Budget: 30 * grid})
	for _, p := range []string{"p1", "p2", "p3"} {
		h.must("req", h.lease(job, "req", p, 0))
	}
	start := h.balance("p1")
	h.must("req", receipt(job, 0, p1)) // only p1 contributed
	h.settleable(job, 0)
	h.must("req", &SettleRound{Job: job, Round: 0})
	if got, want := h.balance("p1")-start, 15*grid/2; got != want {
		t.Errorf("alone in a round that needs 2, p1 got %s, want half the pot %s", fmtAmount(got), fmtAmount(want))
	}
	h.must("req", receipt(job, 1, p1, p2))
	h.settleable(job, 1)
	h.must("req", &SettleRound{Job: job, Round: 1})
	if got, want := h.balance("p1")-start, 15*grid/2+15*grid/2; got != want {
		t.Errorf("p1 earned %s over both rounds, want %s", fmtAmount(got), fmtAmount(want))
	}
	j, _ := h.state().Job(job)
	if j.State != JobCompleted || j.Refunded != 30*grid-3*(15*grid/2) {
		t.Errorf("job %s, refunded %s; want completed with the short round's other half refunded", j.State, fmtAmount(j.Refunded))
	}
}
