package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/sysproc"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

// TestJoinWithSeparateProcesses is the README's "Join a network" section as
// separate processes: a one-node devnet with a validator, then a second home
// made by `init --join --rpc` whose node sees the first as a peer and reads
// the ledger; status finds its API through <home>/api.addr; a listen port in
// use is an error; a node without a ledger warns in its log and in status.
func TestJoinWithSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node processes (about 30 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "gridmind")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	basePort := freePortRange(t, 1)
	nodes, err := devnetLayout(dir, 1, basePort, freePortRange(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	network, _, err := devnetChain(dir, nodes, devnetChainOptions{ChainID: "gridmind-join", Validators: 1,
		BasePort: freePortRange(t, 2), Funds: 1000 * gridmind.UnitsPerGRID, Params: ptr(ledger.DefaultParams())})
	if err != nil {
		t.Fatal(err)
	}
	p := &procNet{t: t, bin: bin, nodes: nodes}
	p.start(0)
	t.Cleanup(func() { stopDevnet(nodes) })
	rpc := network.RPCAddrs()[0]
	first := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", basePort, nodes[0].ID)

	// Bad input is refused with a clear error, and writes nothing.
	bad := filepath.Join(dir, "bad")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--join", "/ip4/127.0.0.1/tcp/1"}, "must end in /p2p/<peer id>"},
		{[]string{"--join", "not-an-addr"}, "is not a multiaddr"},
		{[]string{"--join", first, "--rpc", "127.0.0.1:26757"}, "is not a validator RPC URL"},
		{[]string{"--join", first, "--rpc", "http://127.0.0.1"}, "names no port"},
	} {
		out, err := p.cli(ctx, append([]string{"init", "--home", bad}, c.args...)...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("init %v: err %v, output %q; want an error mentioning %q", c.args, err, out, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(bad, node.ConfigFile)); err == nil {
		t.Error("a refused init wrote a config")
	}

	// init --join writes a config that bootstraps to the peer and uses the ledger.
	h2 := filepath.Join(dir, "second")
	if out, err := p.cli(ctx, "init", "--home", h2, "--join", first, "--rpc", rpc,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0"); err != nil {
		t.Fatalf("init --join: %v\n%s", err, out)
	}
	cfg, err := node.LoadConfig(h2)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Bootstrap) != 1 || cfg.Bootstrap[0] != first || len(cfg.Chain.RPC) != 1 || cfg.Chain.RPC[0] != rpc {
		t.Fatalf("config: bootstrap %v, chain.rpc %v; want [%s], [%s]", cfg.Bootstrap, cfg.Chain.RPC, first, rpc)
	}

	second := &devnetNode{Home: h2}
	p.nodes = append(p.nodes, second)
	p.start(1)
	// status finds the node through api.addr (its HTTP port was 0, so
	// config.yaml's address is not where it listens).
	var st node.Status
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := p.cli(ctx, "status", "--home", h2, "--json")
		if err == nil {
			st = node.Status{}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			if st.Peers >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the joined node did not see the first as a peer: %v\n%s\nlog:\n%s", err, out, p.logTail(1))
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, w := range st.Warnings {
		t.Errorf("joined node warns: %s", w)
	}
	if out, err := p.cli(ctx, "peers", "--home", h2); err != nil || !strings.Contains(out, string(nodes[0].ID)[len(nodes[0].ID)-8:]) {
		t.Errorf("peers: %v\n%s", err, out)
	}
	// The ledger is read through the configured RPC.
	if out, err := p.cli(ctx, "wallet", "balance", string(nodes[0].ID), "--home", h2); err != nil || !strings.Contains(out, "height") || !strings.Contains(out, "registered") {
		t.Errorf("wallet balance of the funded first node, from the joined home: %v\n%s", err, out)
	}

	// A listen port in use (the first node's) is an error that says so.
	h3 := filepath.Join(dir, "third")
	if out, err := p.cli(ctx, "init", "--home", h3, "--http", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := p.cli(ctx, "node", "--home", h3, "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", basePort))
	if err == nil || !strings.Contains(out, "already in use") {
		t.Errorf("node on a port in use: err %v, want an error saying the port is in use\n%s", err, out)
	}

	// A node without a ledger warns, in its log and in status.
	third := &devnetNode{Home: h3}
	p.nodes = append(p.nodes, third)
	c := exec.Command(bin, "node", "--home", h3, "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "info")
	logPath := filepath.Join(h3, "node.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = sysproc.ChildAttr()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	third.cmd, third.log, third.done = c, f, make(chan struct{})
	go func() { _ = c.Wait(); close(third.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		out, err = p.cli(ctx, "status", "--home", h3)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of the ledgerless node: %v\n%s", err, out)
		}
	}
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, "no ledger configured") {
		t.Errorf("status of a node without a ledger does not warn:\n%s", out)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "WARNING: no ledger configured") {
		t.Errorf("the log of a node without a ledger does not warn:\n%s", b)
	}
	if out, err := p.cli(ctx, "wallet", "balance", "--home", h3, "--rpc", "http://127.0.0.1:1"); err == nil || !strings.Contains(out, "init --home") {
		t.Errorf("wallet without a ledger: want a hint naming init --join --rpc: %v\n%s", err, out)
	}

	// A ledger that does not answer is warned about too (within 10 s).
	h4 := filepath.Join(dir, "fourth")
	if out, err := p.cli(ctx, "init", "--home", h4, "--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc", "http://127.0.0.1:1"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	p.nodes = append(p.nodes, &devnetNode{Home: h4})
	p.start(len(p.nodes) - 1)
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out, err = p.cli(ctx, "status", "--home", h4)
		if err == nil && strings.Contains(out, "no ledger reachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of a node whose ledger does not answer has no warning: %v\n%s\nlog:\n%s", err, out, p.logTail(len(p.nodes)-1))
		}
	}

	// A clean stop removes api.addr.
	_ = third.cmd.Process.Signal(syscall.SIGTERM)
	<-third.done
	third.cmd = nil
	if _, err := os.Stat(filepath.Join(h3, node.APIAddrFile)); err == nil {
		t.Error("api.addr is still there after a clean stop")
	}
}

func ptr[T any](v T) *T { return &v }
