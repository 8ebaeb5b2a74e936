package jobs

import (
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
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
