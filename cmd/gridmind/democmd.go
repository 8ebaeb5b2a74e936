package main

import (
	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/demo"
)

func newDemoCmd(g *globals) *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole gridmind story on this machine with real components",
		Long: `Start a real local gridmind network in this process — libp2p nodes on
127.0.0.1 — and show the nodes finding each other.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Nodes < 2 || o.Nodes > 64 {
				return gridmind.E(gridmind.KindInvalid, "demo", "--nodes %d: want 2..64", o.Nodes)
			}
			o.Out = cmd.OutOrStdout()
			_, err := demo.Run(cmd.Context(), o)
			return err
		},
	}
	cmd.Flags().IntVar(&o.Nodes, "nodes", 8, "number of provider nodes")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "seed for identities and everything random")
	cmd.Flags().BoolVar(&o.KeepRunning, "keep-running", false, "leave the network up until Ctrl-C")
	return cmd
}
