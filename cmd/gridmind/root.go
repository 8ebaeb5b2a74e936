package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
)

type globals struct {
	home      string
	logLevel  string
	logFormat string
}

func defaultHome() string {
	if h := os.Getenv("GRIDMIND_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".gridmind")
	}
	return ".gridmind"
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "gridmind",
		Short: "A decentralized AI compute network: join, trade, train, serve",
		Long: `gridmind turns scattered machines into one AI compute network.

Providers run 'gridmind node' to join a libp2p network, advertise hardware,
price and energy, earn tokens on a CometBFT ledger, train models together
with DiLoCo and serve them at the edge.

Start with:  gridmind demo        (the whole story on this machine)
Then:        gridmind init && gridmind node`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return setupLogging(g)
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "node home directory (env GRIDMIND_HOME)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(flagError)
	root.Version = versionString()
	root.SetVersionTemplate("gridmind {{.Version}}\n") // what `gridmind version` prints
	root.AddCommand(
		newInitCmd(g),
		newNodeCmd(g),
		newStatusCmd(g),
		newPeersCmd(g),
		newDevnetCmd(g),
		newDemoCmd(g),
		newVersionCmd(),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(g))
	}
	finishTree(root)
	return root
}

// extraCommands lets each file register its command tree.
var extraCommands []func(*globals) *cobra.Command

func setupLogging(g *globals) error {
	var level slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return gridmind.E(gridmind.KindInvalid, "flags", "--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return gridmind.E(gridmind.KindInvalid, "flags", "--log-format %q: want text or json", g.logFormat)
	}
	return nil
}

// exactArgs is cobra.ExactArgs with an error of kind invalid.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return gridmind.E(gridmind.KindInvalid, cmd.CommandPath(), "want %d argument(s), got %d (see --help)", n, len(args))
		}
		return nil
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "gridmind", versionString())
		},
	}
}
