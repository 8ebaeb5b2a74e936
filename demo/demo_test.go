package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDemoEndToEnd runs the demo's engine in a shorter configuration and
// checks the story it reports: real training, a crash survived, money
// conserved and paid, reputation moved, inference answered, report files.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end demo takes about a minute; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	// The nodes' warnings and info lines, shown when the test fails: the
	// story alone does not say why a worker did not join or serve.
	logs := &testutil.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	rep, err := Run(ctx, Options{Nodes: 5, Workers: 3, Rounds: 4, InnerSteps: 15, Seed: 2, Out: &out, ResultsDir: dir, Logger: logger})
	if err != nil {
		t.Fatalf("demo: %v\n%s\nnode logs:\n%s", err, out.String(), logs.String())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(out.String())
			t.Log("node logs:\n" + logs.String())
		}
	})
	first, last, fell := rep.LossFell()
	if !fell || last > first-0.5 {
		t.Errorf("evaluation loss did not fall: %.3f → %.3f", first, last)
	}
	if len(rep.Rounds) != 4 {
		t.Errorf("%d rounds reported, want 4", len(rep.Rounds))
	}
	if !rep.Supply.Holds || rep.Supply.Total != rep.Supply.Expected {
		t.Errorf("supply invariant: %+v", rep.Supply)
	}
	if rep.Crashed == "" {
		t.Fatal("no worker was crashed")
	}
	for _, n := range rep.Nodes {
		if n.Rounds > 0 && n.Paid == 0 && n.ID != rep.Audit.Cheater {
			t.Errorf("%s worked %d rounds and was not paid", n.Name, n.Rounds)
		}
		if n.ID == rep.Crashed && (rep.CrashedReputationAtCrash == 0 || n.ReputationAfter >= rep.CrashedReputationAtCrash) {
			t.Errorf("crashed worker %s: reputation %d at the crash → %d after did not fall", n.Name, rep.CrashedReputationAtCrash, n.ReputationAfter)
		}
		// The proof withholds the cheater's pay for every round still in
		// its dispute window; a round that settled before the first audit
		// of the cheater's rounds reached the ledger stays paid (timing),
		// but the slash must make cheating a loss.
		if n.ID == rep.Audit.Cheater && n.Paid >= rep.Audit.Slashed {
			t.Errorf("the cheater was paid %s and slashed %s: cheating paid", n.Paid, rep.Audit.Slashed)
		}
		if n.ID != rep.Crashed && n.ID != rep.Audit.Cheater && n.Rounds >= 2 && n.ReputationAfter <= n.ReputationBefore {
			t.Errorf("worker %s finished %d rounds but its reputation did not rise", n.Name, n.Rounds)
		}
	}
	a := rep.Audit
	if a.Cheater == "" || a.ProofHeight == 0 || a.Slashed == 0 || !a.Excluded || a.Agreeing < 3 {
		t.Errorf("the cheater was not caught, proven, slashed and excluded: %+v", a)
	}
	if a.ScreenCaught {
		t.Error("the reducers' screen caught the cheater; the demo's cheat should need an audit")
	}
	if a.HonestMismatches != 0 {
		t.Errorf("%d re-runs of honest rounds did not reproduce", a.HonestMismatches)
	}
	if a.Cleared == 0 {
		t.Error("no honest round was audited and cleared")
	}
	if len(rep.Inference) == 0 {
		t.Fatal("no inference requests")
	}
	for _, in := range rep.Inference {
		if in.Error != "" || in.Completion == "" {
			t.Errorf("prompt %q: %q, error %q", in.Prompt, in.Completion, in.Error)
		}
	}
	if rep.BytesSent <= 0 || rep.SyncBytes <= 10*rep.BytesSent {
		t.Errorf("communication: sent %.0f, synchronous %.0f", rep.BytesSent, rep.SyncBytes)
	}
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || back.ModelHash != rep.ModelHash {
		t.Fatalf("report.json does not round-trip: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), rep.ModelHash) {
		t.Fatalf("report.md lacks the model hash: %v", err)
	}
	if !strings.Contains(string(md), "## Verification") {
		t.Error("report.md has no verification section")
	}
	// A bytes.Buffer is no terminal: plain lines, no redraws.
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Error("the story's output to a non-terminal holds a carriage return or an escape code")
	}
	for _, want := range []string{"placement", "killing worker", "paid from escrow", "served by", "report written to", "is a cheater", "fraud proof on the ledger", "slashed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the story's output lacks %q", want)
		}
	}
}

func TestOptionsRejectBadFlags(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{Nodes: 1}, "--nodes"},
		{Options{Nodes: 4, Workers: 4}, "--workers"},
		{Options{Rounds: 1}, "--rounds"},
		{Options{InnerSteps: -1}, "--inner-steps"},
		{Options{Model: "gpt"}, "--model"},
	}
	for _, tt := range tests {
		_, err := Run(context.Background(), tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tt.o, err, tt.want)
		}
	}
}
