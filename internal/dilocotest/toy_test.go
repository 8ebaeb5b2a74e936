package dilocotest

import (
	"context"
	"math"
	"testing"

	"github.com/gridmind/gridmind/train"
)

const toyVocab = 24

func TestToyTrainerLearns(t *testing.T) {
	data := NewToyData(toyVocab, 7, 3)
	tr, _ := NewToyTrainer(toyVocab, 1, 0.05)
	eval := data.EvalBatches(4, 256)
	before, _ := tr.Evaluate(context.Background(), eval)
	if _, err := tr.TrainSteps(context.Background(), 300, data.Batches(1, 32, 4)); err != nil {
		t.Fatal(err)
	}
	after, _ := tr.Evaluate(context.Background(), eval)
	if floor := data.EntropyRate(); !(after < floor+0.3) || math.IsNaN(after) {
		t.Errorf("loss %.3f → %.3f, floor %.3f", before, after, floor)
	}
	// Deterministic: the same seed and batches give the same bits.
	a, _ := NewToyTrainer(toyVocab, 1, 0.05)
	b, _ := NewToyTrainer(toyVocab, 1, 0.05)
	_, _ = a.TrainSteps(context.Background(), 10, data.Batches(2, 8, 2))
	_, _ = b.TrainSteps(context.Background(), 10, data.Batches(2, 8, 2))
	pa, _ := a.Params()
	pb, _ := b.Params()
	if train.HashTheta(pa) != train.HashTheta(pb) {
		t.Error("toy trainer is not deterministic")
	}
}
