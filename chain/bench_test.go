package chain

import (
	"context"
	"testing"
	"time"
)

// TestRunBenchSmall runs the benchmark end to end on a small load, so the
// code behind `gridmind bench ledger` is exercised by every test run.
func TestRunBenchSmall(t *testing.T) {
	var phases []string
	r, err := RunBench(timeout(t, 2*time.Minute), BenchOptions{Transfers: 600, Accounts: 50, IdleSamples: 3, Logger: testLogger(t)},
		func(p BenchProgress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != 600 || r.TPS <= 0 || r.LatencyP50 <= 0 || r.LatencyP50 > r.LatencyMax || r.IdleLatencyP50 <= 0 || r.Blocks == 0 {
		t.Fatalf("report %+v", r)
	}
	if got := len(phases); got < 4 || phases[got-1] != "done" {
		t.Fatalf("phases %v", phases)
	}
	t.Log(r)
}

func benchmarkLedger(b *testing.B, validators, transfers int) {
	for i := 0; i < b.N; i++ {
		r, err := RunBench(context.Background(), BenchOptions{Validators: validators, Transfers: transfers, Logger: testLogger(b)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TPS, "tx/s")
		b.ReportMetric(float64(r.LatencyP50.Milliseconds()), "p50-ms")
		b.ReportMetric(float64(r.LatencyP95.Milliseconds()), "p95-ms")
		b.ReportMetric(float64(r.IdleLatencyP50.Milliseconds()), "idle-p50-ms")
		b.Log(r)
	}
}

// Run with: go test -run '^$' -bench Ledger -benchtime 1x ./chain/
func BenchmarkLedger1Validator(b *testing.B)  { benchmarkLedger(b, 1, 30_000) }
func BenchmarkLedger4Validators(b *testing.B) { benchmarkLedger(b, 4, 10_000) }
