package wan

import (
	"context"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// A mixed fleet (two devices 1.75× slower than the other two) trains
// together: the slower pair is left out of the first round, says how
// much longer it needed, and is waited for after that. Before the lag
// (train.Message.Lag) the slower pair was left out of almost every round
// and the job stalled at its end: one worker ran the last rounds alone
// while the others waited for a quorum of reports nobody else could give.
func TestMixedFleetTrainsTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small job in real time")
	}
	data := dilocotest.NewToyData(24, 7, 3)
	const workers, rounds = 4, 10
	rep, err := Run(context.Background(), Options{
		NewTrainer: func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(24, 1, 0.05) },
		Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
		},
		EvalBatches: data.EvalBatches(4, 256),
		Workers:     workers, InnerSteps: 20, Rounds: rounds, Overlap: true, MaxInnerSteps: diloco.ElasticMax(20),
		// The internet timing scaled down tenfold, so that a round of
		// 0.4 s against 0.7 s is what 4 s against 7 s is there.
		Timing: train.Timing{MinReadyWait: 200 * time.Millisecond, MaxReadyWait: 6 * time.Second, LeaderGrace: 500 * time.Millisecond,
			ResendEvery: 200 * time.Millisecond, MinExchangeWait: 300 * time.Millisecond, MaxExchangeWait: 12 * time.Second},
		StallTimeout: time.Minute,
		DeviceSteps:  []time.Duration{20 * time.Millisecond, 35 * time.Millisecond},
	}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	row := rep.Rows[0]
	if row.Failure != "" {
		t.Fatal(row.Failure)
	}
	if row.Excluded > workers*rounds/4 {
		t.Errorf("%d of %d worker-rounds left out: the slower pair was not waited for", row.Excluded, workers*rounds)
	}
}
