package demo

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/market"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// playRounds tells a story of rounds to a demo printer writing to out:
// placement, then per round h inner steps on two workers (each taking
// step on clock) and the round's report.
func playRounds(out *ui.Term, clock *fakeClock, rounds, h int, step time.Duration) {
	o := Options{Workers: 2, Rounds: rounds, InnerSteps: h, NoCrash: true, NoCheat: true, Out: out}
	dog := newWatchdog(clock.Now(), h, stallFloor, stallFactor)
	progress := newTrainProgress(out, rounds, dog, clock.Now)
	s := newStory(out, o, nil, map[gridmind.NodeID]string{"a": "p0", "b": "p1"}, &Report{}, progress)
	s.event(jobs.Event{Kind: jobs.EventPlaced, Placement: &market.Placement{Chosen: []gridmind.NodeID{"a", "b"}}})
	for r := range rounds {
		for i := 1; i <= h; i++ {
			for _, id := range []gridmind.NodeID{"a", "b"} {
				progress.innerStep(jobs.InnerStep{Node: id, Round: uint64(r), Step: i, Of: h})
			}
			clock.Add(step)
		}
		s.event(jobs.Event{Kind: jobs.EventRound, Round: &jobs.RoundResult{Round: uint64(r), EvalLoss: 3.5 - 0.1*float64(r), Participants: []gridmind.NodeID{"a", "b"}}})
	}
	progress.done()
}

// Into a pipe or a file the demo writes plain lines: one per round, and a
// line about a long round's inner steps every noteEvery; no carriage
// returns, no escape codes.
func TestDemoPrinterNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{now: t0}
	playRounds(ui.NewTermFor(&buf, false), clock, 3, 40, 2*time.Second) // 80 s rounds
	got := buf.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("output holds a carriage return or an escape code:\n%q", got)
	}
	for r, want := range []string{"      0      3.500", "      1      3.400", "      2      3.300"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("round %d's line %q appears %d times, want once:\n%s", r, want, strings.Count(got, want), got)
		}
	}
	// 80 s rounds: a note at 30 s and one at 60 s of each.
	if n := strings.Count(got, "⋯ round 1: inner step 16/40, 30s into the round"); n != 1 {
		t.Errorf("round 1's 30 s note appears %d times, want once:\n%s", n, got)
	}
	if n := strings.Count(got, "⋯ round"); n != 6 {
		t.Errorf("%d progress notes, want 2 per round:\n%s", n, got)
	}
}

// A fast run into a file gets no progress notes at all.
func TestDemoPrinterNotATerminalFastRounds(t *testing.T) {
	var buf bytes.Buffer
	playRounds(ui.NewTermFor(&buf, false), &fakeClock{now: t0}, 3, 40, 100*time.Millisecond)
	if got := buf.String(); strings.Contains(got, "⋯") || strings.Count(got, "0 B   0.00 Wh") != 3 {
		t.Errorf("want three round lines and no progress note, got:\n%s", got)
	}
}

// On a terminal the inner steps are a status line under the round table,
// erased before each round's line.
func TestDemoPrinterOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	playRounds(ui.NewTermFor(&buf, true), &fakeClock{now: t0}, 2, 5, time.Second)
	got := buf.String()
	for _, want := range []string{
		"  ⋯ round 0 of 0–1 · inner step 3/5 · 2 training · 1.00 s/step",
		"\r\x1b[K      0      3.500",
		"  ⋯ round 1 of 0–1 · inner step 5/5 · 2 training · eval loss 3.500 · 1.00 s/step\r\x1b[K      1      3.400",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("the status line was not erased at the end: %q", got[max(0, len(got)-80):])
	}
}
