package jobs

import (
	"sync"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// InnerStep is one inner optimizer step a provider's worker is starting:
// the Step-th (from 1) of Of in Round of Job.
type InnerStep struct {
	Job      ledger.JobID
	Node     gridmind.NodeID
	Round    uint64
	Step, Of int
}

// innerStepHook holds the function OnInnerStep set.
type innerStepHook struct {
	mu sync.Mutex
	fn func(InnerStep)
}

// OnInnerStep sets a function called as each inner step of this
// provider's training starts, from the training goroutine (it must be
// quick). It shows progress inside a round to an observer in the same
// process, such as the demo; nothing of it goes over the network.
func (p *Provider) OnInnerStep(f func(InnerStep)) {
	p.stepHook.mu.Lock()
	defer p.stepHook.mu.Unlock()
	p.stepHook.fn = f
}

// counted wraps a round's batch source so that each batch drawn (one per
// inner step: gomlx.Model.TrainSteps draws one just before each step) is
// reported to the OnInnerStep hook, if one is set.
func (p *Provider) counted(src gridmind.BatchSource, at InnerStep) gridmind.BatchSource {
	p.stepHook.mu.Lock()
	fn := p.stepHook.fn
	p.stepHook.mu.Unlock()
	if fn == nil {
		return src
	}
	return &countedBatches{src: src, at: at, fn: fn}
}

type countedBatches struct {
	src gridmind.BatchSource
	at  InnerStep
	fn  func(InnerStep)
}

func (c *countedBatches) Next() gridmind.Batch {
	c.at.Step++
	c.fn(c.at)
	return c.src.Next()
}
