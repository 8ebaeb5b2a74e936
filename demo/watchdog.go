package demo

import (
	"fmt"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/jobs"
)

// The stall watchdog's defaults: it never gives up before stallFloor of
// silence (enough for the protocol's own waits on a lost worker and for
// the first round's compilation on a loaded machine), and past that it
// allows stallFactor times the round time measured on this machine.
const (
	stallFloor  = 2 * time.Minute
	stallFactor = 4
)

// watchdog decides when a job has stalled: when neither an inner step
// nor a round nor any other job event has come for longer than a deadline
// scaled to the speed measured on this machine, max(floor, factor × the
// expected round time). While inner steps advance the job is slow, not
// stalled. Time comes in as arguments; it is safe for concurrent use.
type watchdog struct {
	floor      time.Duration
	factor     float64
	innerSteps int // H, inner steps per round

	mu           sync.Mutex
	last         time.Time // the last progress of any kind
	lastRound    time.Time // the last round finished (or the start)
	rounds       int       // rounds finished
	longestRound time.Duration
	stepTime     time.Duration // moving average of one worker's inner step
	steps        map[gridmind.NodeID]stepMark
}

// stepMark is the last inner step a worker was seen starting.
type stepMark struct {
	round uint64
	step  int
	at    time.Time
}

func newWatchdog(start time.Time, innerSteps int, floor time.Duration, factor float64) *watchdog {
	return &watchdog{floor: floor, factor: factor, innerSteps: innerSteps, last: start, lastRound: start, steps: map[gridmind.NodeID]stepMark{}}
}

// step records a worker starting an inner step.
func (w *watchdog) step(now time.Time, s jobs.InnerStep) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = now
	prev, ok := w.steps[s.Node]
	w.steps[s.Node] = stepMark{round: s.Round, step: s.Step, at: now}
	// Only the gap between two consecutive steps of one round is a step's
	// time: before a round's second step lies its first, which on the
	// first round includes compiling the training graph.
	if !ok || prev.round != s.Round || prev.step != s.Step-1 || s.Step < 3 {
		return
	}
	took := now.Sub(prev.at)
	if w.stepTime == 0 {
		w.stepTime = took
	} else {
		w.stepTime = (4*w.stepTime + took) / 5
	}
}

// round records a round finished.
func (w *watchdog) round(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.longestRound = max(w.longestRound, now.Sub(w.lastRound))
	w.last, w.lastRound = now, now
	w.rounds++
}

// event records any other sign of life from the job (placement,
// settlement, a worker joining).
func (w *watchdog) event(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = now
}

// pace is the measured time of one worker's inner step (0: not yet).
func (w *watchdog) pace() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stepTime
}

// expectedRound is the round time measured so far: the longest round
// finished, or H inner steps at the measured step time if that is longer
// (the machine may have slowed since); 0 before anything was measured.
func (w *watchdog) expectedRound() time.Duration {
	return max(w.longestRound, time.Duration(w.innerSteps)*w.stepTime)
}

// deadline is how long the job may stay silent.
func (w *watchdog) deadline() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deadlineLocked()
}

func (w *watchdog) deadlineLocked() time.Duration {
	return max(w.floor, time.Duration(w.factor*float64(w.expectedRound())))
}

// stalled returns the error that ends a stalled job, or nil.
func (w *watchdog) stalled(now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	quiet, limit := now.Sub(w.last), w.deadlineLocked()
	if quiet <= limit {
		return nil
	}
	measured := "nothing measured yet"
	if r := w.expectedRound(); r > 0 {
		measured = fmt.Sprintf("rounds take about %s here", r.Round(100*time.Millisecond))
	}
	return fmt.Errorf("demo: training stalled: no inner step, round or job event for %s (%d rounds finished, the last %s ago; %s, so the limit was %s); rerun with --log-level debug to see why",
		quiet.Round(time.Second), w.rounds, now.Sub(w.lastRound).Round(time.Second), measured, limit.Round(time.Second))
}
