package wan

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
)

// device paces a trainer like a dedicated accelerator of a given speed:
// every inner step takes at least step of wall time. On this machine the
// K workers share a few cores, so unpaced a worker that finishes first
// hands its cores to the others and "fast" and "slow" are scheduling
// noise; paced at a step longer than the shared cores need, each worker
// computes at its own device's steady speed, as on separate machines, and
// a mixed fleet (different steps) is one of different devices. The steps
// are real (the model trains as unpaced); only the idle part of the step
// is a sleep.
type device struct {
	gridmind.Trainer
	step  time.Duration
	count *paceCount
}

// paceCount counts the steps paced and, of them, those the machine
// computed slower than their pace (the pace is then not what was
// measured).
type paceCount struct{ late, steps atomic.Int64 }

// share is the late steps' share.
func (c *paceCount) share() float64 {
	if n := c.steps.Load(); n > 0 {
		return float64(c.late.Load()) / float64(n)
	}
	return 0
}

func (d device) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	start := time.Now()
	s, err := d.Trainer.TrainSteps(ctx, n, src)
	if err != nil {
		return s, err
	}
	d.count.steps.Add(int64(n))
	wait := time.Until(start.Add(time.Duration(n) * d.step))
	if wait < 0 {
		d.count.late.Add(int64(n))
		return s, nil
	}
	return s, sleep(ctx, wait)
}

// sleep waits d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paced wraps t as a device of the given step time (0: unpaced).
func paced(t gridmind.Trainer, step time.Duration, count *paceCount) gridmind.Trainer {
	if step <= 0 {
		return t
	}
	return device{Trainer: t, step: step, count: count}
}
