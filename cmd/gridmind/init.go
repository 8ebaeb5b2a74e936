package main

import (
	"fmt"
	"runtime/debug"

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
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node identity (ed25519 key), an API token and a commented config",
		Long: `Create <home>/node.key (mode 0600), <home>/api.token (mode 0600) and
<home>/config.yaml.

The token is what the node's HTTP API asks of anything that spends or
changes state (posting jobs, fetching models, inference paid from the
wallet); the CLI sends it automatically. An existing key is kept unless
--force is given; an existing token and config are never overwritten.
Running init twice is safe.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := node.Init(g.home, force, nil)
			if err != nil {
				return err
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
			if res.ConfigCreated {
				fmt.Fprintf(out, "wrote %s/%s\n", g.home, node.ConfigFile)
			} else {
				fmt.Fprintf(out, "kept existing %s/%s\n", g.home, node.ConfigFile)
			}
			if res.TokenCreated {
				fmt.Fprintf(out, "wrote %s/%s (the API token; keep it private)\n", g.home, node.APITokenFile)
			}
			fmt.Fprintf(out, "next: gridmind node --home %s\n", g.home)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key (the node gets a new identity)")
	return cmd
}
