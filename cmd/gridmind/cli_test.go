package main

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestTyposExitNonZeroWithASuggestion: a mistyped subcommand at any depth
// fails with exit 2 and names the nearest command (issue 15: `wallet
// balanse` printed the help and exited 0).
func TestTyposExitNonZeroWithASuggestion(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"wallet", "balanse"}, `unknown command "balanse" for "gridmind wallet"; did you mean "balance"?`},
		{[]string{"jobs", "lst"}, `unknown command "lst" for "gridmind jobs"; did you mean "list"?`},
		{[]string{"train", "sumbit", "spec.yaml"}, `did you mean "submit"?`},
		{[]string{"chain", "stauts"}, `did you mean "status"?`},
		{[]string{"devnet", "upp"}, `did you mean "up"?`},
		{[]string{"walet", "balance"}, `unknown command "walet" for "gridmind"; did you mean "wallet"?`},
		// Nothing close: the command's subcommands are listed instead.
		{[]string{"wallet", "xyzzy"}, "its commands are address, balance, history, send, stake, tx, unstake"},
	}
	for _, tt := range tests {
		wantCLIError(t, ctx, 2, tt.want, tt.args...)
	}
	// A group alone still prints its help and succeeds.
	if out := mustCLI(t, ctx, "wallet"); !strings.Contains(out, "Available Commands") {
		t.Errorf("gridmind wallet printed:\n%s", out)
	}
}

// TestEveryGroupRefusesUnknownSubcommands walks the whole tree, so a group
// added later cannot print help and exit 0 on a typo.
func TestEveryGroupRefusesUnknownSubcommands(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		// A command whose only subcommands are hidden (bench wan's node,
		// the process the harness starts) is no group to its users: its
		// own argument check refuses the word.
		if c.HasAvailableSubCommands() {
			if err := c.Args(c, []string{"nosuchcommand"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
				t.Errorf("%s accepts an unknown subcommand (%v)", c.CommandPath(), err)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
}

func TestVersionFlag(t *testing.T) {
	ctx := context.Background()
	flag, cmd := mustCLI(t, ctx, "--version"), mustCLI(t, ctx, "version")
	if !strings.HasPrefix(flag, "gridmind ") || flag != cmd {
		t.Errorf("--version printed %q, version printed %q; want the same 'gridmind VERSION' line", flag, cmd)
	}
}

// TestNegativeAmount: the flag parser reads "-5" as short flags ("unknown
// shorthand flag: '5' in -5"); commands say it is a negative amount.
func TestNegativeAmount(t *testing.T) {
	ctx := context.Background()
	const addr = "12D3KooWBJ2rkjPQuQoUduip3e1faXkexubL5TXNLYcKanj2FKct"
	for _, args := range [][]string{
		{"wallet", "send", addr, "-5"},
		{"wallet", "send", addr, "-0.5"},
		{"wallet", "send", addr, "-5GRID"},
		{"wallet", "stake", "-5"},
		{"wallet", "unstake", "-1500u"},
	} {
		wantCLIError(t, ctx, 2, "is negative", args...)
	}
	// A command that takes no amount says what the number is, not which flag is unknown.
	wantCLIError(t, ctx, 2, "-3 is a negative number", "peers", "-3")
	// Real unknown flags are still reported as such.
	wantCLIError(t, ctx, 2, "unknown shorthand flag: 'x'", "wallet", "send", addr, "5", "-x")
}

// TestEveryCommandHasExamples: every command a person runs shows examples
// in its help, and examples.go names no command that does not exist.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot()
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		seen[c.CommandPath()] = true
		if c.Name() == "completion" {
			return // cobra's own, with its own instructions
		}
		if !c.HasSubCommands() && c.IsAvailableCommand() && c.Example == "" {
			t.Errorf("%s has no examples (add them to examples.go)", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for path := range examples {
		if !seen[path] {
			t.Errorf("examples.go has examples for %q, which is not a command", path)
		}
	}
	out := mustCLI(t, context.Background(), "wallet", "send", "--help")
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "gridmind wallet send 12D3KooW... 50") {
		t.Errorf("wallet send --help shows no examples:\n%s", out)
	}
}
