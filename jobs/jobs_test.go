package jobs_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
)

// TestJobWithCrashAndStandby runs a whole training job on a local network
// (CometBFT validator, libp2p nodes, GoMLX workers): one active worker is
// stopped after the first round, the standby joins, every round is
// settled from escrow, loss falls, the crashed worker's record shows the
// missed rounds, and the supply invariant holds.
func TestJobWithCrashAndStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("a full job with training takes ~1 minute; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute) // a bound on a hang, not a speed: under -race on a busy 2-core machine rounds take 20-50 s
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 4, Seed: 7}, slog.LevelDebug)

	var mu sync.Mutex
	var events []jobs.Event
	crashed := make(chan gridmind.NodeID, 1)
	var run *jobs.Run
	var err error
	spec := gridmind.JobSpec{Name: "test", Model: "mlp", Workers: 3, Rounds: 9, InnerSteps: 8, Budget: 50 * gridmind.UnitsPerGRID, Seed: 3}
	run, err = net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{
		Standby: 1, EvalBatches: 2, ReportTimeout: 15 * time.Second,
		Events: func(e jobs.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			if e.Round != nil {
				t.Logf("%s round %d: loss %.3f, %d participants, %.1fs", e.Kind, e.Round.Round, e.Round.EvalLoss, len(e.Round.Participants), e.Round.Seconds)
			} else {
				t.Logf("%s %s", e.Kind, e.Text)
			}
			if e.Kind == jobs.EventRound && e.Round.Round == 0 {
				select {
				case crashed <- e.Round.Participants[0]:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Active) != 3 || len(run.Standby) != 1 {
		t.Fatalf("placement: active %v standby %v", run.Active, run.Standby)
	}
	victim := <-crashed
	for i, a := range net.Providers {
		if a != nil && a.Node.ID() == victim {
			if err := net.StopProvider(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	results, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != spec.Rounds {
		t.Fatalf("%d rounds finished, want %d", len(results), spec.Rounds)
	}
	first, last := results[0].EvalLoss, results[len(results)-1].EvalLoss
	if !(last < first-0.3) {
		t.Fatalf("eval loss did not fall: %.3f -> %.3f", first, last)
	}
	standby := run.Standby[0]
	joinedLate := false
	for _, r := range results {
		if !r.Settled || len(r.Payments) == 0 {
			t.Fatalf("round %d not paid (settled %v, %d payments); events: %v", r.Round, r.Settled, len(r.Payments), summarize(events))
		}
		if r.Round > 0 && slices.Contains(r.Participants, victim) {
			t.Fatalf("the stopped worker is listed in round %d", r.Round)
		}
		if slices.Contains(r.Participants, standby) {
			joinedLate = true
		}
	}
	if !joinedLate {
		t.Fatalf("the standby worker never took part; events: %v", summarize(events))
	}
	client := net.Requester.Chain
	rep, err := client.Reputation(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RoundsFailed == 0 {
		t.Fatalf("the stopped worker's record shows no missed rounds: %+v", rep)
	}
	sup, err := client.Supply(ctx)
	if err != nil || !sup.Invariant {
		t.Fatalf("supply invariant: %+v %v", sup, err)
	}
	// The workers that finished keep serving the model they trained, named
	// by the hash of its weights.
	final := results[len(results)-1].ThetaHash
	deadline := time.Now().Add(30 * time.Second)
	for {
		held := 0
		for _, a := range net.Providers {
			if a != nil && a.Models.Has(final) {
				held++
			}
		}
		if held > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker holds the trained model %s", final[:12])
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	job, err := client.Job(ctx, run.ID)
	if err != nil || job.RoundsSettled != uint64(spec.Rounds) {
		t.Fatalf("job on the ledger: %+v %v", job, err)
	}
}

func summarize(events []jobs.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, string(e.Kind)+": "+e.Text)
	}
	return out
}
