package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/serve"
)

// startLedgerApp starts a node that runs its own single-validator ledger
// (chain.validator), with its account and the others funded at genesis,
// without a provider registration of its own: the money paths below are
// driven by hand against the real ledger.
func startLedgerApp(t *testing.T, funded map[gridmind.NodeID]gridmind.Amount) *App {
	t.Helper()
	home := t.TempDir()
	if _, err := node.Init(home, false, nil); err != nil {
		t.Fatal(err)
	}
	o, err := Load(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	self := gridmind.NodeIDFromPublicKey(o.Key.Public().(ed25519.PublicKey))
	ports, err := netutil.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	accounts := []ledger.GenesisAccount{{Address: self, Balance: 100 * gridmind.UnitsPerGRID}}
	for id, amount := range funded {
		accounts = append(accounts, ledger.GenesisAccount{Address: id, Balance: amount})
	}
	net, err := chain.InitGenesis(chain.GenesisOptions{
		ChainID: "gridmind-app-money", Dir: t.TempDir(), Accounts: accounts,
		Validators: []chain.ValidatorSpec{{Key: o.Key, P2PPort: ports[0], RPCPort: ports[1]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Config.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	o.Config.LoopbackOnly = true
	o.Config.HTTP = "127.0.0.1:0"
	o.Config.Provider.Enabled = false
	o.Config.Chain = node.ChainConfig{Validator: true, Home: net.Validators[0].Home}
	o.ThroughputGFLOPS = 1
	o.NoPowerMeter = true
	a, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func moneyKey(name string) (ed25519.PrivateKey, gridmind.NodeID) {
	k := node.KeyFromSeedString("app-money/" + name)
	return k, gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
}

func balance(t *testing.T, ctx context.Context, a *App, id gridmind.NodeID) ledger.AccountView {
	t.Helper()
	v, err := a.Chain.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLedgerMoneyPaths drives the node's own money paths against a real
// ledger: inference receipts paid at each server's registered price (1
// for an unregistered server) and never twice, the provider stake topped
// up only by what is missing, and a job that cannot be placed escrowing
// nothing.
func TestLedgerMoneyPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator")
	}
	serverKey, server := moneyKey("server")
	_, stranger := moneyKey("stranger")
	a := startLedgerApp(t, map[gridmind.NodeID]gridmind.Amount{server: gridmind.UnitsPerGRID})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	self := a.Node.ID()
	fee := ledgerParams(t, ctx, a).TxFee
	// A validator tells the network where its ledger answers.
	if got, want := a.Node.Heartbeat().RPC, a.Validator.RPCAddr(); got != want || want == "" {
		t.Errorf("heartbeat rpc %q, want the validator's %q", got, want)
	}

	// The server registers its offer at 20 µGRID per unit.
	sw := chain.NewWallet(a.Chain, serverKey)
	if _, err := sw.Submit(ctx, &ledger.RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 20, ThroughputMFLOPS: 1000}}); err != nil {
		t.Fatalf("registering the server: %v", err)
	}

	// Receipts: 250 tokens at 20 per 100 tokens is 50 µGRID; 30 tokens
	// from an unregistered node, at price 1, round down to the minimum 1.
	before := map[gridmind.NodeID]gridmind.Amount{self: balance(t, ctx, a, self).Balance, server: balance(t, ctx, a, server).Balance, stranger: 0}
	batch := serve.Batch{Receipts: []serve.Receipt{
		{Server: server, RequestID: "r1", TokensIn: 100, TokensOut: 50},
		{Server: server, RequestID: "r2", TokensIn: 60, TokensOut: 40},
		{Server: stranger, RequestID: "r3", TokensIn: 10, TokensOut: 20},
	}}
	if err := a.payReceipts(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := a.payReceipts(ctx, batch); err != nil { // the batcher's retry
		t.Fatal(err)
	}
	after := func(id gridmind.NodeID) gridmind.Amount { return balance(t, ctx, a, id).Balance }
	if got, want := after(server)-before[server], gridmind.Amount(50); got != want {
		t.Errorf("server paid %d µGRID, want %d (250 tokens at its price 20, once)", got, want)
	}
	if got := after(stranger); got != 1 {
		t.Errorf("unregistered server paid %d µGRID, want 1", got)
	}
	if got, want := before[self]-after(self), 51+2*fee; got != want {
		t.Errorf("payer spent %d µGRID, want %d (two transfers and their fees)", got, want)
	}

	// Stake: the registration puts up what is missing, and no more.
	offer := gridmind.Offer{PricePerUnit: 5, ThroughputMFLOPS: 1000}
	if err := a.register(ctx, offer, 3*gridmind.UnitsPerGRID); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, ctx, a, self).Stake; got != 3*gridmind.UnitsPerGRID {
		t.Fatalf("stake %d after registering with 3 GRID", got)
	}
	spent := after(self)
	if err := a.register(ctx, offer, 3*gridmind.UnitsPerGRID); err != nil {
		t.Fatal(err)
	}
	v := balance(t, ctx, a, self)
	if v.Stake != 3*gridmind.UnitsPerGRID || spent-v.Balance != fee {
		t.Errorf("registering again: stake %d, spent %d; want the same stake and only the registration's fee", v.Stake, spent-v.Balance)
	}
	if err := a.register(ctx, offer, 5*gridmind.UnitsPerGRID); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, ctx, a, self).Stake; got != 5*gridmind.UnitsPerGRID {
		t.Errorf("stake %d after topping up to 5 GRID", got)
	}

	// Posting a job needs the token; with it, a job nobody can run (no
	// provider heartbeats) is refused and escrows nothing.
	base := "http://" + a.APIAddr
	js := map[string]string{"Content-Type": "application/json"}
	spec := `{"spec":{"name":"nobody-runs-this","model":"mlp","workers":2,"rounds":2,"inner_steps":10,"budget":1000000}}`
	if got, _ := (abuse{"job without token", "POST", "/api/v1/jobs", spec, js, 0}).run(t, base); got != http.StatusUnauthorized {
		t.Errorf("job without token: %d, want 401", got)
	}
	if got, _ := (abuse{"cancel without token", "POST", "/api/v1/jobs/" + strings.Repeat("0", 64) + "/cancel", "", js, 0}).run(t, base); got != http.StatusUnauthorized {
		t.Errorf("cancel without token: %d, want 401", got)
	}
	held := balance(t, ctx, a, self)
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + a.APIToken}
	got, body := (abuse{"unplaceable job", "POST", "/api/v1/jobs", spec, auth, 0}).run(t, base)
	if e, _ := body["error"].(map[string]any); got < 400 || !strings.Contains(fmt.Sprint(e["message"]), "placing") {
		t.Errorf("a job with no provider to run it: %d %v, want refused by placement", got, body)
	}
	// The refusal says why: the node posting the job is not a candidate
	// for it, although it is a provider (issue 15: a 4-node devnet has 3).
	e, _ := body["error"].(map[string]any)
	for _, want := range []string{
		"2 workers + 0 standby = 2 providers",
		"this node (" + string(self) + ") posts the job and is never one of its own providers, although it is a registered provider",
		"other providers are registered on the ledger, 0 of them online: start provider nodes",
	} {
		if !strings.Contains(fmt.Sprint(e["message"]), want) {
			t.Errorf("placement error %q does not say %q", e["message"], want)
		}
	}
	if v := balance(t, ctx, a, self); v.Balance != held.Balance || v.Nonce != held.Nonce {
		t.Errorf("refused job moved money: balance %d → %d, nonce %d → %d", held.Balance, v.Balance, held.Nonce, v.Nonce)
	}
}

func ledgerParams(t *testing.T, ctx context.Context, a *App) ledger.Params {
	t.Helper()
	p, err := a.Chain.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
