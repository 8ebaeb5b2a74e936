package jobs_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

// A requester that takes every report (and so the model) but never
// receipts or settles a round does not get the work for free: the workers
// see the ledger's receipts fall ClaimLag rounds behind and stay there,
// receipt the rounds they co-signed themselves, settle the ones left
// unsettled after their dispute window, and claim the last rounds after
// the job.
func TestWorkersArePaidWhenTheRequesterWithholds(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-worker job on a local network (about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 3, Seed: 21, SettleDelayBlocks: 5}, slog.LevelInfo)
	for _, p := range net.Providers {
		p.Provider.SetRequesterGoneAfter(2 * time.Second)
	}
	requester := net.Requester.Node.ID()
	model := gomlx.DefaultConfig(gomlx.MLP)
	model.Hidden, model.EmbedDim, model.Context, model.BatchSize = 16, 4, 8, 4
	const rounds = 24
	spec := gridmind.JobSpec{Name: "withheld", Model: "mlp", Workers: 3, Rounds: rounds, InnerSteps: 4, Budget: 24 * gridmind.UnitsPerGRID, Seed: 3}
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{Model: model, EvalBatches: 1, ReportTimeout: 10 * time.Second, WithholdPayment: true})
	if err != nil {
		t.Fatal(err)
	}
	c := net.Providers[0].Chain
	var j ledger.Job
	for {
		if j, err = c.Job(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if j.State == ledger.JobCompleted {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the workers receipted %d and settled %d of %d rounds the requester withheld (job %s)", j.NextRound(), j.RoundsSettled, rounds, j.State)
		case <-time.After(200 * time.Millisecond):
		}
	}
	receipts, err := c.Receipts(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range receipts {
		if r.Submitter == requester {
			t.Errorf("round %d was receipted by the withholding requester", r.Round)
		}
		if len(r.Signers) < 2 {
			t.Errorf("round %d receipted with %d signatures", r.Round, len(r.Signers))
		}
	}
	if j.RoundsSettled != rounds || j.Paid == 0 || j.Escrow != 0 {
		t.Errorf("%d of %d rounds settled, %s paid, %s left in escrow", j.RoundsSettled, rounds, j.Paid, j.Escrow)
	}
	t.Logf("withholding requester: %d rounds receipted by the workers, %d settled, %s paid", len(receipts), j.RoundsSettled, j.Paid)
}
