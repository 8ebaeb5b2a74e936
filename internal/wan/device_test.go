package wan

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
)

// slowSteps takes per of wall time a step, longer than a pace it is given.
type slowSteps struct {
	gridmind.Trainer
	per time.Duration
}

func (s slowSteps) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	time.Sleep(time.Duration(n) * s.per)
	return s.Trainer.TrainSteps(ctx, n, src)
}

func TestDevicePacesStepsAndCountsThoseItCannotKeep(t *testing.T) {
	var count paceCount
	const step = 20 * time.Millisecond
	d := paced(dilocotest.NewNullTrainer(8, 1), step, &count)
	start := time.Now()
	s, err := d.TrainSteps(context.Background(), 5, dilocotest.NoBatches{})
	if err != nil || s.Steps != 5 {
		t.Fatalf("paced steps: %+v, %v", s, err)
	}
	// A lower bound only: the pace is a floor, the machine may be slower.
	if took := time.Since(start); took < 5*step {
		t.Errorf("5 steps paced at %v took %v, want at least %v", step, took, 5*step)
	}
	if count.steps.Load() != 5 || count.late.Load() != 0 {
		t.Errorf("counted %d steps, %d late; want 5, 0", count.steps.Load(), count.late.Load())
	}

	// A trainer slower than its pace is counted late, not paced further.
	slow := paced(slowSteps{Trainer: dilocotest.NewNullTrainer(8, 1), per: 2 * time.Millisecond}, time.Microsecond, &count)
	if _, err := slow.TrainSteps(context.Background(), 3, dilocotest.NoBatches{}); err != nil {
		t.Fatal(err)
	}
	if count.late.Load() != 3 || count.share() != 3.0/8 {
		t.Errorf("late %d of %d (share %v), want 3 of 8", count.late.Load(), count.steps.Load(), count.share())
	}

	// The pace's sleep ends with the context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := paced(dilocotest.NewNullTrainer(8, 1), time.Hour, &count).TrainSteps(ctx, 1, dilocotest.NoBatches{}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled paced step: %v, want context.Canceled", err)
	}
	if paced(d, 0, &count) != d {
		t.Error("a zero pace should leave the trainer as it is")
	}
}
