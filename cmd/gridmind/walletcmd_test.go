package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/testutil"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

// runCLI runs one gridmind command in this process and returns its output
// (stdout and stderr together) and error.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out testutil.SyncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--log-level", "error"))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// mustCLI runs a command that must succeed.
func mustCLI(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	out, err := runCLI(t, ctx, args...)
	if err != nil {
		t.Fatalf("gridmind %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// wantCLIError runs a command that must fail with the exit code of code
// and an error that mentions want.
func wantCLIError(t *testing.T, ctx context.Context, code int, want string, args ...string) {
	t.Helper()
	out, err := runCLI(t, ctx, args...)
	if err == nil {
		t.Fatalf("gridmind %s: succeeded, want exit %d\n%s", strings.Join(args, " "), code, out)
	}
	if got := gridmind.ExitCode(err); got != code {
		t.Errorf("gridmind %s: exit %d, want %d (%v)", strings.Join(args, " "), got, code, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("gridmind %s: error %q does not mention %q", strings.Join(args, " "), err, want)
	}
}

// freePortRange finds n consecutive free TCP ports on 127.0.0.1. Another
// process may take one before the caller binds it; that shows as a clear
// bind error, not a hang.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 200; attempt++ {
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := probe.Addr().(*net.TCPAddr).Port
		probe.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		var held []net.Listener
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// newTestHome runs `gridmind init` in a temporary home and makes its
// config loopback-only with ephemeral ports, so tests run side by side.
func newTestHome(t *testing.T, ctx context.Context) (string, gridmind.NodeID) {
	t.Helper()
	home := t.TempDir()
	mustCLI(t, ctx, "init", "--home", home)
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.HTTP = "127.0.0.1:0"
	cfg.LoopbackOnly = true
	cfg.Provider.Enabled = false // no stake moves behind the test's back
	if err := node.WriteConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	key, err := node.LoadKey(home)
	if err != nil {
		t.Fatal(err)
	}
	return home, gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
}

type ledgerFixture struct {
	home  string // the validator node's home; its account holds 1,000,000 GRID
	id    gridmind.NodeID
	other gridmind.NodeID // funded with 50 GRID at genesis
	rpc   string
	app   *app.App
}

// startLedgerNode makes a chain with `gridmind chain init` and runs this
// home's node as its validator in-process, as `gridmind node --validator` would.
func startLedgerNode(t *testing.T, ctx context.Context) *ledgerFixture {
	t.Helper()
	home, id := newTestHome(t, ctx)
	_, other := newTestHome(t, ctx)
	port := freePortRange(t, 2)
	mustCLI(t, ctx, "chain", "init", "--home", home, "--chain-port", fmt.Sprint(port), "--account", string(other)+"=50")
	opts, err := app.Load(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	opts.Config.Chain.Validator = true
	opts.ThroughputGFLOPS = 1
	opts.NoPowerMeter = true
	a, err := app.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := a.Chain.WaitHeight(wait, 1); err != nil {
		t.Fatal(err)
	}
	return &ledgerFixture{home: home, id: id, other: other, rpc: fmt.Sprintf("http://127.0.0.1:%d", port+1), app: a}
}

type accountJSON struct {
	ledger.AccountView
	Height int64 `json:"height"`
}

func balanceJSON(t *testing.T, ctx context.Context, args ...string) accountJSON {
	t.Helper()
	out := mustCLI(t, ctx, append([]string{"wallet", "balance", "--json"}, args...)...)
	var v accountJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("balance --json: %v\n%s", err, out)
	}
	return v
}

func TestWalletAgainstValidator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	f := startLedgerNode(t, ctx)
	grid := gridmind.UnitsPerGRID

	t.Run("address", func(t *testing.T) {
		if got := strings.TrimSpace(mustCLI(t, ctx, "wallet", "address", "--home", f.home)); got != string(f.id) {
			t.Errorf("address = %q, want %q", got, f.id)
		}
	})

	t.Run("balance", func(t *testing.T) {
		// The RPC address comes from the home's own chain (no --rpc, no chain.rpc).
		out := mustCLI(t, ctx, "wallet", "balance", "--home", f.home)
		for _, want := range []string{string(f.id), "1000000 GRID", "reputation", "not registered"} {
			if !strings.Contains(out, want) {
				t.Errorf("balance output lacks %q:\n%s", want, out)
			}
		}
		if v := balanceJSON(t, ctx, "--home", f.home); v.Balance != 1_000_000*grid || !v.Exists || v.Height < 1 {
			t.Errorf("own account = %+v, want 1,000,000 GRID at height ≥ 1", v)
		}
		if v := balanceJSON(t, ctx, string(f.other), "--rpc", f.rpc); v.Balance != 50*grid {
			t.Errorf("other balance = %s, want 50 GRID", v.Balance)
		}
	})

	t.Run("send", func(t *testing.T) {
		out := mustCLI(t, ctx, "wallet", "send", string(f.other), "2.5", "--memo", "thanks", "--home", f.home)
		if !strings.Contains(out, "sent 2.5 GRID to "+string(f.other)) || !strings.Contains(out, "in block") || !strings.Contains(out, "your account: balance") {
			t.Errorf("send output:\n%s", out)
		}
		if v := balanceJSON(t, ctx, string(f.other), "--home", f.home); v.Balance != 52*grid+grid/2 {
			t.Errorf("after send: other holds %s, want 52.5 GRID", v.Balance)
		}
	})

	t.Run("stake and unstake", func(t *testing.T) {
		out := mustCLI(t, ctx, "wallet", "stake", "100", "--home", f.home)
		if !strings.Contains(out, "staked 100 GRID") || !strings.Contains(out, "stake 100 GRID") {
			t.Errorf("stake output:\n%s", out)
		}
		out = mustCLI(t, ctx, "wallet", "unstake", "40", "--home", f.home)
		if !strings.Contains(out, "unstaked 40 GRID") || !strings.Contains(out, "returns to the balance at height") {
			t.Errorf("unstake output:\n%s", out)
		}
		v := balanceJSON(t, ctx, "--home", f.home)
		if v.Stake != 60*grid || v.UnbondingTotal != 40*grid || len(v.Unbonding) != 1 {
			t.Errorf("after stake 100, unstake 40: stake %s, unbonding %s (%d entries), want 60 and 40",
				v.Stake, v.UnbondingTotal, len(v.Unbonding))
		}
	})

	t.Run("history", func(t *testing.T) {
		out := mustCLI(t, ctx, "wallet", "history", "--home", f.home)
		for _, want := range []string{"HEIGHT", "sent", "2.5 GRID", "staked", "unstaked", string(f.other)} {
			if !strings.Contains(out, want) {
				t.Errorf("history lacks %q:\n%s", want, out)
			}
		}
		var entries []map[string]any
		out = mustCLI(t, ctx, "wallet", "history", "--json", "--limit", "1", "--home", f.home)
		if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 {
			t.Errorf("history --limit 1 --json: %d entries, err %v\n%s", len(entries), err, out)
		}
		out = mustCLI(t, ctx, "wallet", "history", string(f.other), "--home", f.home)
		if !strings.Contains(out, "received") {
			t.Errorf("the recipient's history lacks the transfer:\n%s", out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, stranger := newTestHome(t, ctx)
		noKey := t.TempDir()
		other := string(f.other)
		for _, tc := range []struct {
			name string
			code int
			want string
			args []string
		}{
			{"bad amount", 2, `amount "abc"`, []string{"wallet", "send", other, "abc"}},
			{"too many decimals", 2, "six decimals", []string{"wallet", "send", other, "1.0000001"}},
			{"zero amount", 2, "zero", []string{"wallet", "stake", "0"}},
			{"bad address", 2, "node id", []string{"wallet", "send", "12D3KooWnotanaddress", "5"}},
			{"over-spend", 7, "insufficient", []string{"wallet", "send", other, "2000000"}},
			{"unstake more than staked", 7, "insufficient", []string{"wallet", "unstake", "1000"}},
			{"never funded", 3, "never been funded", []string{"wallet", "balance", string(stranger)}},
			{"unknown flag", 2, "unknown flag", []string{"wallet", "send", "--bogus"}},
			{"missing args", 2, "want 2 argument", []string{"wallet", "send", other}},
			{"too many args", 2, "at most 1", []string{"wallet", "balance", other, other}},
			{"bad limit", 2, "--limit", []string{"wallet", "history", "--limit", "0"}},
			{"no validator", 6, "no validator answered", []string{"wallet", "balance", "--rpc", "http://127.0.0.1:1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCLIError(t, ctx, tc.code, tc.want, append(tc.args, "--home", f.home)...)
			})
		}
		t.Run("no key", func(t *testing.T) {
			wantCLIError(t, ctx, 3, "gridmind init", "wallet", "address", "--home", noKey)
			wantCLIError(t, ctx, 3, "gridmind init", "wallet", "send", other, "1", "--home", noKey, "--rpc", f.rpc)
		})
		// A refused transaction leaves the balance as it was.
		if v := balanceJSON(t, ctx, other, "--home", f.home); v.Balance != 52*grid+grid/2 {
			t.Errorf("after refused transactions: other holds %s, want 52.5 GRID", v.Balance)
		}
	})
}

func TestLedgerAddrs(t *testing.T) {
	ctx := context.Background()
	home, _ := newTestHome(t, ctx)
	bare := t.TempDir()
	for _, tc := range []struct {
		name string
		home string
		rpc  []string
		cfg  []string // chain.rpc written to the home's config
		want []string
	}{
		{"default", bare, nil, nil, []string{defaultRPC}},
		{"flag wins", home, []string{"http://a:1", " http://b:2 "}, []string{"http://c:3"}, []string{"http://a:1", "http://b:2"}},
		{"config", home, nil, []string{"http://c:3", "tcp://d:4"}, []string{"http://c:3", "tcp://d:4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg != nil {
				cfg, err := node.LoadConfig(tc.home)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Chain.RPC = tc.cfg
				if err := node.WriteConfig(tc.home, cfg); err != nil {
					t.Fatal(err)
				}
			}
			la := &ledgerAccess{g: &globals{home: tc.home}, rpc: tc.rpc}
			got, err := la.addrs()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("addrs = %v, want %v", got, tc.want)
			}
		})
	}
	// The home's own validator comes first, then the configured ones.
	port := freePortRange(t, 2)
	mustCLI(t, ctx, "chain", "init", "--home", home, "--chain-port", fmt.Sprint(port))
	got, err := (&ledgerAccess{g: &globals{home: home}}).addrs()
	want := []string{fmt.Sprintf("http://127.0.0.1:%d", port+1), "http://c:3", "tcp://d:4"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("with a local chain: addrs = %v, %v; want %v", got, err, want)
	}
	// An empty --rpc is a mistake, not "use the default".
	if _, err := (&ledgerAccess{g: &globals{home: home}, rpc: []string{" "}}).addrs(); gridmind.ExitCode(err) != 2 {
		t.Errorf("empty --rpc: %v, want an invalid-input error", err)
	}
}
