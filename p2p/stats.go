package p2p

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Stats are the host's traffic counters since New.
type Stats struct {
	// BytesIn and BytesOut count every byte on every connection (libp2p's
	// bandwidth counter; it folds new traffic in about once a second).
	BytesIn, BytesOut int64
	// MsgsIn counts gossip messages from other nodes that passed validation
	// (each once, duplicates are dropped before validation); MsgsOut counts
	// our successful Publish calls.
	MsgsIn, MsgsOut int64
	// Rejected counts gossip messages from other nodes that were refused,
	// by our validators or by pubsub itself (bad signature, full queue).
	Rejected int64
	// RejectedByReason splits Rejected: a Validator's reason (see Reject),
	// "panic", or a pubsub reason such as "invalid signature".
	RejectedByReason map[string]int64
	// RejectedByTopic splits Rejected by topic.
	RejectedByTopic map[string]int64
	// DroppedRPCs counts outgoing gossip RPCs dropped because a peer's
	// outbound queue was full.
	DroppedRPCs int64
	// Undelivered counts messages dropped because one of our
	// subscriptions was not read fast enough (its 4096-message buffer was full).
	Undelivered int64
	// Peers is the number of connected peers.
	Peers int
	// RateLimitedStreams counts inbound streams reset because their peer
	// opened them faster than Limits.StreamRate.
	RateLimitedStreams int64
}

type counters struct {
	msgsIn, msgsOut, rejected, droppedRPCs, undelivered, rateLimited atomic.Int64

	mu       sync.Mutex
	byReason map[string]int64
	byTopic  map[string]int64
}

func (c *counters) init() {
	c.byReason = make(map[string]int64)
	c.byTopic = make(map[string]int64)
}

func (c *counters) reject(topic, reason string) {
	c.rejected.Add(1)
	c.mu.Lock()
	c.byReason[reason]++
	c.byTopic[topic]++
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (h *Host) Stats() Stats {
	bw := h.bw.GetBandwidthTotals()
	s := Stats{
		BytesIn: bw.TotalIn, BytesOut: bw.TotalOut,
		MsgsIn: h.stats.msgsIn.Load(), MsgsOut: h.stats.msgsOut.Load(),
		Rejected: h.stats.rejected.Load(), DroppedRPCs: h.stats.droppedRPCs.Load(),
		Undelivered: h.stats.undelivered.Load(),
		Peers:       len(h.host.Network().Peers()),

		RateLimitedStreams: h.stats.rateLimited.Load(),
	}
	h.stats.mu.Lock()
	s.RejectedByReason = maps.Clone(h.stats.byReason)
	s.RejectedByTopic = maps.Clone(h.stats.byTopic)
	h.stats.mu.Unlock()
	return s
}

// tracer counts what pubsub refuses before our validators see a message
// (bad or missing signatures, full validation queue) and dropped RPCs, and
// mirrors each topic's GossipSub mesh, which pubsub does not expose.
type tracer struct {
	h *Host

	mu   sync.Mutex
	mesh map[string]map[peer.ID]struct{}
}

func newTracer(h *Host) *tracer {
	return &tracer{h: h, mesh: make(map[string]map[peer.ID]struct{})}
}

func (t *tracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.mesh[topic]
	if m == nil {
		m = make(map[peer.ID]struct{})
		t.mesh[topic] = m
	}
	m[p] = struct{}{}
}

func (t *tracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}

func (t *tracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.mesh {
		delete(m, p)
	}
}

func (t *tracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}

func (t *tracer) meshPeers(topic string) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]peer.ID, 0, len(t.mesh[topic]))
	for p := range t.mesh[topic] {
		out = append(out, p)
	}
	return out
}

var _ pubsub.RawTracer = (*tracer)(nil)

func (t *tracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored, pubsub.RejectSelfOrigin:
		// Our validators counted these already, or they are not a rejection.
		return
	}
	if msg.ReceivedFrom == t.h.self {
		return
	}
	t.h.stats.reject(msg.GetTopic(), reason)
}

func (t *tracer) DropRPC(*pubsub.RPC, peer.ID) { t.h.stats.droppedRPCs.Add(1) }

func (*tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (*tracer) Join(string)                                          {}
func (*tracer) ValidateMessage(*pubsub.Message)                      {}
func (*tracer) DeliverMessage(*pubsub.Message)                       {}
func (*tracer) DuplicateMessage(*pubsub.Message)                     {}
func (*tracer) ThrottlePeer(peer.ID)                                 {}
func (*tracer) RecvRPC(*pubsub.RPC)                                  {}
func (*tracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (*tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

func (t *tracer) UndeliverableMessage(*pubsub.Message) { t.h.stats.undelivered.Add(1) }
