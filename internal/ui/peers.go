package ui

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gridmind/gridmind/node"
)

// PrintPeerTable prints peers as an aligned table. connected is the node's
// count of live connections, which tells an empty table's two causes apart:
// no connection at all, or connections whose first heartbeat has not come.
func PrintPeerTable(out io.Writer, peers []node.PeerInfo, connected int, now time.Time) {
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
	switch {
	case len(peers) > 0:
	case connected > 0:
		fmt.Fprintf(out, "(connected to %d peer(s); none has sent its first heartbeat yet: ask again in a few seconds)\n", connected)
	default:
		fmt.Fprintln(out, "(no peers yet: is a bootstrap peer configured and running?)")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
