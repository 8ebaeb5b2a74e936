package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/serve/p2pnet"
)

// startServing sets up edge inference: the local model queue, the libp2p
// inference protocol, the forwarding client with its router, receipts
// paid in batches on the ledger, and the OpenAI-style HTTP handler.
func (a *App) startServing(ctx context.Context, o Options) error {
	log := a.Node.Logger().With("part", "serve")
	a.Local = serve.NewLocal(serve.LocalConfig{Workers: 1, Logger: log})
	a.Models = newModelStore(a)
	srv, err := serve.NewServer(serve.ServerConfig{Key: o.Key, Local: a.Local, Logger: log})
	if err != nil {
		return err
	}
	p2pnet.Serve(ctx, a.Node.Host(), srv)
	if a.Wallet != nil {
		if a.Batcher, err = serve.NewBatcher(serve.BatcherConfig{Submit: a.payReceipts, MaxDelay: 10 * time.Second, Logger: log}); err != nil {
			return err
		}
		go a.Batcher.Run(ctx)
	}
	var dir serve.Directory = &p2pnet.Directory{Host: a.Node.Host(), Lookup: a.replicaLookup, ListModels: a.knownModels}
	if a.Chain != nil {
		// Never route to a server the ledger banned for proven fraud (bans.go).
		bans := &banList{}
		go bans.run(ctx, a.Chain.Banned, 30*time.Second, log)
		dir = serve.Screened{Directory: dir, Banned: bans.has}
	}
	cc := serve.ClientConfig{Key: o.Key, Dialer: p2pnet.Dialer{Host: a.Node.Host()}, Directory: dir, Seed: uint64(o.Seed), Logger: log}
	if a.Batcher != nil {
		cc.OnReceipt = func(r serve.Receipt) {
			if err := a.Batcher.Add(r); err != nil {
				log.Warn("receipt not queued for payment", "err", err)
			}
		}
	}
	if a.Chain != nil {
		// Bought completions are audited at the rate (inferaudit.go).
		cc.OnServed = a.keepForAudit
		a.startInferenceAudits(ctx)
	}
	if a.Infer, err = serve.NewClient(cc); err != nil {
		return err
	}
	return nil
}

// announce re-advertises a served model in the DHT until ctx ends: provider
// records expire, and a node that joined later must still find it.
func (a *App) announce(ctx context.Context, hash string) {
	go func() {
		for {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := p2pnet.Announce(actx, a.Node.Host(), hash); err != nil && ctx.Err() == nil {
				a.Node.Logger().Debug("model announce failed", "model", hash[:12], "err", err)
			}
			cancel()
			select {
			case <-ctx.Done():
				return
			case <-time.After(30 * time.Second):
			}
		}
	}()
}

// replicaLookup tells the router a replica's queue (from its heartbeat)
// and reputation (neutral when unknown).
func (a *App) replicaLookup(id gridmind.NodeID, model string) (int, uint32, bool) {
	p, ok := a.Node.Peers().Get(id)
	if !ok {
		return 0, 0, false
	}
	queue := 0
	for _, s := range p.Heartbeat.Serving {
		if s.Hash == model {
			queue = s.QueueLength
		}
	}
	return queue, p2pnet.NeutralReputation, true
}

// knownModels lists models served anywhere, from heartbeats.
func (a *App) knownModels(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, m := range a.Local.Models() {
		seen[m] = true
		out = append(out, m)
	}
	for _, p := range a.Node.Peers().List() {
		for _, s := range p.Heartbeat.Serving {
			if !seen[s.Hash] {
				seen[s.Hash] = true
				out = append(out, s.Hash)
			}
		}
	}
	return out, nil
}

// InferenceTokensPerUnit is how many tokens (in plus out) of inference one
// work unit of the server's price buys.
const InferenceTokensPerUnit = 100

// payReceipts pays a batch of doubly signed receipts: one transfer per
// server, at the server's registered price.
func (a *App) payReceipts(ctx context.Context, b serve.Batch) error {
	price := func(ctx context.Context, server gridmind.NodeID) gridmind.Amount {
		if p, err := a.Chain.Provider(ctx, server); err == nil && p.Offer.PricePerUnit > 0 {
			return p.Offer.PricePerUnit
		}
		return 1
	}
	send := func(ctx context.Context, to gridmind.NodeID, amount gridmind.Amount, memo string) error {
		_, err := a.Wallet.Send(ctx, to, amount, memo)
		return err
	}
	return a.payBatch(ctx, b, price, send)
}

// maxReceiptTokens bounds what one receipt may claim: a prompt and a
// completion each fit in the wire protocol's limits.
const maxReceiptTokens = serve.MaxPromptBytes + serve.MaxWireTokens

// payBatch is payReceipts with the ledger's price lookup and transfer
// passed in. Receipts whose token counts are impossible (negative, or
// above what one request can carry) are refused, not paid.
//
// A batch that fails halfway is retried whole by the batcher, so receipts
// already paid are remembered and skipped: no server is paid twice.
func (a *App) payBatch(ctx context.Context, b serve.Batch,
	price func(context.Context, gridmind.NodeID) gridmind.Amount,
	send func(context.Context, gridmind.NodeID, gridmind.Amount, string) error) error {
	a.paidMu.Lock()
	defer a.paidMu.Unlock()
	if a.paid == nil {
		a.paid = map[string]bool{}
	}
	owed := map[gridmind.NodeID]int64{}
	byServer := map[gridmind.NodeID][]string{}
	var servers []gridmind.NodeID
	for _, r := range b.Receipts {
		key := string(r.Server) + "/" + r.RequestID
		if a.paid[key] {
			continue
		}
		if r.TokensIn < 0 || r.TokensOut < 0 || r.TokensIn+r.TokensOut > maxReceiptTokens {
			a.logger().Warn("inference receipt with impossible token counts not paid", "server", r.Server.Short(), "request", r.RequestID, "in", r.TokensIn, "out", r.TokensOut)
			a.paid[key] = true // never retried
			continue
		}
		byServer[r.Server] = append(byServer[r.Server], key)
		if _, ok := owed[r.Server]; !ok {
			servers = append(servers, r.Server)
		}
		owed[r.Server] += r.TokensIn + r.TokensOut
	}
	for _, s := range servers {
		amount, ok := inferenceCost(owed[s], price(ctx, s))
		if !ok {
			return fmt.Errorf("paying %s: %d tokens at its price overflow", s.Short(), owed[s])
		}
		memo := fmt.Sprintf("inference: %d receipts", len(byServer[s]))
		if err := send(ctx, s, amount, memo); err != nil {
			return fmt.Errorf("paying %s: %w", s.Short(), err)
		}
		for _, key := range byServer[s] {
			a.paid[key] = true
		}
	}
	if len(a.paid) > 200_000 { // bound memory; a retry never spans this many receipts
		a.paid = map[string]bool{}
	}
	return nil
}

func (a *App) logger() *slog.Logger {
	if a.Node == nil {
		return slog.Default()
	}
	return a.Node.Logger()
}

// inferenceCost is what tokens cost at price (per InferenceTokensPerUnit
// tokens), at least 1, or false on overflow.
func inferenceCost(tokens int64, price gridmind.Amount) (gridmind.Amount, bool) {
	if tokens <= 0 {
		return 1, true
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(price))
	if hi != 0 {
		return 0, false
	}
	return max(1, gridmind.Amount(lo/InferenceTokensPerUnit)), true
}
