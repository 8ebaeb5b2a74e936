package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/node"
)

// apiFlag adds --api and resolves it: the flag, else the home's config.
// The client carries the home's API token (see apiTokenFor).
func apiFlag(cmd *cobra.Command, g *globals) func() (*api.Client, error) {
	var addr string
	cmd.Flags().StringVar(&addr, "api", "", "node API address (default: the running node's, from <home>/api.addr, else http from <home>/config.yaml)")
	return func() (*api.Client, error) {
		if addr == "" {
			addr = node.LoadAPIAddr(g.home)
		}
		if addr == "" {
			cfg, err := node.LoadConfig(g.home)
			if err != nil {
				return nil, fmt.Errorf("%w (or pass --api 127.0.0.1:PORT)", err)
			}
			addr = cfg.HTTP
		}
		token, err := apiTokenFor(g.home)
		if err != nil {
			return nil, err
		}
		c := api.NewClient(addr)
		c.Token = token
		return c, nil
	}
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running node's status",
		Args:  exactArgs(0),
	}
	client := apiFlag(cmd, g)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print raw JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		st, err := c.Status(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), st)
		}
		printStatus(cmd.OutOrStdout(), st)
		return nil
	}
	return cmd
}

func printStatus(out io.Writer, st node.Status) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	hb := st.Heartbeat
	for _, w := range st.Warnings {
		fmt.Fprintf(tw, "WARNING\t%s\n", w)
	}
	fmt.Fprintf(tw, "id\t%s\n", st.ID)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "uptime\t%s\n", st.Uptime)
	fmt.Fprintf(tw, "peers\t%d in table, %d connected\n", st.Peers, st.Connected)
	fmt.Fprintf(tw, "hardware\t%d cores, %s memory, %d GPU(s), %.1f GFLOPS measured\n", hb.Hardware.CPUCores, ui.HumanBytes(hb.Hardware.MemoryBytes), len(hb.Hardware.GPUs), hb.ThroughputGFLOPS)
	fmt.Fprintf(tw, "price\t%d µGRID per GFLOP\n", hb.PricePerUnit)
	fmt.Fprintf(tw, "region\t%s\n", hb.Region)
	e := hb.Energy
	if e.Zone != "" {
		fmt.Fprintf(tw, "energy\tzone %s, solar %.0f W, surplus %.0f W, battery %.0f%%, grid %.0f gCO2/kWh, device %.0f W (%s)\n",
			e.Zone, e.SolarWatts, e.SurplusWatts, e.BatteryPercent, e.CarbonGPerKWh, e.DeviceWatts, e.PowerSource)
	}
	fmt.Fprintf(tw, "traffic\t%s in, %s out\n", ui.HumanBytes(uint64(st.BytesIn)), ui.HumanBytes(uint64(st.BytesOut)))
	fmt.Fprintf(tw, "heartbeat\t%.1fs ago\n", st.HeartbeatAge)
	for _, a := range st.Addrs {
		fmt.Fprintf(tw, "addr\t%s\n", a)
	}
	keys := make([]string, 0, len(st.Extra))
	for k := range st.Extra {
		keys = append(keys, k)
	}
	for _, k := range sortedStrings(keys) {
		fmt.Fprintf(tw, "%s\t%v\n", k, st.Extra[k])
	}
	tw.Flush()
}

func newPeersCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List the peers a running node knows, with RTT, offer and energy",
		Args:  exactArgs(0),
	}
	client := apiFlag(cmd, g)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print raw JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		peers, err := c.Peers(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), peers)
		}
		connected := 0
		if len(peers) == 0 {
			// Only the node's status says whether it is connected at all.
			if st, err := c.Status(cmd.Context()); err == nil {
				connected = st.Connected
			}
		}
		ui.PrintPeerTable(cmd.OutOrStdout(), peers, connected, time.Now())
		return nil
	}
	return cmd
}
