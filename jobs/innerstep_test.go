package jobs

import (
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

type fixedBatches struct{ drawn int }

func (f *fixedBatches) Next() gridmind.Batch {
	f.drawn++
	return gridmind.Batch{}
}

// Each batch drawn is an inner step starting, reported with its number;
// without a hook the source is used as it is.
func TestOnInnerStepCountsBatchesDrawn(t *testing.T) {
	var p Provider
	src := &fixedBatches{}
	if got := p.counted(src, InnerStep{}); got != gridmind.BatchSource(src) {
		t.Fatalf("no hook: got %T, want the source itself", got)
	}
	var heard []InnerStep
	p.OnInnerStep(func(s InnerStep) { heard = append(heard, s) })
	at := InnerStep{Job: "j", Node: "n", Round: 7, Of: 3}
	counted := p.counted(src, at)
	for range 3 {
		counted.Next()
	}
	var steps []int
	for _, s := range heard {
		if s.Job != "j" || s.Node != "n" || s.Round != 7 || s.Of != 3 {
			t.Errorf("heard %+v, want job j, node n, round 7 of 3 steps", s)
		}
		steps = append(steps, s.Step)
	}
	if !slices.Equal(steps, []int{1, 2, 3}) || src.drawn != 3 {
		t.Errorf("steps %v with %d batches drawn, want [1 2 3] and 3", steps, src.drawn)
	}
}
