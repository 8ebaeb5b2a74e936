package jobs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/jobs"
)

// TestJobReducedToOneWorkerServesItsReceiptedModel stops two of a job's
// three workers after its first round. The last one trains the remaining
// rounds alone: fewer than the job's minimum of contributors, so its own
// count cannot confirm its state, but the ledger receipts those rounds.
// The model the job's last receipt names is the job's model, and the
// worker that trained it serves it (the demo failed on this when its
// standby joined too late).
func TestJobReducedToOneWorkerServesItsReceiptedModel(t *testing.T) {
	if testing.Short() {
		t.Skip("a job with training takes ~1 minute; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute) // a bound on a hang, not a speed
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 3, Seed: 11}, slog.LevelDebug)
	first := make(chan []gridmind.NodeID, 1)
	spec := gridmind.JobSpec{Name: "solo", Model: "mlp", Workers: 3, Rounds: 4, InnerSteps: 6, Budget: 32 * gridmind.UnitsPerGRID, Seed: 4}
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{
		EvalBatches: 1, ReportTimeout: 10 * time.Second,
		Events: func(e jobs.Event) {
			if e.Round != nil {
				t.Logf("%s round %d: %d participants", e.Kind, e.Round.Round, len(e.Round.Participants))
			}
			if e.Kind == jobs.EventRound && e.Round.Round == 0 {
				select {
				case first <- e.Round.Participants:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var parts []gridmind.NodeID
	select {
	case parts = <-first:
	case <-ctx.Done():
		t.Fatal("round 0 never finished")
	}
	if len(parts) < 3 {
		t.Fatalf("round 0 had %d participants, want 3", len(parts))
	}
	survivor := parts[2]
	for i, p := range net.Providers {
		if p != nil && p.Node.ID() != survivor {
			if err := net.StopProvider(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	results, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := results[len(results)-1]
	if len(results) != spec.Rounds || len(last.Participants) != 1 || last.Participants[0] != survivor {
		t.Fatalf("%d rounds, the last by %v; want %d, the last by the survivor alone", len(results), last.Participants, spec.Rounds)
	}
	var held *app.App
	for _, p := range net.Providers {
		if p != nil && p.Node.ID() == survivor {
			held = p
		}
	}
	err = netutil.PollUntil(ctx, 60*time.Second, 100*time.Millisecond, func() bool { return held.Models.Has(last.ThetaHash) })
	if err != nil {
		t.Fatalf("the lone worker does not serve the job's last receipted model %s: %v", last.ThetaHash[:12], err)
	}
}
