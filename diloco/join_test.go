package diloco

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// slowTrainer stands in for a model whose inner steps take a while (the
// toy trainer takes microseconds), so that a joiner can arrive mid-round.
type slowTrainer struct {
	gridmind.Trainer
	compute time.Duration // for a round's steps (toyInnerSteps)
}

// TrainSteps takes compute × n / toyInnerSteps: a training split in two
// (overlap's shift) takes as long in all as one that is not.
func (s slowTrainer) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	t := time.NewTimer(s.compute * time.Duration(n) / toyInnerSteps)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return gridmind.TrainStats{}, ctx.Err()
	}
	return s.Trainer.TrainSteps(ctx, n, src)
}

// testLogger is quiet unless GRIDMIND_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("GRIDMIND_TEST_LOG") == "" {
		return quietLogger()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// TestJoinMidRoundAfterDeath replays the whole-network incident on the
// in-memory transport with the default (internet) timing: three workers
// train rounds of about half a second, one dies around round 1, and a
// standby worker without state starts while the others train round 2. No
// round may wait for the joiner or long for the dead worker (before the
// fix round 2 took MaxReadyWait, 60 s), and the joiner takes part in
// round 3 at the latest.
func TestJoinMidRoundAfterDeath(t *testing.T) {
	const (
		rounds  = 6
		compute = 500 * time.Millisecond
	)
	timing := train.DefaultTiming()
	// Round 1 may spend 2×MinExchangeWait replacing the dead worker as a
	// reducer; later rounds at most the ready wait's floor beyond training.
	firstBound := compute + 2*timing.MinExchangeWait + 3*time.Second
	laterBound := compute + timing.MinReadyWait + 1500*time.Millisecond
	tests := []struct {
		name string
		// inRound kills the victim at the first part of round 1 it sends
		// or would receive (announced, it delivers and reduces nothing:
		// killing it only as it sends would race with its reduction, which
		// might reach one survivor and not the other); otherwise it dies as
		// it sends "ready" for round 2, having finished round 1 (its sends
		// of round 1 went out half a second before).
		inRound bool
	}{
		{"dies sending its first part of round 1", true},
		{"dies after finishing round 1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := newToyJob(t, 3, 4, rounds)
			parts := slices.Sorted(slices.Values(job.ids[:3]))
			victim := slices.Index(job.ids, parts[0]) // leads rounds 0 and 3, not 2
			var rs []*running
			var mu sync.Mutex
			var once sync.Once
			kill := func() {
				once.Do(func() {
					job.net.Kill(job.ids[victim])
					mu.Lock()
					defer mu.Unlock()
					rs[victim].cancel()
				})
			}
			job.mutate = func(cfg *Config) {
				cfg.Trainer = slowTrainer{Trainer: cfg.Trainer, compute: compute}
				cfg.Protocol.Timing = timing
				cfg.Logger = testLogger(t)
			}
			// A second opener reads the victim's control messages without
			// touching the workers' replay windows.
			control := newOpener("toy", job.ids)
			job.net.SetDrop(func(kind string, from, to gridmind.NodeID, data []byte) bool {
				var m train.Message
				var err error
				switch {
				case from != job.ids[victim] && to != job.ids[victim]:
					return false
				case tt.inRound && kind == "bulk":
					m, err = train.UnmarshalMessage(data)
					if err != nil || m.Type != train.MsgPart || m.Round != 1 {
						return false
					}
				case !tt.inRound && kind == "control" && from == job.ids[victim]:
					m, err = control.open(data, time.Now())
					if err != nil || m.Type != train.MsgReady || m.Round != 2 {
						return false
					}
				default:
					return false
				}
				kill()
				return true
			})
			mu.Lock()
			for i := range 3 {
				rs = append(rs, job.start(context.Background(), i, false))
			}
			mu.Unlock()
			survivors := []gridmind.NodeID{}
			for i := range 3 {
				if i != victim {
					survivors = append(survivors, job.ids[i])
				}
			}
			waitFor(t, 30*time.Second, func() bool {
				return job.progress.reported(survivors[0], 1) && job.progress.reported(survivors[1], 1)
			})
			// The joiner starts while the survivors train round 2.
			joinedAt := time.Now()
			joiner := job.start(context.Background(), 3, true)
			alive := []*running{joiner}
			for i, r := range rs {
				if i != victim {
					alive = append(alive, r)
				}
			}
			waitDone(t, alive, 30*time.Second)
			checkEndedTogether(t, alive, rounds)
			job.progress.checkAgreement(t)
			job.progress.mu.Lock()
			defer job.progress.mu.Unlock()
			joinerID := job.ids[3]
			first := job.progress.firstReported(joinerID, rounds)
			if first > 3 {
				t.Errorf("the joiner first took part in round %d; it started during round 2", first)
			}
			for r := uint64(1); r < rounds; r++ {
				bound := laterBound
				if r == 1 {
					bound = firstBound
				}
				for _, id := range append(survivors, joinerID) {
					p, ok := job.progress.byNode[id][r]
					if !ok {
						continue
					}
					t.Logf("round %d at %s: %s, %d participants", r, id.Short(), p.RoundTime.Round(time.Millisecond), p.Participants)
					if p.RoundTime > bound {
						t.Errorf("round %d took %s at %s, want at most %s", r, p.RoundTime, id.Short(), bound)
					}
				}
			}
			if p := job.progress.byNode[survivors[0]][2]; p.Participants != 2 {
				t.Errorf("round 2 had %d participants, want the 2 survivors", p.Participants)
			}
			if p := job.progress.byNode[survivors[0]][rounds-1]; p.Participants != 3 {
				t.Errorf("the last round had %d participants, want the 2 survivors and the joiner", p.Participants)
			}
			t.Logf("the joiner ran %s and first took part in round %d", time.Since(joinedAt).Round(time.Millisecond), first)
		})
	}
}
