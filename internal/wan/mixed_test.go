package wan

import (
	"testing"
	"time"

	"github.com/gridmind/gridmind/diloco"
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
	const workers, rounds = 4, 10
	o := toyJob(workers, 20, rounds)
	o.Overlap, o.MaxInnerSteps = true, diloco.ElasticMax(20)
	// The internet timing scaled down tenfold, so that a round of 0.4 s
	// against 0.7 s is what 4 s against 7 s is there.
	o.Timing = train.Timing{MinReadyWait: 200 * time.Millisecond, MaxReadyWait: 6 * time.Second, LeaderGrace: 500 * time.Millisecond,
		ResendEvery: 200 * time.Millisecond, MinExchangeWait: 300 * time.Millisecond, MaxExchangeWait: 12 * time.Second}
	o.StallTimeout = time.Minute
	o.DeviceSteps = []time.Duration{20 * time.Millisecond, 35 * time.Millisecond}
	if row := runUnlimited(t, o); row.Excluded > workers*rounds/4 {
		t.Errorf("%d of %d worker-rounds left out: the slower pair was not waited for", row.Excluded, workers*rounds)
	}
}
