package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/jobs"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// trainRounds drives w through rounds of h inner steps on workers, each
// step taking step and each round's averaging sync, from start; it
// fails the test if w sees a stall on the way, and returns the end time.
func trainRounds(t *testing.T, w *watchdog, start time.Time, rounds, h int, step, sync time.Duration, workers ...gridmind.NodeID) time.Time {
	t.Helper()
	now := start
	for r := range rounds {
		for s := 1; s <= h; s++ {
			for _, id := range workers {
				w.step(now, jobs.InnerStep{Node: id, Round: uint64(r), Step: s, Of: h})
			}
			if err := w.stalled(now); err != nil {
				t.Fatalf("round %d step %d: %v", r, s, err)
			}
			now = now.Add(step)
		}
		// The averaging: no inner step until the round is done.
		now = now.Add(sync)
		if err := w.stalled(now); err != nil {
			t.Fatalf("round %d's averaging: %v", r, err)
		}
		w.round(now)
	}
	return now
}

// When every worker stops, the watchdog fires once the silence passes
// the deadline, and not before.
func TestWatchdogFiresWhenProgressStops(t *testing.T) {
	w := newWatchdog(t0, 40, 2*time.Minute, 4)
	end := trainRounds(t, w, t0, 3, 40, 100*time.Millisecond, time.Second, "a", "b")
	// Rounds of ~5 s: the floor rules.
	if got := w.deadline(); got != 2*time.Minute {
		t.Fatalf("deadline %s, want the 2m floor", got)
	}
	if err := w.stalled(end.Add(2 * time.Minute)); err != nil {
		t.Fatalf("stalled at the deadline, not past it: %v", err)
	}
	err := w.stalled(end.Add(2*time.Minute + time.Second))
	if err == nil || !strings.Contains(err.Error(), "training stalled") || !strings.Contains(err.Error(), "3 rounds finished") {
		t.Fatalf("got %v, want a stall after 3 rounds", err)
	}
}

// A slow machine: rounds take far longer than the floor, but inner steps
// keep coming, so it is never a stall; and the measured speed stretches
// the deadline for the averaging between rounds.
func TestWatchdogSlowButSteadyIsNoStall(t *testing.T) {
	w := newWatchdog(t0, 40, 2*time.Minute, 4)
	// 40 steps of 10 s: rounds of ~7 minutes, with 3 minutes of
	// averaging (no inner step) each, longer than the floor.
	end := trainRounds(t, w, t0, 3, 40, 10*time.Second, 3*time.Minute, "a", "b", "c")
	if got, min := w.deadline(), 4*(40*10*time.Second+3*time.Minute); got < min {
		t.Fatalf("deadline %s, want at least 4 × the measured round (%s)", got, min)
	}
	// The workers slow down further mid-round: 30 s a step.
	now := end
	for s := 1; s <= 40; s++ {
		w.step(now, jobs.InnerStep{Node: "a", Round: 3, Step: s, Of: 40})
		if err := w.stalled(now.Add(29 * time.Second)); err != nil {
			t.Fatalf("step %d at 30 s a step: %v", s, err)
		}
		now = now.Add(30 * time.Second)
	}
	// And then truly stop: past the scaled deadline it fires.
	if err := w.stalled(now.Add(w.deadline() + time.Second)); err == nil {
		t.Fatal("no stall after the workers stopped")
	}
}

// Before the first round the deadline follows the inner steps measured
// so far; the gap from a round's first step to its second (graph
// compilation on the first round) is not taken for a step's time.
func TestWatchdogMeasuresStepsBeforeTheFirstRound(t *testing.T) {
	w := newWatchdog(t0, 100, time.Minute, 4)
	now := t0
	w.step(now, jobs.InnerStep{Node: "a", Round: 0, Step: 1, Of: 100})
	now = now.Add(50 * time.Second) // compiling
	for s := 2; s <= 10; s++ {
		w.step(now, jobs.InnerStep{Node: "a", Round: 0, Step: s, Of: 100})
		now = now.Add(2 * time.Second)
	}
	if got := w.pace(); got != 2*time.Second {
		t.Fatalf("step time %s, want 2s", got)
	}
	if got, want := w.deadline(), 4*100*2*time.Second; got != want {
		t.Fatalf("deadline %s, want 4 × 100 steps × 2s = %s", got, want)
	}
}

// waitWithWatchdog ends a job that stalls with the watchdog's error, and
// lets one that finishes return its results.
func TestWaitWithWatchdog(t *testing.T) {
	w := newWatchdog(t0, 10, time.Minute, 4)
	blocked := func(ctx context.Context) ([]jobs.RoundResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	ticks := make(chan time.Time, 2)
	ticks <- t0.Add(30 * time.Second) // quiet, but within the floor
	ticks <- t0.Add(2 * time.Minute)
	_, err := waitWithWatchdog(context.Background(), blocked, w.stalled, ticks)
	if err == nil || !strings.Contains(err.Error(), "training stalled") {
		t.Fatalf("got %v, want the stall", err)
	}
	if len(ticks) != 0 {
		t.Fatal("the stall was reported before the tick past the deadline")
	}

	done := func(context.Context) ([]jobs.RoundResult, error) { return []jobs.RoundResult{{Round: 0}}, nil }
	got, err := waitWithWatchdog(context.Background(), done, w.stalled, make(chan time.Time))
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v; want the job's one round", got, err)
	}

	failed := errors.New("job failed")
	_, err = waitWithWatchdog(context.Background(), func(context.Context) ([]jobs.RoundResult, error) { return nil, failed }, w.stalled, make(chan time.Time))
	if !errors.Is(err, failed) {
		t.Fatalf("got %v, want the job's own error", err)
	}
}

// Round 0's least ready wait follows the measured speed between the
// protocol's default and a minute.
func TestFirstReadyWaitScalesWithSpeed(t *testing.T) {
	tests := []struct {
		perBatch time.Duration
		want     time.Duration
	}{
		{time.Millisecond, 2 * time.Second},               // idle: 20 steps × 3 × 4 workers × 1 ms = 0.24 s, ×4 < 2 s
		{20 * time.Millisecond, 19200 * time.Millisecond}, // loaded: 240 batches × 20 ms × 4
		{100 * time.Millisecond, time.Minute},             // pathological: capped
	}
	for _, tt := range tests {
		if got := firstReadyWait(tt.perBatch, 40, 4); got != tt.want {
			t.Errorf("firstReadyWait(%s, 40 steps, 4 workers) = %s, want %s", tt.perBatch, got, tt.want)
		}
	}
}
