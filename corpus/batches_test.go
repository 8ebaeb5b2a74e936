package corpus

import (
	"reflect"
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestBatchesAreSeededWindowsFromTheShard(t *testing.T) {
	c, _ := FromText("sample", sampleText(200_000))
	s := c.Shard("job", 0, 1, 3)
	const context, batchSize = 16, 8
	a, err := NewBatches(s, context, batchSize, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewBatches(s, context, batchSize, 7)
	other, _ := NewBatches(s, context, batchSize, 8)
	owned := func(p int) bool {
		for _, sp := range s.spans {
			if p >= sp.start && p < sp.end {
				return true
			}
		}
		return false
	}
	for step := 0; step < 20; step++ {
		x, y, z := a.Next(), b.Next(), other.Next()
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("step %d: same seed gave different batches", step)
		}
		if reflect.DeepEqual(x, z) {
			t.Fatalf("step %d: different seeds gave the same batch", step)
		}
		if len(x.Inputs) != batchSize || len(x.Targets) != batchSize {
			t.Fatalf("batch has %d inputs, %d targets", len(x.Inputs), len(x.Targets))
		}
		for i := range x.Inputs {
			in, tg := x.Inputs[i], x.Targets[i]
			if len(in) != context || len(tg) != context {
				t.Fatalf("window lengths %d, %d", len(in), len(tg))
			}
			for j := 0; j+1 < context; j++ {
				if tg[j] != in[j+1] {
					t.Fatalf("targets are not inputs shifted by one: %v / %v", in, tg)
				}
			}
			if !slices.ContainsFunc(findWindows(c.train, in), owned) {
				t.Fatalf("window %q does not start inside the shard", Decode(in))
			}
		}
	}
}

// findWindows returns every start position of ids in tokens (the sample
// text repeats short fragments).
func findWindows(tokens []uint8, ids []int32) []int {
	var found []int
	for p := 0; p+len(ids) <= len(tokens); p++ {
		match := true
		for j, id := range ids {
			if int32(tokens[p+j]) != id {
				match = false
				break
			}
		}
		if match {
			found = append(found, p)
		}
	}
	return found
}

func TestNewBatchesRejectsBadGeometry(t *testing.T) {
	c, _ := FromText("sample", sampleText(MinTokens))
	s := c.Shard("job", 0, 0, 1)
	tests := []struct {
		name               string
		context, batchSize int
	}{
		{"zero context", 0, 4},
		{"huge context", MaxContext + 1, 4},
		{"zero batch", 8, 0},
		{"window longer than the corpus", MaxContext, 4},
	}
	for _, tt := range tests {
		if _, err := NewBatches(s, tt.context, tt.batchSize, 1); gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: err %v, want invalid", tt.name, err)
		}
	}
}

func TestEvalBatchesAreFixed(t *testing.T) {
	c, _ := FromText("sample", sampleText(100_000))
	a, err := c.EvalBatches(32, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.EvalBatches(32, 4, 3)
	if !reflect.DeepEqual(a, b) || len(a) != 3 || len(a[0].Inputs) != 4 {
		t.Fatal("eval batches differ between calls or have the wrong shape")
	}
	if len(findWindows(c.eval, a[2].Inputs[3])) == 0 {
		t.Fatal("eval window is not from the evaluation split")
	}
	for _, bad := range [][3]int{{0, 4, 1}, {32, 0, 1}, {32, 4, 0}, {32, 1 << 16, 100}} {
		if _, err := c.EvalBatches(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("EvalBatches%v accepted", bad)
		}
	}
	tiny, _ := FromText("tiny", sampleText(MinTokens))
	if _, err := tiny.EvalBatches(512, 1, 1); err == nil {
		t.Error("EvalBatches accepted a window longer than the evaluation split")
	}
}
