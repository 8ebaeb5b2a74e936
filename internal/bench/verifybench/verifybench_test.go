package verifybench

import (
	"math/rand/v2"
	"testing"
)

func TestMeetsTheGoals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Trials = 4000
	cfg.Segments = 4
	rep, err := Run(cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("detect new %.4f (analytic %.4f), reliable %.4f, honest quorum %.3f, overhead %.4f (segment %.4f), mean rate %.0f ppm, cheater caught at round %d, balances honest %s cheater %s",
		rep.DetectNew, rep.DetectNewAnalytic, rep.DetectReliable, rep.HonestQuorumPerDraw, rep.Overhead, rep.OverheadSegment, rep.MeanRatePPM, rep.CheaterCaughtAt, rep.HonestBalance, rep.CheaterBalance)
	if rep.DetectNew < 0.99 {
		t.Errorf("a new persistent cheater is caught within 10 rounds with probability %.4f, goal ≥ 0.99", rep.DetectNew)
	}
	if d := rep.DetectNew - rep.DetectNewAnalytic; d > 0.01 || d < -0.01 {
		t.Errorf("simulated detection %.4f is far from the analytic %.4f", rep.DetectNew, rep.DetectNewAnalytic)
	}
	if rep.Overhead > 0.05 {
		t.Errorf("audit compute is %.2f%% of useful compute, goal ≤ 5%%", 100*rep.Overhead)
	}
	if rep.OverheadSegment >= rep.Overhead {
		t.Errorf("segment audits cost %.4f, whole rounds %.4f", rep.OverheadSegment, rep.Overhead)
	}
	if rep.CheaterBalance >= rep.HonestBalance {
		t.Errorf("cheater ends with %s, honest worker with %s", rep.CheaterBalance, rep.HonestBalance)
	}
}

// TestPersistentCheaterEndsPoorer plays a persistent cheater against the
// policy over many seeds: it ends below an honest provider in every run in
// which it was caught, and on average.
func TestPersistentCheaterEndsPoorer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Trials, cfg.Fleet, cfg.Auditors = 1, 20, 30
	var honest, cheater float64
	caught := 0
	const runs = 200
	for seed := uint64(0); seed < runs; seed++ {
		rep, err := Run(cfg, rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			t.Fatal(err)
		}
		honest += float64(rep.HonestBalance)
		cheater += float64(rep.CheaterBalance)
		if rep.CheaterCaughtAt >= 0 {
			caught++
			if rep.CheaterBalance >= rep.HonestBalance {
				t.Fatalf("seed %d: caught at round %d yet ends with %s against %s", seed, rep.CheaterCaughtAt, rep.CheaterBalance, rep.HonestBalance)
			}
		}
	}
	if cheater/runs >= honest/runs {
		t.Fatalf("on average the cheater ends with %.0f µGRID, the honest worker with %.0f", cheater/runs, honest/runs)
	}
	if caught < runs*95/100 {
		t.Errorf("caught in %d of %d runs of %d rounds", caught, runs, cfg.FleetRounds)
	}
}
