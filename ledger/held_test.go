package ledger

import (
	"testing"

	"github.com/gridmind/gridmind"
)

// TestEndingAJobKeepsTheDisputeWindow: a job ended (cancelled by its
// requester, or closed by anyone after its deadline) while rounds are in
// their dispute window ends at once (leases, receipts, the unreceipted
// escrow refunded) but holds those rounds' pots: evidence filed after the
// end and inside the window still stops the offender's payment and slashes
// it, a held round settles when its window closes (by anyone's
// SettleRound, or by itself at the last window's end), and then the rest
// goes back to the requester. Ending a job is no way around an audit.
func TestEndingAJobKeepsTheDisputeWindow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final JobState
		end   func(h *harness, job JobID)
	}{
		{"cancelled by the requester", JobCancelled, func(h *harness, job JobID) {
			h.begin("")
			h.refuse(CodeUnauthorized, "p1", &CancelJob{Job: job})
			h.must("req", &CancelJob{Job: job})
			h.end()
		}},
		{"closed after its deadline", JobExpired, func(h *harness, job JobID) {
			h.beginAt(2_000)
			h.must("p2", &CloseJob{Job: job}) // a participant would like its pay at once
			h.end()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := jobHarness(t, Options{})
			p1, p2 := h.id("p1"), h.id("p2")
			h.beginAt(1_000)
			h.end()
			job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, Budget: 40 * grid, DeadlineUnix: 2_000})
			h.must("req", h.lease(job, "req", "p1", 0))
			h.must("req", h.lease(job, "req", "p2", 0))
			h.must("req", receipt(job, 0, p1, p2))
			h.settleable(job, 0)
			h.must("req", &SettleRound{Job: job, Round: 0})  // 5 GRID each
			h.refuse(CodeInvalid, "p1", &CloseJob{Job: job}) // neither idle nor late
			h.must("req", receipt(job, 1, p1, p2))
			h.must("req", receipt(job, 2, p1, p2))
			refundedBefore := h.balance("req")

			tc.end(h, job)
			j, _ := h.state().Job(job)
			if j.State != tc.final || j.activeLeases() != 0 || j.Held() != 20*grid || j.Escrow != 20*grid || j.Refunded != 10*grid || j.Paid != 10*grid {
				t.Fatalf("ended job: %+v (held %s)", j, j.Held())
			}
			if got := h.balance("req") - refundedBefore; got != 10*grid {
				t.Fatalf("refunded at the end: %s, want round 3's pot", got)
			}
			// Ended: no receipts, no leases, no early settlement.
			h.begin("")
			h.refuse(CodeConflict, "req", receipt(job, 3, p1, p2))
			h.refuse(CodeConflict, "req", h.lease(job, "req", "p3", 3))
			h.refuse(CodeInvalid, "p2", &SettleRound{Job: job, Round: 1})
			h.refuse(CodeConflict, "p2", &CloseJob{Job: job})
			h.refuse(CodeConflict, "req", &CancelJob{Job: job})

			// The audit of round 1 finds p1 cheated: the dispute lands
			// after the end but inside the window.
			h.must("judge", &Dispute{Job: job, Round: 1, Offender: p1, Evidence: []byte("p1's round 1 does not re-execute")})
			if a := h.state().Account(p1); a.Stake != 0 {
				t.Fatalf("p1's stake after the dispute: %s", a.Stake)
			}
			h.end()

			// Round 1's window closes first: anyone may settle it.
			h.settleable(job, 1)
			h.begin("")
			h.refuse(CodeInvalid, "judge", &SettleRound{Job: job, Round: 2})
			h.must("judge", &SettleRound{Job: job, Round: 1})
			h.end()
			if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 85*grid || b2 != 90*grid {
				t.Fatalf("after round 1: p1 %s (withheld), p2 %s", b1, b2)
			}
			// Round 2 settles by itself when its window closes; the held
			// money left over goes back. The proof against p1 withheld its
			// pay for round 2 as well (it was still in its window).
			h.settleable(job, 2)
			h.emptyBlocks(1)
			j, _ = h.state().Job(job)
			if j.State != tc.final || j.Escrow != 0 || len(j.Pending) != 0 || j.Paid != 20*grid || j.Refunded != 20*grid || j.RoundsSettled != 3 {
				t.Fatalf("after the held rounds: %+v", j)
			}
			if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 85*grid || b2 != 95*grid {
				t.Fatalf("after round 2: p1 %s (withheld), p2 %s", b1, b2)
			}
			if got := h.balance("req") - refundedBefore; got != 20*grid {
				t.Fatalf("refunded in all: %s", got)
			}
			h.refuse(CodeConflict, "judge", &SettleRound{Job: job, Round: 2})
			h.refuse(CodeConflict, "judge", &Dispute{Job: job, Round: 2, Offender: p2, Evidence: []byte("too late")})
			if rep := h.state().Reputation(p2); rep.RoundsFailed != 0 {
				t.Fatalf("p2 recorded as failing %d rounds of a job that ended under it", rep.RoundsFailed)
			}
		})
	}
}

// TestHeldRoundsOfManyJobsSettleAtOneHeight: two jobs ended in the same
// block with rounds receipted in the same block share one queue entry,
// and both settle.
func TestHeldRoundsOfManyJobsSettleAtOneHeight(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2 := h.id("p1"), h.id("p2")
	a := h.postJob(gridmind.JobSpec{Name: "a", Workers: 1, Rounds: 2, Budget: 20 * grid})
	b := h.postJob(gridmind.JobSpec{Name: "b", Workers: 1, Rounds: 2, Budget: 20 * grid})
	h.must("req", h.lease(a, "req", "p1", 0))
	h.must("req", h.lease(b, "req", "p2", 0))
	h.begin("")
	for _, body := range []Body{receipt(a, 0, p1), receipt(b, 0, p2), &CancelJob{Job: a}, &CancelJob{Job: b}} {
		if r := h.applyRaw(h.sign("req", body)); r.Code != CodeOK {
			t.Fatalf("%s: %s", body.Type(), r.Log)
		}
		h.nonces[h.id("req")]++
	}
	h.end()
	h.settleable(a, 0)
	h.emptyBlocks(1)
	for _, id := range []JobID{a, b} {
		if j, _ := h.state().Job(id); j.Escrow != 0 || j.Paid != 10*grid || j.Refunded != 10*grid {
			t.Fatalf("job %s: %+v", j.Spec.Name, j)
		}
	}
	if got := h.state().allKeys(prefixHeld); len(got) != 0 {
		t.Fatalf("held queue left behind: %v", got)
	}
}
