package ledgerbench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestRunShort runs the harness end to end on one validator in this
// process for a few seconds, so the code behind `gridmind bench ledger`
// is exercised by every test run: every kind of the mix must commit, and
// none may be refused.
func TestRunShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("GRIDMIND_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var phases []string
	r, err := Run(ctx, Options{
		Duration: 3 * time.Second, Submitters: 4, Window: 200, Wallets: 40, Providers: 40, Observers: 40,
		Dir: t.TempDir(), Logger: log,
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Overall.Failed != 0 || r.Uncommitted != 0 {
		t.Fatalf("%d failed (%v), %d uncommitted", r.Overall.Failed, r.FailedLogs, r.Uncommitted)
	}
	if r.Overall.Committed < 100 || r.TPS <= 0 || r.Blocks == 0 || r.Overall.P50 <= 0 || r.Overall.P50 > r.Overall.P99 || r.Overall.P99 > r.Overall.Max {
		t.Fatalf("report %+v", r)
	}
	if len(r.Kinds) != int(kindSetup) {
		t.Fatalf("%d kinds in the report, want %d", len(r.Kinds), kindSetup)
	}
	for _, k := range r.Kinds {
		if k.Committed == 0 {
			t.Errorf("no %s committed: %+v", k.Kind, r.Kinds)
		}
	}
	if r.Submitted != r.Overall.Committed {
		t.Errorf("%d submitted, %d committed", r.Submitted, r.Overall.Committed)
	}
	if want := []string{"starting", "setup", "done"}; phases[0] != want[0] || phases[1] != want[1] || phases[len(phases)-1] != want[2] {
		t.Errorf("phases %v", phases)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Validators: 17},
		{Duration: -time.Second},
		{Submitters: 8, Window: 4},
		{Submitters: 8, Wallets: 10},
		{Providers: 5},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
