package jobs

import (
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/verify"
)

func TestRulesStepRange(t *testing.T) {
	plain, err := RulesOf(gridmind.JobSpec{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := plain.StepRange(200); lo != 200 || hi != 200 {
		t.Errorf("a job without elastic steps allows %d to %d steps, want exactly H = 200", lo, hi)
	}
	if m := plain.MaxInnerSteps(200); m != 0 {
		t.Errorf("MaxInnerSteps without elastic steps = %d, want 0 (off)", m)
	}
	elastic, err := RulesOf(gridmind.JobSpec{Workers: 4, ElasticSteps: true})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := elastic.StepRange(200); lo != 200 || hi != diloco.ElasticMax(200) || hi <= lo {
		t.Errorf("elastic steps allow %d to %d steps, want 200 to %d", lo, hi, diloco.ElasticMax(200))
	}
	if m := elastic.MaxInnerSteps(200); m != diloco.ElasticMax(200) {
		t.Errorf("MaxInnerSteps with elastic steps = %d, want %d", m, diloco.ElasticMax(200))
	}
	// H = 1 leaves no room: the worker runs its one step.
	if m := elastic.MaxInnerSteps(1); m != 0 {
		t.Errorf("MaxInnerSteps(1) = %d, want 0", m)
	}
}

// A worker's commitment to other work than the job gave it is refused
// before any re-run: fewer steps than H (less work for the same pay, or a
// cheap re-run), more than the rules allow (an expensive re-run), or
// another worker's data shard.
func TestCommitmentToOtherWorkIsRefused(t *testing.T) {
	ids := []gridmind.NodeID{"a", "b", "c"}
	const round, h = 4, 8
	for _, elastic := range []bool{false, true} {
		a := &Announce{Job: "job-1", Spec: gridmind.JobSpec{Workers: 3, InnerSteps: h, ElasticSteps: elastic}, Active: ids}
		commit := func(steps int, shardOf int) verify.Commitment {
			return verify.Commitment{Job: "job-1", Round: round, Worker: ids[1], Steps: uint32(steps),
				Shard: verify.ShardID("job-1", round, shardOf, len(ids))}
		}
		hi := h
		if elastic {
			hi = diloco.ElasticMax(h)
		}
		for _, steps := range []int{h, hi} {
			if _, err := checkCommitmentWork(commit(steps, 1), a, round, ids[1]); err != nil {
				t.Errorf("elastic %v: %d steps refused: %v", elastic, steps, err)
			}
		}
		for _, steps := range []int{h - 1, hi + 1, 1} {
			if _, err := checkCommitmentWork(commit(steps, 1), a, round, ids[1]); err == nil || !strings.Contains(err.Error(), "inner steps") {
				t.Errorf("elastic %v: a commitment to %d steps: %v, want refused", elastic, steps, err)
			}
		}
		if _, err := checkCommitmentWork(commit(h, 2), a, round, ids[1]); err == nil || !strings.Contains(err.Error(), "shard") {
			t.Errorf("elastic %v: another worker's shard: %v, want refused", elastic, err)
		}
	}
}
