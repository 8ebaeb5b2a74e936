package main

import (
	"strings"
	"testing"
)

// TestBenchVerify runs `gridmind bench verify` at a tiny size, the ledger
// part on a real in-process validator, and checks the report's tables.
func TestBenchVerify(t *testing.T) {
	out, progress, err := runGridmind(t, "bench", "verify", "--trials=200", "--fleet=20", "--fleet-rounds=5",
		"--auditors=20", "--ledger-runs=1", "--reexec-steps=0", "--log-level=error")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, progress)
	}
	for _, want := range []string{
		"### Verification: audits, overhead, fraud to slash",
		"- Command: `gridmind bench verify ",
		"| new node (simulated, 200 trials) |",
		"| overhead, whole-round re-execution (audit / useful compute) |",
		"| overhead, one of 4 segments re-executed |",
		"| median, receipt committed → slash committed |",
		"load average at end: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(progress, "run 1: receipt at height") {
		t.Errorf("progress lacks the ledger run:\n%s", progress)
	}
}

func TestBenchVerifyBadFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "verify", "--trials=10"}, "--trials 10"},
		{[]string{"bench", "verify", "--auditors=3"}, "--auditors 3"},
		{[]string{"bench", "verify", "--colluding=0.5"}, "--colluding 0.5"},
		{[]string{"bench", "verify", "--validators=0"}, "--validators 0"},
	} {
		_, _, err := runGridmind(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %q", tt.args, err, tt.want)
		}
	}
}
