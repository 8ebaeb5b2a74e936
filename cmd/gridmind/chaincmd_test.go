package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

// genesisOf reads the ledger genesis out of a validator home's CometBFT
// genesis document.
func genesisOf(t *testing.T, validatorHome string) ledger.Genesis {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(validatorHome, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AppState ledger.Genesis `json:"app_state"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.AppState
}

func balances(g ledger.Genesis) map[gridmind.NodeID]gridmind.Amount {
	m := map[gridmind.NodeID]gridmind.Amount{}
	for _, a := range g.Accounts {
		m[a.Address] = a.Balance
	}
	return m
}

func TestChainInitSelf(t *testing.T) {
	ctx := context.Background()
	home, id := newTestHome(t, ctx)
	_, other := newTestHome(t, ctx)
	cfgBefore, err := os.ReadFile(filepath.Join(home, node.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	port := freePortRange(t, 2)
	out := mustCLI(t, ctx, "chain", "init", "--home", home, "--chain-id", "test-chain", "--chain-port", fmt.Sprint(port),
		"--account", string(other)+"=12.5")
	for _, want := range []string{"created chain test-chain", "gridmind node --validator --home " + home, "validator: true", fmt.Sprintf("http://127.0.0.1:%d", port+1)} {
		if !strings.Contains(out, want) {
			t.Errorf("chain init output lacks %q:\n%s", want, out)
		}
	}
	// Nothing else in the home changed.
	cfgAfter, err := os.ReadFile(filepath.Join(home, node.ConfigFile))
	if err != nil || !bytes.Equal(cfgBefore, cfgAfter) {
		t.Errorf("chain init changed %s (err %v)", node.ConfigFile, err)
	}
	chainHome := filepath.Join(home, "chain")
	network, err := chain.LoadNetwork(chainHome)
	if err != nil {
		t.Fatal(err)
	}
	if len(network.Validators) != 1 || network.Validators[0].Account != id || network.ChainID != "test-chain" {
		t.Errorf("network = %+v, want one validator keyed by the node key %s", network, id)
	}
	g := genesisOf(t, chainHome)
	got := balances(g)
	if got[id] != 1_000_000*gridmind.UnitsPerGRID || got[other] != 12*gridmind.UnitsPerGRID+gridmind.UnitsPerGRID/2 || len(got) != 2 {
		t.Errorf("genesis balances = %v, want the node with 1,000,000 GRID and %s with 12.5", got, other)
	}
	// A second init must not replace the chain.
	wantCLIError(t, ctx, 4, "already holds a chain", "chain", "init", "--home", home, "--chain-port", fmt.Sprint(port))

	// A config that already runs the validator gets no advice to add it.
	home2, _ := newTestHome(t, ctx)
	cfg, _ := node.LoadConfig(home2)
	cfg.Chain.Validator = true
	if err := node.WriteConfig(home2, cfg); err != nil {
		t.Fatal(err)
	}
	out = mustCLI(t, ctx, "chain", "init", "--home", home2, "--chain-port", fmt.Sprint(freePortRange(t, 2)), "--funds", "0")
	if strings.Contains(out, "validator: true") || strings.Contains(out, "funded") {
		t.Errorf("chain init with validator already set and --funds 0:\n%s", out)
	}
	if g := genesisOf(t, filepath.Join(home2, "chain")); len(g.Accounts) != 0 {
		t.Errorf("--funds 0: genesis funds %v", g.Accounts)
	}
}

func TestChainInitErrors(t *testing.T) {
	ctx := context.Background()
	home, id := newTestHome(t, ctx)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"no key", 3, "gridmind init", []string{"--home", empty}},
		{"account without amount", 2, "ADDR=AMOUNT", []string{"--account", string(id)}},
		{"account bad address", 2, "node id", []string{"--account", "bob=5"}},
		{"account bad amount", 2, `amount "lots"`, []string{"--account", string(id) + "=lots"}},
		{"account twice", 2, "named twice", []string{"--account", string(id) + "=1", "--account", string(id) + "=2"}},
		{"bad funds", 2, "--funds", []string{"--funds", "-3"}},
		{"no validators", 2, "--validators 0", []string{"--validators", "0"}},
		{"privileged port", 2, "--chain-port 80", []string{"--chain-port", "80"}},
		// --chain-port means the CometBFT ports here as in devnet up; the
		// old name, which is the libp2p port in devnet up, still works.
		{"deprecated --base-port", 2, "--chain-port 80", []string{"--base-port", "80"}},
		{"bad chain id", 2, "chain id", []string{"--chain-id", strings.Repeat("x", 200)}},
		{"extra argument", 2, "want 0 argument", []string{"now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"chain", "init", "--home", home, "--chain-port", "20000"}, tc.args...)
			wantCLIError(t, ctx, tc.code, tc.want, args...)
		})
	}
	// None of the refused inits left a chain behind.
	if _, err := os.Stat(filepath.Join(home, "chain", "config", "genesis.json")); err == nil {
		t.Error("a refused chain init wrote a genesis")
	}
}

func TestChainInitLocal(t *testing.T) {
	ctx := context.Background()
	home, own := newTestHome(t, ctx)
	dir := filepath.Join(t.TempDir(), "net")
	port := freePortRange(t, 6)
	out := mustCLI(t, ctx, "chain", "init", "--home", home, "--validators", "3", "--dir", dir, "--chain-port", fmt.Sprint(port), "--funds", "500")
	if !strings.Contains(out, "3 validator(s)") || !strings.Contains(out, "gridmind devnet up --dir "+dir) {
		t.Errorf("chain init output:\n%s", out)
	}
	network, err := chain.LoadNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(network.Validators) != 3 {
		t.Fatalf("%d validators, want 3", len(network.Validators))
	}
	g := genesisOf(t, network.Validators[0].Home)
	got := balances(g)
	for i, v := range network.Validators {
		nodeHome := filepath.Join(dir, fmt.Sprintf("node%d", i))
		key, err := node.LoadKey(nodeHome)
		if err != nil {
			t.Fatal(err)
		}
		if id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)); id != v.Account {
			t.Errorf("validator %d account %s is not node%d's key %s", i, v.Account, i, id)
		}
		if got[v.Account] != 500*gridmind.UnitsPerGRID {
			t.Errorf("validator %d holds %s at genesis, want 500 GRID", i, got[v.Account])
		}
		if want := fmt.Sprintf("http://127.0.0.1:%d", port+2*i+1); v.RPCAddr != want {
			t.Errorf("validator %d RPC %s, want %s", i, v.RPCAddr, want)
		}
		cfg, err := node.LoadConfig(nodeHome)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Chain.Validator || strings.Join(cfg.Chain.RPC, ",") != strings.Join(network.RPCAddrs(), ",") {
			t.Errorf("node%d chain config = %+v, want a validator listing %v", i, cfg.Chain, network.RPCAddrs())
		}
	}
	if got[own] != 500*gridmind.UnitsPerGRID {
		t.Errorf("this home's node holds %s at genesis, want 500 GRID", got[own])
	}
	wantCLIError(t, ctx, 4, "already holds a chain", "chain", "init", "--home", home, "--validators", "3", "--dir", dir, "--chain-port", fmt.Sprint(port))
}

func TestParseGenesisAccounts(t *testing.T) {
	a := string(gridmind.NodeIDFromPublicKey(make([]byte, 32)))
	for _, tc := range []struct {
		in   []string
		want []gridmind.Amount
		code int
	}{
		{nil, nil, 0},
		{[]string{a + "=1"}, []gridmind.Amount{gridmind.UnitsPerGRID}, 0},
		{[]string{a + "=1500u"}, []gridmind.Amount{1500}, 0},
		{[]string{a + " = 2 GRID"}, []gridmind.Amount{2 * gridmind.UnitsPerGRID}, 0},
		{[]string{a}, nil, 2},
		{[]string{"=5"}, nil, 2},
		{[]string{a + "="}, nil, 2},
		{[]string{a + "=1", a + "=1"}, nil, 2},
	} {
		got, err := parseGenesisAccounts(tc.in)
		if code := gridmind.ExitCode(err); code != tc.code {
			t.Errorf("%q: exit %d (%v), want %d", tc.in, code, err, tc.code)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i].Balance != tc.want[i] {
				t.Errorf("%q: balance %s, want %s", tc.in, got[i].Balance, tc.want[i])
			}
		}
	}
}
