package inferbench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRunMemorySmall runs a short benchmark: no request may fail in either
// run, and the failure run must really have killed replicas mid-stream.
// The p99 ratio is reported, not asserted: on a shared 2-core machine a
// short run's tail is noise (the full run is "gridmind bench infer").
func TestRunMemorySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 300-request benchmark runs (~5 s)")
	}
	var last Progress
	rep, err := RunMemory(context.Background(), MemoryOptions{Replicas: 5, Requests: 300, Warmup: 30, Rate: 150, MaxTokens: 8},
		func(p Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []RunStats{rep.Baseline, rep.WithFailures} {
		t.Logf("%-9s failed %d  p50 %v  p90 %v  p99 %v  max %v  hedges %d  fail-overs %d  resumes %d  killed %d (%d streams)",
			r.Name, r.Failed, r.P50, r.P90, r.P99, r.Max, r.Hedges, r.Failovers, r.Resumes, len(r.Killed), r.StreamsCut)
		if r.Failed != 0 {
			t.Errorf("%s: %d failed requests", r.Name, r.Failed)
		}
		if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
			t.Errorf("%s: percentiles out of order", r.Name)
		}
	}
	t.Logf("p99 ratio %.2f", rep.P99Ratio)
	if len(rep.WithFailures.Killed) != 1 || len(rep.Baseline.Killed) != 0 {
		t.Errorf("killed %d / %d replicas, want 1 of 5 in the failure run only", len(rep.WithFailures.Killed), len(rep.Baseline.Killed))
	}
	if rep.WithFailures.Failovers == 0 {
		t.Error("no fail-overs in the failure run: the kill did not hit traffic")
	}
	if last.Run != "failures" || last.Done != 300 || last.Total != 300 {
		t.Errorf("last progress %+v", last)
	}
	if _, err := RunMemory(context.Background(), MemoryOptions{Replicas: 1}, nil); err == nil {
		t.Error("a one-replica benchmark was accepted")
	}
}

// TestBenchInferFull is the full benchmark with default options, run on
// demand: GRIDMIND_BENCH_INFER=1 go test -run TestBenchInferFull -v ./internal/bench/inferbench
func TestBenchInferFull(t *testing.T) {
	if os.Getenv("GRIDMIND_BENCH_INFER") == "" {
		t.Skip("set GRIDMIND_BENCH_INFER=1 to run the full inference benchmark (~25 s)")
	}
	pairs := 1
	if p, err := strconv.Atoi(os.Getenv("GRIDMIND_BENCH_PAIRS")); err == nil {
		pairs = p
	}
	rep, err := RunMemory(context.Background(), MemoryOptions{Pairs: pairs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Options
	t.Logf("%d replicas, RTTs %v, %d requests at %.0f/s (+%d warm-up), %d tokens at %v, kill %.0f%% after %.0f%%, %d pairs",
		o.Replicas, o.Latencies, o.Requests, o.Rate, o.Warmup, o.MaxTokens, o.TokenDelay, o.KillFraction*100, o.KillAt*100, o.Pairs)
	for _, r := range []RunStats{rep.Baseline, rep.WithFailures} {
		t.Logf("%-9s failed %d  p50 %v  p90 %v  p99 %v  max %v  hedges %d  fail-overs %d  resumes %d  killed %v (%d streams)  wall %v",
			r.Name, r.Failed, r.P50.Round(time.Microsecond*100), r.P90.Round(time.Microsecond*100), r.P99.Round(time.Microsecond*100),
			r.Max.Round(time.Microsecond*100), r.Hedges, r.Failovers, r.Resumes, r.KilledRTT, r.StreamsCut, r.Wall.Round(time.Millisecond))
	}
	for _, r := range []RunStats{rep.Baseline, rep.WithFailures} {
		t.Logf("%s served by RTT %v; 1 ms timer late by p99 %v, max %v; slowest:", r.Name, r.ServedByRTT,
			r.SchedP99.Round(10*time.Microsecond), r.SchedMax.Round(10*time.Microsecond))
		for _, s := range r.Slowest {
			t.Logf("   #%d %v rtt %v attempts %d hedged %v resumed %v after-kill %v", s.Index, s.Latency.Round(100*time.Microsecond),
				s.ServerRTT, s.Attempts, s.Hedged, s.Resumed, s.AfterKill)
		}
	}
	t.Logf("p99 ratio %.2f (per pair %.2f) (goal: %s): pass=%v", rep.P99Ratio, rep.PairRatios, Goal, rep.Pass)
}
