package node

import (
	"strings"
	"time"

	"github.com/gridmind/gridmind"
)

// Status is the node's own view of itself, served at /api/v1/status.
type Status struct {
	ID            gridmind.NodeID    `json:"id"`
	Version       string             `json:"version"`
	Addrs         []string           `json:"addrs"`
	Uptime        string             `json:"uptime"`
	UptimeSeconds float64            `json:"uptime_seconds"`
	Peers         int                `json:"peers"`
	Connected     int                `json:"connected"`
	HeartbeatAge  float64            `json:"heartbeat_age_seconds"`
	BytesIn       int64              `json:"bytes_in"`
	BytesOut      int64              `json:"bytes_out"`
	Heartbeat     gridmind.Heartbeat `json:"heartbeat"`
	Extra         map[string]any     `json:"extra,omitempty"`
	// Warnings are problems the operator should fix: no ledger configured,
	// a listen address that could not be bound.
	Warnings []string `json:"warnings,omitempty"`
}

// Status reports the node's state now.
func (n *Node) Status() Status {
	now := n.now()
	st := n.host.Stats()
	up := now.Sub(n.started)
	return Status{
		ID:            n.id,
		Version:       Version,
		Addrs:         n.host.Addrs(),
		Uptime:        up.Round(time.Second).String(),
		UptimeSeconds: up.Seconds(),
		Peers:         n.peers.Len(),
		Connected:     len(n.host.Peers()),
		HeartbeatAge:  n.heartbeatAge().Seconds(),
		BytesIn:       st.BytesIn,
		BytesOut:      st.BytesOut,
		Heartbeat:     n.Heartbeat(),
		Warnings:      n.Warnings(),
	}
}

// Warn records a problem that `status` shows until the node stops.
func (n *Node) Warn(msg string) {
	n.warnMu.Lock()
	defer n.warnMu.Unlock()
	n.warnings = append(n.warnings, msg)
}

// Warnings are the problems recorded by Warn, and the listen addresses
// that could not be bound.
func (n *Node) Warnings() []string {
	var out []string
	if f := n.host.ListenFailures(); len(f) > 0 {
		out = append(out, "could not listen on "+strings.Join(f, ", "))
	}
	n.warnMu.Lock()
	defer n.warnMu.Unlock()
	return append(out, n.warnings...)
}
