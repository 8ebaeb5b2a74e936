package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind/node"
)

func versionString() string {
	v := node.Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				v += " (" + s.Value[:7] + ")"
			}
		}
	}
	return v
}

func newInitCmd(g *globals) *cobra.Command {
	var (
		force     bool
		join, rpc []string
		listen    []string
		httpAddr  string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node identity (ed25519 key), an API token and a commented config",
		Long: `Create <home>/node.key (mode 0600), <home>/api.token (mode 0600) and
<home>/config.yaml.

The token is what the node's HTTP API asks of anything that spends or
changes state (posting jobs, fetching models, inference paid from the
wallet); the CLI sends it automatically. An existing key is kept unless
--force is given; an existing token and config are never overwritten.
Running init twice is safe.

To join an existing network, name one of its nodes with --join (a full
multiaddr ending in /p2p/<peer id>, as its "gridmind status" prints) and a
validator's RPC with --rpc: the config then bootstraps to that peer and
uses that ledger. On an existing home, --join/--rpc/--listen/--http update
config.yaml (rewriting it).`,
		Example: `  gridmind init
  gridmind init --home ~/.gridmind2 --join /ip4/127.0.0.1/tcp/27000/p2p/12D3KooW... \
      --rpc http://127.0.0.1:26757 --listen /ip4/127.0.0.1/tcp/27100 --http 127.0.0.1:28100`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, j := range join {
				if err := checkJoinAddr("--join", j); err != nil {
					return err
				}
			}
			for _, r := range rpc {
				if err := checkRPCURL("--rpc", r); err != nil {
					return err
				}
			}
			for _, l := range listen {
				if err := checkListenAddr("--listen", l); err != nil {
					return err
				}
			}
			joining := len(join) > 0 || len(rpc) > 0 || len(listen) > 0 || cmd.Flags().Changed("http")
			apply := func(c *node.Config) {
				if len(join) > 0 {
					c.Bootstrap = join
				}
				if len(rpc) > 0 {
					c.Chain.RPC = rpc
				}
				if len(listen) > 0 {
					c.Listen = listen
				}
				if cmd.Flags().Changed("http") {
					c.HTTP = httpAddr
				}
			}
			var cfg *node.Config
			if joining {
				c := node.DefaultConfig()
				apply(&c)
				if err := c.Validate(); err != nil {
					return err
				}
				cfg = &c
			}
			res, err := node.Init(g.home, force, cfg)
			if err != nil {
				return err
			}
			updated := false
			if joining && !res.ConfigCreated {
				c, err := node.LoadConfig(g.home)
				if err != nil {
					return err
				}
				apply(&c)
				if err := c.Validate(); err != nil {
					return err
				}
				if err := node.WriteConfig(g.home, c); err != nil {
					return err
				}
				updated = true
			}
			out := cmd.OutOrStdout()
			switch {
			case res.KeyCreated && force:
				fmt.Fprintf(out, "replaced the key: new identity %s\n", res.ID)
			case res.KeyCreated:
				fmt.Fprintf(out, "created identity %s\n", res.ID)
			default:
				fmt.Fprintf(out, "kept existing identity %s (use --force to replace the key)\n", res.ID)
			}
			if updated {
				fmt.Fprintf(out, "updated %s/%s\n", g.home, node.ConfigFile)
			} else if res.ConfigCreated {
				fmt.Fprintf(out, "wrote %s/%s\n", g.home, node.ConfigFile)
			} else {
				fmt.Fprintf(out, "kept existing %s/%s\n", g.home, node.ConfigFile)
			}
			if res.TokenCreated {
				fmt.Fprintf(out, "wrote %s/%s (the API token; keep it private)\n", g.home, node.APITokenFile)
			}
			if len(join) > 0 {
				fmt.Fprintf(out, "bootstrap %s\n", strings.Join(join, ", "))
			}
			if len(rpc) > 0 {
				fmt.Fprintf(out, "ledger    %s\n", strings.Join(rpc, ", "))
			} else if len(join) > 0 {
				fmt.Fprintf(out, "note: no --rpc given, so this node has no ledger (it cannot pay or be paid); add one with `gridmind init --home %s --rpc http://HOST:PORT`\n", g.home)
			}
			fmt.Fprintf(out, "next: gridmind node --home %s\n", g.home)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key (the node gets a new identity)")
	cmd.Flags().StringSliceVar(&join, "join", nil, "bootstrap to this peer: a full multiaddr ending in /p2p/<peer id> (repeatable)")
	cmd.Flags().StringSliceVar(&rpc, "rpc", nil, "use this ledger: a validator's RPC URL, http://HOST:PORT (repeatable, tried in order)")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "libp2p listen multiaddr(s) (default /ip4/0.0.0.0/tcp/4201 and its QUIC twin)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP API address (default 127.0.0.1:7070)")
	return cmd
}
