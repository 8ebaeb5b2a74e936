package jobs_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

// A job cancelled mid-run: the workers notice on the ledger late and
// finish their round, so they hold a state a few rounds past the last
// receipt. What they serve must be the model the job's last receipt names
// (what `jobs show` and `models` point users to), not those unpaid rounds.
func TestCancelledJobServesItsLastReceiptedModel(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-worker job on a local network (about half a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	served := map[ledger.JobID][]string{}
	net := startNet(ctx, t, localnet.Options{Providers: 2, Seed: 5, OnModel: func(job ledger.JobID, hash string) {
		mu.Lock()
		defer mu.Unlock()
		served[job] = append(served[job], hash)
	}}, slog.LevelInfo)
	model := gomlx.DefaultConfig(gomlx.MLP)
	model.Hidden, model.EmbedDim, model.Context, model.BatchSize = 16, 4, 8, 4
	const rounds = 400 // far more than run before the cancel
	// 96 inner steps make a round of tens of milliseconds: the workers
	// notice the cancel some seconds late, and with 24 steps (20 ms) they
	// once ran 261 rounds past the last receipt, beyond the 256 states a
	// provider keeps to serve it.
	spec := gridmind.JobSpec{Name: "cancelled", Model: "mlp", Workers: 2, Rounds: rounds, InnerSteps: 96, Budget: 20 * gridmind.UnitsPerGRID, Seed: 3}
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{Model: model, EvalBatches: 1, ReportTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := net.Providers[0].Chain
	for {
		j, err := c.Job(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.NextRound() >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("only %d rounds receipted", j.NextRound())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := net.Requester.Requester.Cancel(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of 2 workers serve a model after the cancel: %v", len(got), got)
		case <-time.After(100 * time.Millisecond):
		}
		mu.Lock()
		got = append([]string(nil), served[run.ID]...)
		mu.Unlock()
	}
	receipts, err := c.Receipts(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var last ledger.Receipt
	for _, r := range receipts {
		if r.Round >= last.Round {
			last = r
		}
	}
	if len(receipts) == 0 || last.Round+1 >= rounds {
		t.Fatalf("%d receipts, the last for round %d: the job was not cut short", len(receipts), last.Round)
	}
	for i, h := range got {
		if h != last.ModelHash.String() {
			t.Errorf("worker %d serves %s; the job's last receipt (round %d) names %s", i, h, last.Round, last.ModelHash)
		}
	}
}
