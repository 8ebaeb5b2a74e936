package ledgerbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/chain"
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

// TestMain lets the test binary stand in for `gridmind node --home H` as
// a validator process (TestRunProcesses runs it so): the real validator
// (chain.StartNode with the production ledger options) of the home's
// chain, in a process of its own, until SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv(validatorEnv) != "" {
		os.Exit(runValidator(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const validatorEnv = "LEDGERBENCH_TEST_VALIDATOR"

func runValidator(args []string) int {
	if len(args) != 3 || args[0] != "node" || args[1] != "--home" {
		fmt.Fprintf(os.Stderr, "want: node --home HOME, got %q\n", args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	v, err := chain.StartNode(ctx, chain.NodeConfig{Home: filepath.Join(args[2], "chain"), Ledger: app.LedgerOptions(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	if err := v.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestRunProcesses runs four validators as separate processes (this test
// binary standing in for gridmind, see TestMain) for a few seconds: the
// path `gridmind bench ledger --validators 4` takes, with the validators'
// CPU read from /proc.
func TestRunProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four validator processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(validatorEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Run(ctx, Options{
		Validators: 4, Exe: exe, Duration: 3 * time.Second, Submitters: 4, Window: 200, Wallets: 40, Providers: 40, Observers: 40,
		Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		for i := range 4 {
			if b, rerr := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "node.log")); rerr == nil {
				t.Logf("node%d.log:\n%s", i, b)
			}
		}
		t.Fatal(err)
	}
	t.Log(r)
	if r.Mode != "separate processes" || r.Overall.Committed < 50 || r.Overall.Failed != 0 || r.Uncommitted != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.ValidatorCPUPerTx <= 0 {
		t.Errorf("no CPU read for the validator processes: %+v", r)
	}
}
