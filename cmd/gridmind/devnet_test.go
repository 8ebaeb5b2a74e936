package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/testutil"
	"github.com/gridmind/gridmind/node"
)

func TestCheckDevnetPorts(t *testing.T) {
	for _, tc := range []struct {
		name                                   string
		nodes, validators, base, http, chainPt int
		want                                   string // "" for no error
	}{
		{"defaults", 4, 1, 27000, 28000, 26756, ""},
		{"many validators below the libp2p ports", 64, 64, 27000, 28000, 26756, ""},
		{"chain overlaps libp2p", 4, 4, 27000, 28000, 26995, "overlaps --base-port"},
		{"http overlaps libp2p", 10, 1, 27000, 27005, 26756, "overlaps --base-port"},
		{"privileged", 4, 1, 80, 28000, 26756, "outside 1024..65535"},
		{"past the top", 4, 1, 27000, 65534, 26756, "outside 1024..65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDevnetPorts(tc.nodes, tc.validators, tc.base, tc.http, tc.chainPt)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || gridmind.ExitCode(err) != 2):
				t.Errorf("error %v, want an invalid-input error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDevnetChainLayout builds a devnet folder's homes and chain, then
// builds it again: the second run must reuse keys, chain and configs.
func TestDevnetChainLayout(t *testing.T) {
	dir := t.TempDir()
	opts := devnetChainOptions{ChainID: "gridmind-devnet", Validators: 2, BasePort: 26756, Funds: 1000 * gridmind.UnitsPerGRID}
	homes, err := devnetLayout(dir, 3, 27000, 28000)
	if err != nil {
		t.Fatal(err)
	}
	network, created, err := devnetChain(dir, homes, opts)
	if err != nil || !created {
		t.Fatalf("devnetChain: created %v, err %v", created, err)
	}
	if len(network.Validators) != 2 {
		t.Fatalf("%d validators, want 2", len(network.Validators))
	}
	g := genesisOf(t, network.Validators[0].Home)
	funded := balances(g)
	configs := map[string][]byte{}
	for i, n := range homes {
		if n.Validator != (i < 2) {
			t.Errorf("node%d validator = %v", i, n.Validator)
		}
		if i < 2 && network.Validators[i].Account != n.ID {
			t.Errorf("validator %d is %s, want node%d's key %s", i, network.Validators[i].Account, i, n.ID)
		}
		if funded[n.ID] != 1000*gridmind.UnitsPerGRID {
			t.Errorf("node%d holds %s at genesis, want 1000 GRID", i, funded[n.ID])
		}
		cfg, err := node.LoadConfig(n.Home)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Chain.Validator != (i < 2) || strings.Join(cfg.Chain.RPC, ",") != "http://127.0.0.1:26757,http://127.0.0.1:26759" {
			t.Errorf("node%d chain config %+v", i, cfg.Chain)
		}
		configs[n.Home], _ = os.ReadFile(filepath.Join(n.Home, node.ConfigFile))
	}

	// Again, on the same folder.
	homes2, err := devnetLayout(dir, 3, 27000, 28000)
	if err != nil {
		t.Fatal(err)
	}
	network2, created, err := devnetChain(dir, homes2, opts)
	if err != nil || created {
		t.Fatalf("second devnetChain: created %v, err %v", created, err)
	}
	if network2.ChainID != network.ChainID || network2.Validators[1].P2PID != network.Validators[1].P2PID {
		t.Errorf("the second run made a different chain: %+v vs %+v", network2, network)
	}
	for i, n := range homes2 {
		if n.ID != homes[i].ID {
			t.Errorf("node%d changed identity: %s → %s", i, homes[i].ID, n.ID)
		}
		if b, _ := os.ReadFile(filepath.Join(n.Home, node.ConfigFile)); !bytes.Equal(b, configs[n.Home]) {
			t.Errorf("node%d config rewritten although nothing changed", i)
		}
	}

	// A different validator count or chain id is refused, not silently ignored.
	for _, tc := range []struct {
		name string
		o    devnetChainOptions
		want string
	}{
		{"validators", devnetChainOptions{ChainID: "gridmind-devnet", Validators: 3}, "pass --validators 2"},
		{"chain id", devnetChainOptions{ChainID: "other", ChainIDSet: true, Validators: 2}, "drop --chain-id"},
	} {
		_, _, err := devnetChain(dir, homes2, tc.o)
		if gridmind.ExitCode(err) != 4 || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a conflict saying %q", tc.name, err, tc.want)
		}
	}
}

// TestDevnetUp builds the binary and runs `gridmind devnet up` with three
// nodes, two of them validators: the chain commits, a node's wallet works, Ctrl-C stops it
// cleanly, and a second run reuses the folder.
func TestDevnetUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gridmind binary and runs 3 node processes twice (about 30 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "gridmind")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "devnet")
	p2p, httpPort, chainPort := freePortRange(t, 3), freePortRange(t, 3), freePortRange(t, 4)
	args := []string{"devnet", "up", "--nodes", "3", "--dir", dir, "--log-level", "error",
		"--base-port", fmt.Sprint(p2p), "--http-port", fmt.Sprint(httpPort), "--chain-port", fmt.Sprint(chainPort)}

	run := func(extra ...string) string {
		t.Helper()
		var out testutil.SyncBuffer
		c := exec.CommandContext(ctx, bin, append(args, extra...)...)
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		for !strings.Contains(out.String(), "committing: height") || !strings.Contains(out.String(), "network formed") {
			select {
			case err := <-done:
				t.Fatalf("devnet up exited early: %v\n%s", err, out.String())
			case <-ctx.Done():
				c.Process.Kill()
				t.Fatalf("devnet did not come up:\n%s", out.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
		// The last node is not a validator: its wallet goes through chain.rpc.
		bal := mustCLI(t, ctx, "wallet", "balance", "--home", filepath.Join(dir, "node2"))
		if !strings.Contains(bal, "balance") || !strings.Contains(bal, "GRID") {
			t.Errorf("wallet balance of node2:\n%s", bal)
		}
		if err := c.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devnet up after Ctrl-C: %v\n%s", err, out.String())
			}
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			t.Fatalf("devnet up did not stop within 30 s of Ctrl-C:\n%s", out.String())
		}
		return out.String()
	}
	first := run("--validators", "2")
	if !strings.Contains(first, "created chain gridmind-devnet") {
		t.Errorf("first run:\n%s", first)
	}
	network, err := chain.LoadNetwork(dir)
	if err != nil || len(network.Validators) != 2 {
		t.Fatalf("network %+v, err %v", network, err)
	}
	second := run() // no --validators: the folder's chain decides
	if !strings.Contains(second, "reusing chain gridmind-devnet") || !strings.Contains(second, "(2 validator(s))") {
		t.Errorf("second run:\n%s", second)
	}
}
