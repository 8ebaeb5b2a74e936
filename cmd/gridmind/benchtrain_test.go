package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/corpus"
)

// TestHeldOutSplit: the reported windows are exactly corpus.EvalBatches'
// (so earlier runs compare), and the validation windows are others.
func TestHeldOutSplit(t *testing.T) {
	c, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	const context, n = 32, 8
	eval, valid, err := heldOutSplit(c, context, n)
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.EvalBatches(context, 64, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(eval) != n || len(valid) != n {
		t.Fatalf("%d and %d batches, want %d", len(eval), len(valid), n)
	}
	seen := map[string]bool{}
	for i := range want {
		if len(eval[i].Inputs) != 64 || len(valid[i].Inputs) != 64 {
			t.Fatalf("batch %d: %d and %d windows, want 64", i, len(eval[i].Inputs), len(valid[i].Inputs))
		}
		for j := range want[i].Inputs {
			if !slices.Equal(eval[i].Inputs[j], want[i].Inputs[j]) || !slices.Equal(eval[i].Targets[j], want[i].Targets[j]) {
				t.Fatalf("eval batch %d window %d differs from corpus.EvalBatches", i, j)
			}
			seen[string(runesOf(eval[i].Inputs[j]))] = true
		}
	}
	// The windows are at other positions; Go source repeats itself
	// (licence headers, boilerplate), so a few may read the same.
	same := 0
	for i := range valid {
		for _, in := range valid[i].Inputs {
			if seen[string(runesOf(in))] {
				same++
			}
		}
	}
	if same > n*64/8 {
		t.Errorf("%d of %d validation windows read like a reported one", same, n*64)
	}
	if _, _, err := heldOutSplit(c, context, 1<<13); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("a split asking for more windows than fit: %v", err)
	}
}

func runesOf(ids []int32) []rune {
	out := make([]rune, len(ids))
	for i, id := range ids {
		out[i] = rune(id)
	}
	return out
}

// TestBenchTrainSeedsAndRates runs the search on a tiny model: both
// seeds and both rates of every configuration, and the summary.
func TestBenchTrainSeedsAndRates(t *testing.T) {
	out, progress, err := runGridmind(t, "bench", "train", "--workers=2", "--inner-steps=4", "--total-steps=16", "--context=8", "--batch=4",
		"--embed=4", "--hidden=8", "--eval-batches=1", "--throughput-params=0", "--seeds=1,2", "--lr-grid=0.001,0.01",
		"--codec=int8,topk:256:1", "--log-level=error")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, progress)
	}
	for _, want := range []string{"seeds 1, 2; AdamW learning rates 0.001, 0.01 (each configuration's chosen by its mean loss over the seeds on a validation set",
		"Learning-rate search", "| diloco | 2 | 4 | 2 | topk:256:1 | 2 | **0.0", "| sync-dp | 2 | 1 | 8 | float32 | 1 | "} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(progress, "diloco int8 K=2 H=4 seed 2 lr 0.01: done") {
		t.Errorf("progress lacks the last int8 run:\n%s", progress)
	}
}

func TestBenchTrainBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--lr-grid=0"}, "--lr-grid 0: want learning rates in (0, 10)"},
		{[]string{"--lr-grid=nan"}, "--lr-grid NaN"},
		{[]string{"--seeds=0"}, "--seeds 0: want 1.."},
		{[]string{"--seed=2", "--seeds=3"}, "--seed and --seeds: give one"},
		{[]string{"--codec=int8,float32"}, `--codec "float32"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, stderr, err := runGridmind(t, append([]string{"bench", "train"}, tt.args...)...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", out)
			}
			if !strings.Contains(err.Error()+stderr, tt.want) {
				t.Errorf("error %v, stderr %q; want %q", err, stderr, tt.want)
			}
		})
	}
}
