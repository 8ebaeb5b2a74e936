package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// metrics are per node (not the global registry) so that many nodes can
// live in one process, as they do in tests and the demo.
type metrics struct {
	reg        *prometheus.Registry
	msgsIn     *prometheus.CounterVec
	msgsOut    *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	peersGauge prometheus.GaugeFunc
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.msgsIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmind_messages_in_total", Help: "Gossip messages accepted, by type.",
	}, []string{"type"})
	m.msgsOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmind_messages_out_total", Help: "Gossip messages published, by type.",
	}, []string{"type"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gridmind_messages_rejected_total", Help: "Gossip messages rejected by validation, by reason.",
	}, []string{"reason"})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.msgsIn, m.msgsOut, m.rejected,
		gauge("gridmind_peers", "Peers in the peer table (heard from within the timeout).", func() float64 { return float64(n.peers.Len()) }),
		gauge("gridmind_connected_peers", "libp2p connections.", func() float64 { return float64(len(n.host.Peers())) }),
		gauge("gridmind_bytes_in", "Bytes received by the network layer.", func() float64 { return float64(n.host.Stats().BytesIn) }),
		gauge("gridmind_bytes_out", "Bytes sent by the network layer.", func() float64 { return float64(n.host.Stats().BytesOut) }),
		gauge("gridmind_heartbeat_age_seconds", "Seconds since this node last published a heartbeat.", func() float64 { return n.heartbeatAge().Seconds() }),
		gauge("gridmind_peer_heartbeat_max_age_seconds", "Age of the stalest peer heartbeat in the table.", func() float64 { return n.peers.OldestBeat(n.now()).Seconds() }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry exposes the node's Prometheus registry (for /metrics and for
// other parts that want to add their own collectors).
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

func counterValue(v *prometheus.CounterVec, label string) float64 {
	c, err := v.GetMetricWithLabelValues(label)
	if err != nil {
		return 0
	}
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
