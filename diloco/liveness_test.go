package diloco

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// noFetch is a transport whose state fetches all fail.
type noFetch struct{ Transport }

func (noFetch) FetchState(context.Context, gridmind.NodeID, uint64, train.Hash) ([]byte, error) {
	return nil, errors.New("fetch refused by the test")
}

// TestWorkerLeftOutWhileEvaluatingStillStalls: a worker is left out of a
// round while its trainer is still evaluating the previous one, so the
// training it had queued is cancelled before it starts; it cannot fetch
// the state to rejoin, and its only peer finishes and leaves. Run must
// still end with the stall error, not wait for a training result that
// never comes (the stall check is off while the worker trains).
func TestWorkerLeftOutWhileEvaluatingStillStalls(t *testing.T) {
	job := newToyJob(t, 2, 2, 4)
	release := make(chan struct{})
	var once sync.Once
	job.mutate = func(c *Config) {
		if c.Transport.Self() != job.ids[0] {
			c.Eval, c.EvalBatches = nil, nil
			return
		}
		c.Transport = noFetch{c.Transport}
		c.StallTimeout = 1500 * time.Millisecond
		evalSet := job.evalSet
		c.Eval = func(ctx context.Context, tr gridmind.Trainer) (float64, error) {
			blocked := false
			once.Do(func() { blocked = true })
			if blocked { // the first evaluation, after round 0, waits for the peer to leave
				select {
				case <-release:
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			return tr.Evaluate(ctx, evalSet)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slow := job.start(ctx, 0, false)
	peer := job.start(ctx, 1, false)
	waitDone(t, []*running{peer}, 30*time.Second)
	if peer.err != nil {
		t.Fatalf("the peer did not finish: %v", peer.err)
	}
	close(release)
	select {
	case <-slow.done:
	case <-ctx.Done():
		t.Fatal("the worker left out while evaluating never ended: it waits for a training result that never comes")
	}
	if gridmind.KindOf(slow.err) != gridmind.KindUnavailable {
		t.Fatalf("Run ended with %v, want the stall error", slow.err)
	}
	if slow.summary.Excluded == 0 {
		t.Errorf("the worker was never left out of a round: the test did not set up its case (%v)", slow.err)
	}
}
