package diloco

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// lastRoundSlow trains like its Trainer but takes extra in the job's last
// round, so that its worker is left out of it.
type lastRoundSlow struct {
	gridmind.Trainer
	round *atomic.Uint64
	last  uint64
	extra time.Duration
}

func (s lastRoundSlow) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	if s.round.Load() == s.last {
		return slowTrainer{Trainer: s.Trainer, compute: s.extra}.TrainSteps(ctx, n, src)
	}
	return s.Trainer.TrainSteps(ctx, n, src)
}

// slowFetch is a transport whose state fetches take a second longer: a
// slow link, or a machine too loaded to ask at once.
type slowFetch struct{ Transport }

func (s slowFetch) FetchState(ctx context.Context, p gridmind.NodeID, r uint64, h train.Hash) ([]byte, error) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Transport.FetchState(ctx, p, r, h)
}

// TestMembersLeftOutOfTheLastRoundGetTheFinalState: two of three workers
// are left out of the job's last round and their state fetches take
// twice the finisher's Linger. The finisher goes on serving the final
// state until both fetched it, and all three end on it. Before, the
// finisher left after Linger and the two waited out their StallTimeout
// "syncing" — the hang once seen in internal/wan's slow-links test.
func TestMembersLeftOutOfTheLastRoundGetTheFinalState(t *testing.T) {
	const rounds = 3
	job := newToyJob(t, 3, 3, rounds)
	job.mutate = func(c *Config) {
		c.StallTimeout = 15 * time.Second
		c.Logger = testLogger(t)
		if c.Transport.Self() == job.ids[0] {
			return
		}
		var round atomic.Uint64
		batches := c.Batches
		c.Batches = func(r uint64) gridmind.BatchSource { round.Store(r); return batches(r) }
		c.Transport = slowFetch{c.Transport}
		c.Trainer = lastRoundSlow{Trainer: c.Trainer, round: &round, last: rounds - 1, extra: 4 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := []*running{job.start(ctx, 0, false), job.start(ctx, 1, false), job.start(ctx, 2, false)}
	waitDone(t, rs, 50*time.Second)
	checkEndedTogether(t, rs, rounds)
	for i, r := range rs[1:] {
		if r.summary.Excluded == 0 {
			t.Errorf("worker %d was never left out: the test did not set up its case", i+1)
		}
	}
}
