package wan

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
)

// toyJob is a job of the toy trainer (dilocotest) on K workers, H inner
// steps and rounds, every worker on its own shard.
func toyJob(workers, h, rounds int) Options {
	data := dilocotest.NewToyData(24, 7, 3)
	return Options{
		NewTrainer: func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(24, 1, 0.05) },
		Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
		},
		EvalBatches: data.EvalBatches(4, 256),
		Workers:     workers, InnerSteps: h, Rounds: rounds,
	}
}

// runUnlimited runs o's job on unlimited links and returns that row,
// failing the test if the job failed.
func runUnlimited(t *testing.T, o Options) Row {
	t.Helper()
	rep, err := Run(context.Background(), o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	row := rep.Rows[0]
	if row.Failure != "" {
		t.Fatal(row.Failure)
	}
	return row
}

// TestSlowLinksCostTimeNotLoss runs a small job unlimited and behind a slow,
// lossy link: the shaped run spends a smaller share of its time computing,
// sends the same bytes, and reaches the same loss (the protocol waits for
// slow workers instead of leaving them out more than on unlimited links).
func TestSlowLinksCostTimeNotLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two small jobs in real time")
	}
	slow, err := ParseLink("up=2M,down=10M,rtt=200ms,jitter=20ms,loss=0.01")
	if err != nil {
		t.Fatal(err)
	}
	o := toyJob(3, 20, 3)
	o.Configs = []Config{{Name: "slow", Links: []Link{slow}}}
	rep, err := Run(context.Background(), o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows", len(rep.Rows))
	}
	fast, shaped := rep.Rows[0], rep.Rows[1]
	// The toy trains in microseconds, so both computing shares are about
	// zero and one slow round under load (a leader's 2 s ready wait) can
	// put the unlimited run's below the shaped one's: the round time is
	// where the links' cost shows.
	if !(shaped.RoundP50 > fast.RoundP50+100*time.Millisecond) {
		t.Errorf("slow links: round p50 %s; unlimited %s: the shaping did not cost time", shaped.RoundP50, fast.RoundP50)
	}
	// The slow links must not make the protocol leave workers out; a
	// loaded machine can starve any run of CPU past a deadline, so the
	// unlimited run on the same machine is the yardstick.
	if shaped.Excluded > fast.Excluded+1 {
		t.Errorf("workers left out: %d behind slow links, %d unlimited", shaped.Excluded, fast.Excluded)
	}
	if d := shaped.VsUnlimited; d > 0.02 || d < -0.02 {
		t.Errorf("loss moved %+.2f%% with slow links", 100*d)
	}
	if md := rep.Markdown(); !strings.Contains(md, "| slow | up 2 Mbit/s") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestParseLink(t *testing.T) {
	l, err := ParseLink("up=20M,down=1G,rtt=100ms,jitter=10ms,loss=0.01")
	if err != nil || l.UpBits != 20e6 || l.DownBits != 1e9 || l.Latency != 25*time.Millisecond || l.Jitter != 10*time.Millisecond || l.Loss != 0.01 {
		t.Fatalf("%+v %v", l, err)
	}
	if _, err := ParseLink("home"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"up=-1M", "rtt=forever", "loss=0.9", "speed=1", "moon"} {
		if _, err := ParseLink(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// In a mixed fleet (devices paced at 2 and 6 ms a step) the fast workers
// wait for the slow one every round; with elastic steps they train on
// instead, and the round still completes for everyone.
func TestElasticStepsFillTheFastDevicesWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small job in real time")
	}
	o := toyJob(3, 20, 12)
	o.Overlap, o.MaxInnerSteps = true, diloco.ElasticMax(20)
	o.DeviceSteps = []time.Duration{2 * time.Millisecond, 2 * time.Millisecond, 6 * time.Millisecond}
	row := runUnlimited(t, o)
	if row.StepsPerRound <= 20 || row.StepsPerRound > float64(diloco.ElasticMax(20)) {
		t.Errorf("%.1f inner steps per worker-round; want above H = 20 (the fast devices trained on) and at most %d", row.StepsPerRound, diloco.ElasticMax(20))
	}
	t.Logf("%.1f steps per worker-round, %.1f%% computing, %d rounds left out", row.StepsPerRound, 100*row.ComputeShare, row.Excluded)
}
