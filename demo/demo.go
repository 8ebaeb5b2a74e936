package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/node"
)

// Options configure a demo run.
type Options struct {
	Nodes  int
	Seed   int64
	Out    io.Writer
	Logger *slog.Logger
	// KeepRunning leaves the network up until ctx ends.
	KeepRunning bool
}

// Report is what the demo did, for the final summary and for tests.
type Report struct {
	Nodes         int           `json:"nodes"`
	DiscoveryTime time.Duration `json:"discovery_ns"`
	PeersSeen     []int         `json:"peers_seen"` // per node, peers in its table at the end of discovery
	WallTime      time.Duration `json:"wall_ns"`
}

// Run starts the network and tells the story.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Nodes < 2 {
		return nil, fmt.Errorf("demo: --nodes %d: need at least 2", o.Nodes)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	start := time.Now()
	rep := &Report{Nodes: o.Nodes}
	fmt.Fprintf(o.Out, "▶ starting %d gridmind nodes on 127.0.0.1 (libp2p: TCP+QUIC, Noise, yamux; Kademlia DHT; GossipSub)\n", o.Nodes)
	apps, err := startNodes(ctx, o)
	defer func() {
		for _, a := range apps {
			a.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	if err := waitDiscovery(ctx, o, apps, rep); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Out, "\n▶ peer table of node 0 (%s):\n", apps[0].Node.ID().Short())
	ui.PrintPeerTable(o.Out, apps[0].Node.Peers().List(), time.Now())
	rep.WallTime = time.Since(start)
	if o.KeepRunning {
		fmt.Fprintf(o.Out, "\nnetwork left running; node 0 API at http://%s — Ctrl-C to stop\n", apps[0].APIAddr)
		<-ctx.Done()
	}
	return rep, nil
}

func startNodes(ctx context.Context, o Options) ([]*app.App, error) {
	var apps []*app.App
	var bootstrap []string
	for i := 0; i < o.Nodes; i++ {
		cfg := node.DefaultConfig()
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		cfg.LoopbackOnly = true
		cfg.Bootstrap = bootstrap
		cfg.HTTP = "127.0.0.1:0"
		cfg.Heartbeat = node.Duration(time.Second)
		cfg.PeerTimeout = node.Duration(5 * time.Second)
		cfg.Region = "demo"
		a, err := app.Start(ctx, app.Options{
			Key:    node.KeyFromSeedString(fmt.Sprintf("demo-%d-%d", o.Seed, i)),
			Config: cfg,
			Logger: o.Logger,
		})
		if err != nil {
			return apps, fmt.Errorf("demo: starting node %d: %w", i, err)
		}
		apps = append(apps, a)
		if i == 0 {
			bootstrap = a.Node.Addrs()[:1]
		}
	}
	return apps, nil
}

// waitDiscovery shows a progress bar until every node has every other in
// its peer table.
func waitDiscovery(ctx context.Context, o Options, apps []*app.App, rep *Report) error {
	want := len(apps) * (len(apps) - 1)
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	bar := ui.NewProgress(o.Out, "discovering peers", want)
	for {
		have := 0
		for _, a := range apps {
			have += a.Node.Peers().Len()
		}
		bar.Set(have)
		if have >= want {
			bar.Done(fmt.Sprintf("all %d nodes see each other after %.1fs", len(apps), time.Since(start).Seconds()))
			rep.DiscoveryTime = time.Since(start)
			for _, a := range apps {
				rep.PeersSeen = append(rep.PeersSeen, a.Node.Peers().Len())
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("demo: only %d of %d peer links formed within 60s", have, want)
		case <-tick.C:
		}
	}
}
