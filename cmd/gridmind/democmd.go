package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	o := demo.Defaults()
	var results string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole gridmind story on this machine with real components",
		Long: `Run the whole story in one process with real components: a CometBFT
validator, a requester and provider nodes (libp2p hosts on 127.0.0.1) with
real energy traces; a training job placed by price, reputation and clean
energy; DiLoCo training with GoMLX, a worker killed mid-run and a standby
joining; every round settled from escrow on the ledger; the trained model
served at the edge; and a final report written as JSON and Markdown.

Ctrl-C stops everything at any moment.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			if g.logLevel == "debug" {
				o.Logger = slog.Default() // the nodes' own logs, on stderr
			}
			o.ResultsDir = results
			_, err := demo.Run(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "provider nodes (2..32)")
	f.IntVar(&o.Workers, "workers", o.Workers, "active training workers (one more provider is placed on standby)")
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "DiLoCo outer rounds")
	f.IntVar(&o.InnerSteps, "inner-steps", o.InnerSteps, "inner AdamW steps per round (H)")
	f.StringVar(&o.Model, "model", o.Model, "model: mlp (fast on CPU) or transformer")
	f.Int64Var(&o.Seed, "seed", o.Seed, "seed for identities, data, weights and placement")
	f.BoolVar(&o.NoCrash, "no-crash", false, "do not kill a worker mid-run")
	f.BoolVar(&o.KeepRunning, "keep-running", false, "leave the network up (with HTTP APIs) until Ctrl-C")
	f.StringVar(&results, "results", "", "folder for report.json and report.md (default ./results/demo-<time>; - for none)")
	return cmd
}
