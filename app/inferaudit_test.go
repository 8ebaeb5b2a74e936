package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/serve/p2pnet"
	"github.com/gridmind/gridmind/verify"
)

// TestInferenceAuditsOnTheNetwork runs nodes on a local network (CometBFT
// validator in process, libp2p on loopback, GoMLX). One provider serves a
// model; another answers under the same model hash from other weights.
// The requester buys completions from both and hands every one (rate
// forced to 100%) to its receipt's committee, drawn over RPC from the
// block after the first block later than the receipt. The committee's
// first member fetches the model by its hash and re-runs the request: the
// honest server's answers are cleared; the cheater's do not match, the
// other members re-run it too, and the proof on the ledger bans it.
func TestInferenceAuditsOnTheNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("a local network with GoMLX models takes about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The audit window is the dispute window: long enough to fetch the
	// model and re-run it even under the race detector.
	opts := localnet.Options{Providers: 7, Seed: 3, ProviderStake: 20 * gridmind.UnitsPerGRID, SettleDelayBlocks: 150}
	if os.Getenv("GRIDMIND_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	net, err := localnet.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	if err := net.WaitReady(ctx, nil); err != nil {
		t.Fatal(err)
	}
	honest, cheat := net.Providers[0], net.Providers[1]
	cfg := gomlx.DefaultConfig(gomlx.MLP)
	cfg.Hidden, cfg.EmbedDim, cfg.Context = 32, 8, 8
	model, err := gomlx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := honest.Models.Add(ctx, model)
	if err != nil {
		t.Fatal(err)
	}
	cheapCfg := cfg
	cheapCfg.Seed = 99
	cheap, err := gomlx.New(cheapCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cheat.Local.Add(hash, cheap); err != nil { // other weights under the model's name
		t.Fatal(err)
	}
	if err := p2pnet.Announce(ctx, cheat.Node.Host(), hash); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var events []app.InferenceAuditEvent
	finished := false // audits may still report while the network closes
	defer func() { mu.Lock(); finished = true; mu.Unlock() }()
	proven := make(chan app.InferenceAuditEvent, 1)
	honestCleared := make(chan struct{}, 1)
	for _, n := range net.All() {
		n.OnInferenceAudit(func(e app.InferenceAuditEvent) {
			mu.Lock()
			defer mu.Unlock()
			if finished {
				return
			}
			events = append(events, e)
			t.Logf("inference audit %s: request %s server %s by %s (%d agreeing) %s", e.Kind, e.Request, e.Server.Short(), e.Auditor.Short(), e.Agreeing, e.Text)
			if e.Kind == "fraud-proven" {
				select {
				case proven <- e:
				default:
				}
			}
			if e.Kind == "cleared" && e.Server == honest.Node.ID() {
				select {
				case honestCleared <- struct{}{}:
				default:
				}
			}
		})
	}
	buyer := net.Requester
	buyer.SetInferenceAuditRate(verify.PPM)
	// Concurrent requests, so that queues spread them over both servers.
	served := map[gridmind.NodeID]int{}
	for batch := 0; batch < 20 && (served[honest.Node.ID()] == 0 || served[cheat.Node.ID()] == 0); batch++ {
		var wg sync.WaitGroup
		var smu sync.Mutex
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := serve.Request{ID: fmt.Sprintf("audited-%d-%d", batch, i), Model: hash, Prompt: "func main() {", MaxTokens: 12, Temperature: 0.9, TopP: 0.95, Seed: int64(10*batch + i)}
				comp, err := buyer.Infer.Complete(ctx, r, nil)
				if err != nil {
					t.Errorf("request %s: %v", r.ID, err)
					return
				}
				if comp.Receipt != nil {
					smu.Lock()
					served[comp.Receipt.Server]++
					smu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if served[honest.Node.ID()] == 0 || served[cheat.Node.ID()] == 0 {
		t.Fatalf("the router never chose one of the servers: %v", served)
	}
	var e app.InferenceAuditEvent
	select {
	case e = <-proven:
	case <-ctx.Done():
		t.Fatal("no inference fraud proven before the deadline")
	}
	if e.Server != cheat.Node.ID() || e.Agreeing < 3 || e.Height == 0 || e.Text != verify.Fraud.String() {
		t.Fatalf("fraud proven against %s with %d agreeing at height %d (%q); want the cheater %s", e.Server.Short(), e.Agreeing, e.Height, e.Text, cheat.Node.ID().Short())
	}
	banned, err := buyer.Chain.Banned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(banned) != 1 || banned[0].Node != cheat.Node.ID() {
		t.Errorf("banned %+v, want the cheater only", banned)
	}
	select {
	case <-honestCleared:
	case <-ctx.Done():
		t.Fatal("no honest receipt was audited and cleared before the deadline")
	}
	// No honest receipt was accused (but by the cheater itself, whose
	// replica is not the model's, when it sits first on the committee).
	mu.Lock()
	seen := slices.Clone(events)
	mu.Unlock()
	for _, e := range seen {
		if e.Server == honest.Node.ID() && e.Auditor != cheat.Node.ID() && e.Kind != "cleared" {
			t.Errorf("an honest receipt: %+v", e)
		}
	}
}
