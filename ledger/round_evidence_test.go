package ledger

import (
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// equivocation is train evidence that worker signed two different reduced
// results for part 0 of round of job: what a training peer finds when two
// workers compare the headers they applied.
func (h *harness) equivocation(job JobID, round uint64, worker string) train.Evidence {
	membership := train.Hash{byte(round), 7}
	reduced := func(payload byte) train.ReducedHeader {
		m := &train.Message{Type: train.MsgReduced, Round: round, Membership: membership,
			Contributors: []gridmind.NodeID{h.id("p1"), h.id("p2")}, Payload: []byte{payload}}
		return train.SignReduced(h.key(worker), string(job), h.id(worker), m)
	}
	return train.Evidence{Kind: train.EvidenceEquivocation, Job: string(job), Offender: h.id(worker), Round: round,
		Membership: membership, A: reduced(1), B: reduced(2)}
}

// TestRoundEvidenceProvesItself: the training protocol's own evidence
// (here a reducer's equivocation, signed by the offender) needs no
// authorized slasher. Filed by anyone inside the round's dispute window,
// it withholds the offender's pay for the round and slashes it; filed
// after, it still slashes; either way the offender leaves the job for
// good. Forged, altered or replayed evidence, or evidence against a node
// that never held a lease on the job, changes nothing.
func TestRoundEvidenceProvesItself(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2 := h.id("p1"), h.id("p2")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, Budget: 40 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	other := h.postJob(gridmind.JobSpec{Name: "other", Workers: 1, Rounds: 1, Budget: grid})
	h.must("req", receipt(job, 0, p1, p2))

	// Refusals first, in one block (the window is short): none of them
	// may change anything.
	h.begin("")
	forged := h.equivocation(job, 0, "p1")
	forged.B.Sig = forged.A.Sig
	h.refuse(CodeInvalid, "judge", &RoundEvidence{Evidence: forged})
	same := h.equivocation(job, 0, "p1")
	same.B = same.A
	h.refuse(CodeInvalid, "judge", &RoundEvidence{Evidence: same})
	h.refuse(CodeInvalid, "judge", &RoundEvidence{Evidence: h.equivocation(job, 0, "p3")}) // never leased here
	h.refuse(CodeInvalid, "judge", &RoundEvidence{Evidence: h.equivocation(other, 0, "p1")})
	h.refuse(CodeNotFound, "judge", &RoundEvidence{Evidence: h.equivocation(JobIDFor(testChain, p1, 99), 0, "p1")})
	h.end()

	// Round 0, inside its window, filed by a stranger with 1 µGRID.
	r := h.must("judge", &RoundEvidence{Evidence: h.equivocation(job, 0, "p1")})
	if a := h.state().Account(p1); a.Stake != 0 {
		t.Fatalf("p1's stake after the evidence: %s", a.Stake)
	}
	if j, _ := h.state().Job(job); j.activeLease(p1) || !h.state().Excluded(job, p1) {
		t.Fatalf("p1 still on the job: %+v", j.Leases)
	}
	if len(r.Events) != 2 || r.Events[0].Kind != "slashed" || r.Events[1].Kind != "excluded" {
		t.Fatalf("events %+v", r.Events)
	}
	// Once per offender and round, whatever the evidence.
	again := h.equivocation(job, 0, "p1")
	again.A.Part, again.B.Part = 1, 1
	again.A, again.B = resign(h, job, "p1", again), resignB(h, job, "p1", again)
	h.refuse(CodeConflict, "judge", &RoundEvidence{Evidence: again})
	h.refuse(CodeUnauthorized, "req", h.lease(job, "req", "p1", 1))

	h.settleable(job, 0)
	h.must("req", &SettleRound{Job: job, Round: 0})
	if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 80*grid || b2 != 85*grid {
		t.Fatalf("after round 0: p1 %s (withheld), p2 %s", b1, b2)
	}

	// p2 equivocated in round 0 too, found out after its window: slashed,
	// excluded, but round 0 is paid and stays paid.
	h.must("p3", &RoundEvidence{Evidence: h.equivocation(job, 0, "p2")})
	if a := h.state().Account(p2); a.Stake != 0 || a.Balance != 85*grid {
		t.Fatalf("p2 after late evidence: %+v", a)
	}
	if s := h.state().SupplyOf(); s.SlashPool != 40*grid {
		t.Fatalf("slash pool %s, want both stakes", s.SlashPool)
	}
}

// resign and resignB sign ev's headers again after a change.
func resign(h *harness, job JobID, worker string, ev train.Evidence) train.ReducedHeader {
	return signHeader(h, job, worker, ev, 1)
}
func resignB(h *harness, job JobID, worker string, ev train.Evidence) train.ReducedHeader {
	return signHeader(h, job, worker, ev, 2)
}

func signHeader(h *harness, job JobID, worker string, ev train.Evidence, payload byte) train.ReducedHeader {
	m := &train.Message{Type: train.MsgReduced, Round: ev.Round, Part: 1, Membership: ev.Membership,
		Contributors: []gridmind.NodeID{h.id("p1"), h.id("p2")}, Payload: []byte{payload}}
	return train.SignReduced(h.key(worker), string(job), h.id(worker), m)
}
