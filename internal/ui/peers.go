package ui

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gridmind/gridmind/node"
)

// PrintPeerTable prints peers as an aligned table.
func PrintPeerTable(out io.Writer, peers []node.PeerInfo, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tVERSION\tREGION\tCORES\tMEMORY\tGFLOPS\tµGRID/GFLOP\tRTT\tLAST SEEN\tZONE\tSURPLUS W\tgCO2/kWh")
	for _, p := range peers {
		hb := p.Heartbeat
		rtt := "-"
		if p.RTT > 0 {
			rtt = p.RTT.Round(10 * time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.1f\t%s\t%s\t%s ago\t%s\t%.0f\t%.0f\n",
			p.ID.Short(), hb.Version, hb.Region, hb.Hardware.CPUCores, HumanBytes(hb.Hardware.MemoryBytes),
			hb.ThroughputGFLOPS, fmt.Sprint(uint64(hb.PricePerUnit)), rtt,
			now.Sub(p.LastSeen).Round(100*time.Millisecond), dash(hb.Energy.Zone), hb.Energy.SurplusWatts, hb.Energy.CarbonGPerKWh)
	}
	tw.Flush()
	if len(peers) == 0 {
		fmt.Fprintln(out, "(no peers yet: is a bootstrap peer configured and running?)")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
