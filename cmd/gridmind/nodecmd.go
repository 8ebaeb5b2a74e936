package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/node"
)

func newNodeCmd(g *globals) *cobra.Command {
	var (
		httpAddr  string
		bootstrap []string
		listen    []string
		rpc       []string
		validator bool
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a gridmind node until interrupted (SIGINT/SIGTERM)",
		Long: `Run a node: a libp2p host (TCP+QUIC, Noise, yamux), a Kademlia DHT and
GossipSub. It announces signed heartbeats (hardware, measured throughput,
price, energy), keeps a peer table and serves its API and /metrics on the
configured HTTP address. Flags override the config file.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := app.Load(g.home, slog.Default())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("http") {
				opts.Config.HTTP = httpAddr
			}
			for _, b := range bootstrap {
				if err := checkJoinAddr("--bootstrap", b); err != nil {
					return err
				}
			}
			for _, l := range listen {
				if err := checkListenAddr("--listen", l); err != nil {
					return err
				}
			}
			for _, r := range rpc {
				if err := checkRPCURL("--rpc", r); err != nil {
					return err
				}
			}
			if len(listen) > 0 {
				opts.Config.Listen = listen
			}
			if len(rpc) > 0 {
				opts.Config.Chain.RPC = rpc
			}
			if len(bootstrap) > 0 {
				opts.Config.Bootstrap = append(opts.Config.Bootstrap, bootstrap...)
			}
			if validator {
				opts.Config.Chain.Validator = true
			}
			if err := opts.Config.Validate(); err != nil {
				return err
			}
			node.TuneRuntime() // a smaller idle heap (node/memory.go)
			a, err := app.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			defer a.Close()
			// Started: most of the binary that start-up mapped is never run
			// again (node/pages_linux.go).
			start := time.Now()
			if released, err := node.ReleaseStartupPages(); err != nil {
				slog.Warn("cannot release the start-up pages of the binary", "err", err)
			} else if released > 0 {
				slog.Info("released the start-up pages of the binary", "MiB", released>>20, "took", time.Since(start))
			}
			if a.APIAddr != "" {
				if err := node.WriteAPIAddr(g.home, a.APIAddr); err != nil {
					slog.Warn("cannot record the API address; `gridmind status` will look at config.yaml's http", "err", err)
				} else {
					defer node.RemoveAPIAddr(g.home)
				}
			} else {
				node.RemoveAPIAddr(g.home) // a stale record would point status at another node
			}
			slog.Info("node started", "id", a.Node.ID(), "addrs", a.Node.Addrs(), "api", a.APIAddr)
			fmt.Fprintf(cmd.OutOrStdout(), "node %s\napi  http://%s\n", a.Node.ID(), a.APIAddr)
			for _, ad := range a.Node.Addrs() {
				fmt.Fprintf(cmd.OutOrStdout(), "addr %s\n", ad)
			}
			<-cmd.Context().Done()
			slog.Info("shutting down")
			if err := a.Close(); err != nil {
				return gridmind.E(gridmind.KindInternal, "node", "shutdown: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP API address (overrides config; \"\" disables)")
	cmd.Flags().StringSliceVar(&bootstrap, "bootstrap", nil, "extra bootstrap multiaddr(s) ending in /p2p/<id>")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddr(s), replacing config.yaml's listen (e.g. /ip4/0.0.0.0/tcp/4202)")
	cmd.Flags().StringSliceVar(&rpc, "rpc", nil, "ledger validator RPC URL(s), replacing config.yaml's chain.rpc (e.g. http://127.0.0.1:26757)")
	cmd.Flags().BoolVar(&validator, "validator", false, "run a ledger validator in this process")
	return cmd
}
