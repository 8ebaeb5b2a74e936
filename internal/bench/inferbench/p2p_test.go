package inferbench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets RunP2P start this test binary as its replica processes.
func TestMain(m *testing.M) {
	if IsReplica() {
		if err := ServeReplica(context.Background()); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunP2PSilentReplica runs the libp2p benchmark small: three replica
// processes serving the GoMLX model, one of them frozen (SIGSTOP) while
// requests are in flight. No request may fail or return other text than
// the model's; the silent replica must really have been routed around.
// Latency is reported, not asserted (the full run is "gridmind bench infer").
func TestRunP2PSilentReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three replica processes and a libp2p client (~10 s)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := P2POptions{Exe: exe, Replicas: 3, Requests: 40, Warmup: 10, Rate: 10, MaxTokens: 8, Prompts: 4,
		Scenarios: []string{Silent}, FailAt: 0.2}
	rep, err := RunP2P(ctx, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	r := rep.Runs[0]
	t.Logf("model %.12s: failed %d  p50 %v  p95 %v  p99 %v  max %v  hedges %d  fail-overs %d  resumes %d  frozen %v with %d in flight",
		rep.Model, r.Failed, r.P50, r.P95, r.P99, r.Max, r.Hedges, r.Failovers, r.Resumes, r.Killed, r.StreamsCut)
	if r.Failed != 0 {
		t.Errorf("%d of %d requests failed with a replica silent", r.Failed, r.Requests)
	}
	if len(r.Killed) != 1 {
		t.Errorf("%d replicas frozen, want 1", len(r.Killed))
	}
	if r.Hedges+r.Failovers == 0 {
		t.Error("no hedge or fail-over: the frozen replica was never asked, so the test proved nothing")
	}
	if _, err := RunP2P(ctx, P2POptions{Exe: exe, Scenarios: []string{"flood"}}, nil); err == nil {
		t.Error("an unknown scenario was accepted")
	}
}
