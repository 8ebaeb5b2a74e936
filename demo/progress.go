package demo

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/jobs"
)

// noteEvery is how often, on a non-terminal, a round that is still
// training gets a line saying how far it is: a fast run prints none, a
// slow one shows it is alive.
const noteEvery = 30 * time.Second

// trainProgress shows how far the round in training is, from the inner
// steps the demo's providers report (jobs.Provider.OnInnerStep: they run
// in this process). On a terminal it is the status line under the round
// table; elsewhere a line every noteEvery of a long round. It feeds the
// stall watchdog. Safe for concurrent use.
type trainProgress struct {
	out    io.Writer
	term   *ui.Term // nil: not a terminal
	rounds int
	now    func() time.Time
	dog    *watchdog

	mu         sync.Mutex
	round      uint64                  // the newest round training
	steps      map[gridmind.NodeID]int // each worker's step in it
	roundStart time.Time               // when its first step started
	noted      time.Time               // the last progress line (non-terminal)
	loss       float64                 // the last evaluation loss (NaN: none yet)
	finished   map[uint64]bool         // rounds whose reports are in
}

func newTrainProgress(out io.Writer, rounds int, dog *watchdog, now func() time.Time) *trainProgress {
	p := &trainProgress{out: out, rounds: rounds, now: now, dog: dog, steps: map[gridmind.NodeID]int{}, loss: math.NaN(), finished: map[uint64]bool{}}
	if t, ok := out.(*ui.Term); ok && t.IsTerminal() {
		p.term = t
	}
	return p
}

// innerStep takes a worker's inner step (from its training goroutine).
func (p *trainProgress) innerStep(s jobs.InnerStep) {
	now := p.now()
	p.dog.step(now, s)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.finished[s.Round] || s.Round < p.round && len(p.steps) > 0:
		return // a straggler's step: the display follows the newest round
	case s.Round > p.round || len(p.steps) == 0:
		p.round, p.steps, p.roundStart = s.Round, map[gridmind.NodeID]int{}, now
	}
	p.steps[s.Node] = s.Step
	step, of := p.stepLocked(), s.Of
	if p.term != nil {
		p.term.Status(p.statusLocked(step, of))
		return
	}
	if now.Sub(p.roundStart) >= noteEvery && now.Sub(p.noted) >= noteEvery {
		p.noted = now
		fmt.Fprintf(p.out, "  ⋯ round %d: inner step %d/%d, %s into the round%s\n", p.round, step, of, now.Sub(p.roundStart).Round(time.Second), p.paceLocked())
	}
}

// roundDone takes a round whose reports are in (the story prints it).
func (p *trainProgress) roundDone(r *jobs.RoundResult) {
	now := p.now()
	p.dog.round(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished[r.Round] = true
	if r.EvalLoss > 0 {
		p.loss = r.EvalLoss
	}
	if r.Round >= p.round {
		p.round, p.steps = r.Round+1, map[gridmind.NodeID]int{}
	}
	if p.term != nil && int(p.round) < p.rounds {
		p.term.Status(fmt.Sprintf("  ⋯ round %d of 0–%d: averaging done, the next inner steps are starting%s", p.round, p.rounds-1, p.lossLocked()))
	}
}

// event takes any other job event: it is progress for the watchdog.
func (p *trainProgress) event() { p.dog.event(p.now()) }

// done removes the status line.
func (p *trainProgress) done() {
	if p.term != nil {
		p.term.Status("")
	}
}

// stepLocked is the furthest step any worker started in the round.
func (p *trainProgress) stepLocked() int {
	most := 0
	for _, s := range p.steps {
		most = max(most, s)
	}
	return most
}

func (p *trainProgress) statusLocked(step, of int) string {
	return fmt.Sprintf("  ⋯ round %d of 0–%d · inner step %d/%d · %d training%s%s", p.round, p.rounds-1, step, of, len(p.steps), p.lossLocked(), p.paceLocked())
}

func (p *trainProgress) lossLocked() string {
	if math.IsNaN(p.loss) {
		return ""
	}
	return fmt.Sprintf(" · eval loss %.3f", p.loss)
}

func (p *trainProgress) paceLocked() string {
	st := p.dog.pace()
	if st <= 0 {
		return ""
	}
	return fmt.Sprintf(" · %.2f s/step", st.Seconds())
}
