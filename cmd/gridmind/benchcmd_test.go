package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// runGridmind runs the CLI in this process and returns stdout and stderr.
func runGridmind(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestBenchSubcommands runs every benchmark at a tiny size through the CLI
// and checks the report carries the machine, the command line and the
// benchmark's own table.
func TestBenchSubcommands(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     []string // in the report (stdout)
		progress string   // in the progress (stderr)
	}{
		{"p2p", []string{"bench", "p2p", "--stream-mib=1", "--stream-runs=1", "--gossip=3", "--gossip-rounds=1", "--timeout=30s"},
			[]string{"### Network (gridmind bench p2p)", "| TCP+Noise+yamux |", "| QUIC |", "| 3 |"}, "gossip 3 hosts: round 1"},
		{"ledger", []string{"bench", "ledger", "--validators=1", "--in-process", "--duration=2s", "--submitters=2", "--window=100",
			"--wallets=20", "--providers=20", "--observers=20"},
			[]string{"### Ledger (gridmind bench ledger)", "| 1 | in this process | 2s |", "| 1 | receipt |", "Goal ≥ 5000 committed tx/s on 1 validator(s): "}, "1 validator(s): done"},
		{"market", []string{"bench", "market", "--nodes=300", "--tasks=2000", "--runs=2", "--seed=7"},
			[]string{"### Market placement", "| 300 | 2000 |", "Median of 2 runs", "not measured (it is for 10,000 nodes)"}, "run 2/2: 300 nodes, 2000 tasks, seed 8"},
		{"energy", []string{"bench", "energy", "--nodes=40", "--days=1", "--scenarios=summer", "--utilisations=0.45"},
			[]string{"### Energy-aware placement on real traces", "| scenario | days | utilisation |", "| summer 06-21 | 1 |"}, "summer from 2023-06-21, utilisation target 0.45: 40 nodes × 1 days"},
		{"train", []string{"bench", "train", "--workers=2", "--inner-steps=1,4,50", "--total-steps=16", "--context=8", "--batch=4",
			"--embed=4", "--hidden=8", "--eval-batches=1", "--throughput-params=4096", "--skip-libp2p"},
			[]string{"### Training communication", "Model: MLP, context 8, embed 4, hidden 8, batch 4", "| sync-dp | 2 | 1 | 8 | float32 |",
				"| diloco | 2 | 4 | 2 | int8 |", "skipped: H=50 exceeds the 8 steps per worker", "| raw TCP (same byte pattern) | 2 |"}, "diloco int8 K=2 H=4 seed 1 lr default: done"},
		// The in-memory harness: the default one starts replica processes,
		// which this test binary cannot be (internal/bench/inferbench tests it).
		{"infer", []string{"bench", "infer", "--in-memory", "--replicas=3", "--requests=40", "--warmup=5", "--rate=300", "--max-tokens=4"},
			[]string{"### Edge inference", "| baseline | 40 |", "| failures | 40 |", "| 1 [", // one replica killed, the busiest at the time (its RTT depends on timing)
				"p99 with failures / without: "}, "failures run: 40/40 requests answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, progress, err := runGridmind(t, append(tt.args, "--log-level=error")...)
			if err != nil {
				t.Fatalf("%v\nstderr:\n%s", err, progress)
			}
			header := []string{
				"- Command: `gridmind bench " + tt.name + " ",
				"--log-level=error",
				"- Machine: " + runtime.GOOS + "/" + runtime.GOARCH,
				runtime.Version(),
				"- Date: " + time.Now().UTC().Format("2006-01-02"),
				"load average at end: ",
			}
			for _, want := range append(header, tt.want...) {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q:\n%s", want, out)
				}
			}
			if !strings.Contains(progress, tt.progress) {
				t.Errorf("progress lacks %q:\n%s", tt.progress, progress)
			}
		})
	}
}

// TestBenchBadFlags checks that bad sizes fail fast with an error of kind
// invalid that names the flag, before anything is measured.
func TestBenchBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "nosuch"}, `unknown command "nosuch" for "gridmind bench"; its commands are byzantine, energy, infer, ledger, market, memory, p2p, train, verify, wan`},
		{[]string{"bench", "legder"}, `did you mean "ledger"?`},
		{[]string{"bench", "p2p", "--gossip=1"}, "--gossip 1: want 2..1000"},
		{[]string{"bench", "p2p", "--gossip=ten"}, "ten"},
		{[]string{"bench", "p2p", "--stream-mib=0"}, "--stream-mib 0"},
		{[]string{"bench", "p2p", "--timeout=0s"}, "--timeout 0s"},
		{[]string{"bench", "ledger", "--validators=0"}, "--validators 0"},
		{[]string{"bench", "ledger", "--wallets=1"}, "--wallets 1: want 2.."},
		{[]string{"bench", "ledger", "--duration=-1s"}, "--duration -1s"},
		{[]string{"bench", "market", "--nodes=-5"}, "--nodes -5"},
		{[]string{"bench", "market", "--baseline=0"}, "--baseline 0"},
		{[]string{"bench", "market", "--runs=0"}, "--runs 0"},
		{[]string{"bench", "energy", "--scenarios=spring"}, `--scenarios: "spring"`},
		{[]string{"bench", "energy", "--utilisations=1.5"}, "--utilisations: 1.5"},
		{[]string{"bench", "energy", "--green=101"}, "--green 101"},
		{[]string{"bench", "energy", "--min-coverage=1.5"}, "--min-coverage 1.5"},
		{[]string{"bench", "energy", "--surplus-value=20000"}, "--surplus-value 20000"},
		{[]string{"bench", "energy", "--clean-bar=NaN"}, "--clean-bar NaN"},
		{[]string{"bench", "train", "--workers=0"}, "--workers 0"},
		{[]string{"bench", "train", "--inner-steps="}, `for "--inner-steps" flag`},
		{[]string{"bench", "train", "--context=1"}, "--context 1"},
		{[]string{"bench", "train", "--workers=8", "--total-steps=4"}, "--total-steps 4: want at least one step per worker (K up to 8)"},
		// --full sets K to 4,8 unless given; an explicit flag still wins.
		{[]string{"bench", "train", "--full", "--total-steps=5"}, "--total-steps 5: want at least one step per worker (K up to 8)"},
		{[]string{"bench", "infer", "--replicas=1"}, "--replicas 1"},
		{[]string{"bench", "infer", "--in-memory", "--kill=1"}, "--kill 1"},
		{[]string{"bench", "infer", "--fail-at=0"}, "--fail-at 0"},
		{[]string{"bench", "infer", "--rate=0"}, "--rate 0"},
		{[]string{"bench", "infer", "--in-memory", "--latencies=-5ms"}, "--latencies -5ms"},
		{[]string{"bench", "infer", "--scenarios=flood"}, `--scenarios "flood"`},
		{[]string{"bench", "infer", "--model=gpt"}, `--model "gpt"`},
		{[]string{"bench", "infer", "--rounds=0"}, "--rounds 0"},
		{[]string{"bench", "infer", "extra"}, "want 0 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			out, _, err := runGridmind(t, tt.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", out)
			}
			if gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q (kind %v), want kind invalid containing %q", err, gridmind.KindOf(err), tt.want)
			}
			if out != "" {
				t.Errorf("a report was printed before the flags were checked:\n%s", out)
			}
		})
	}
}
