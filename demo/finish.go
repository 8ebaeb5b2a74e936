package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/serve"
)

// serveAndAsk makes sure the trained model is served by the workers that
// trained it and by two nodes that fetch it by hash, then sends the
// prompts through the requester's router.
func serveAndAsk(ctx context.Context, o Options, net *localnet.Net, names map[gridmind.NodeID]string, results []jobs.RoundResult, rep *Report) error {
	out := o.Out
	if len(results) == 0 {
		return errNoModel
	}
	last := results[len(results)-1]
	hash := last.ThetaHash
	rep.ModelHash = hash
	// Each worker adds the model once its own run has ended; wait for all
	// of the last round's participants (or, after a while, for any).
	var holders []string
	start := time.Now()
	for {
		holders = holders[:0]
		for _, p := range net.Providers {
			if p != nil && p.Models.Has(hash) {
				holders = append(holders, names[p.Node.ID()])
			}
		}
		waited := time.Since(start)
		if len(holders) >= len(last.Participants) || (len(holders) > 0 && waited > 10*time.Second) || waited > 30*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(holders) == 0 {
		return fmt.Errorf("%w: no worker holds model %s", errNoModel, hash[:12])
	}
	fmt.Fprintf(out, "  model %s… served by the workers that trained it: %v\n", hash[:16], holders)
	// Two providers that did not train it load it from peers by hash.
	fetched := 0
	for _, p := range net.Providers {
		if p == nil || p.Models.Has(hash) || fetched == 2 {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		err := p.Models.Fetch(fctx, hash)
		cancel()
		if err != nil {
			fmt.Fprintf(out, "  ! %s could not fetch the model: %v\n", names[p.Node.ID()], err)
			continue
		}
		fetched++
		fmt.Fprintf(out, "  %s fetched the checkpoint through a DHT provider record, verified its hash and serves it (%.0f ms)\n", names[p.Node.ID()], float64(time.Since(start).Microseconds())/1000)
	}
	fmt.Fprintf(out, "  requests from the requester node go through the router (RTT, queue, errors, reputation; hedged past the p95):\n")
	client := net.Requester.Infer
	for i, prompt := range o.Prompts {
		req := serve.Request{ID: fmt.Sprintf("demo-%d-%d", o.Seed, i), Model: hash, Prompt: prompt, MaxTokens: 48, Temperature: 0.7, TopP: 0.95, Seed: o.Seed + int64(i)}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		c, err := client.Complete(rctx, req, nil)
		cancel()
		ir := InferenceReport{Prompt: prompt, Latency: time.Since(start)}
		if err != nil {
			ir.Error = err.Error()
			fmt.Fprintf(out, "  ! %q: %v\n", prompt, err)
		} else {
			ir.Completion, ir.Attempts = c.Text, c.Attempts
			ir.Server = names[c.Server]
			fmt.Fprintf(out, "  [%s, %d ms] %q → %q\n", ir.Server, ir.Latency.Milliseconds(), prompt, c.Text)
		}
		rep.Inference = append(rep.Inference, ir)
	}
	// Pay the receipts now rather than at the next batch tick.
	if b := net.Requester.Batcher; b != nil {
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := b.Flush(fctx); err != nil {
			fmt.Fprintf(out, "  ! paying inference receipts: %v\n", err)
		} else {
			fmt.Fprintf(out, "  inference receipts (signed by server and client) paid in one batch on the ledger\n")
		}
		cancel()
	}
	return nil
}

// finalReport reads the ledger's final state, prints the summary and
// writes the results folder.
func finalReport(ctx context.Context, o Options, net *localnet.Net, names map[gridmind.NodeID]string, rep *Report, start time.Time) error {
	c := net.Requester.Chain
	for i := range rep.Nodes {
		n := &rep.Nodes[i]
		acct, err := c.Account(ctx, n.ID)
		if err != nil {
			return err
		}
		n.BalanceAfter = acct.Balance
		n.ReputationAfter = app.ReputationScore(acct.Reputation, 0).Total
	}
	sup, err := c.Supply(ctx)
	if err != nil {
		return err
	}
	rep.Supply = SupplyCheck{Holds: sup.Invariant, Total: sup.Total, Expected: sup.Expected, Height: sup.Height}
	rep.WallTime = time.Since(start)
	section(o.Out, "7", "report")
	fmt.Fprint(o.Out, rep.Text())
	dir, err := writeResults(o, rep)
	if err != nil {
		return err
	}
	if dir != "" {
		fmt.Fprintf(o.Out, "\n  report written to %s (report.json, report.md)\n", dir)
	}
	return nil
}
