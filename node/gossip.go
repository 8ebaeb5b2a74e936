package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
)

// JoinTopic joins a gossip topic whose messages are signed envelopes of
// type typ. Every message is checked before it is accepted or relayed:
// signature by the gossip author, fresh timestamp, not a replay, then
// check (which may be nil) on the body. Rejections are counted by reason.
func (n *Node) JoinTopic(name, typ string, check func(*gridmind.Envelope) error) (*p2p.Topic, error) {
	validate := func(ctx context.Context, from gridmind.NodeID, data []byte) error {
		err := n.validateEnvelope(name, typ, from, data, check)
		if err != nil {
			n.metrics.rejected.WithLabelValues(rejectReason(err)).Inc()
			return err
		}
		n.metrics.msgsIn.WithLabelValues(typ).Inc()
		return nil
	}
	t, err := n.host.Join(name, validate)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "node", "joining %s: %w", name, err)
	}
	return t, nil
}

func (n *Node) validateEnvelope(topic, typ string, from gridmind.NodeID, data []byte, check func(*gridmind.Envelope) error) error {
	env, err := gridmind.OpenEnvelope(data, n.now(), MaxClockSkew)
	if err != nil {
		return err
	}
	if env.From != from {
		return errSenderMismatch
	}
	if env.Type != typ {
		return fmt.Errorf("%w: type %q on topic %s", gridmind.ErrMalformed, env.Type, topic)
	}
	if check != nil {
		if err := check(env); err != nil {
			return err
		}
	}
	// Only a message that passed every other check may consume its
	// sequence number, so garbage cannot block a real message.
	if !n.replay.accept(topic, env.From, env.Seq, time.UnixMilli(env.Time), n.now()) {
		return gridmind.ErrReplay
	}
	return nil
}

// Publish signs body as an envelope of type typ and publishes it.
func (n *Node) Publish(ctx context.Context, t *p2p.Topic, typ string, body any) error {
	data, err := gridmind.SignEnvelope(n.key, typ, n.NextSeq(), n.now(), body)
	if err != nil {
		return err
	}
	if err := t.Publish(ctx, data); err != nil {
		return err
	}
	n.metrics.msgsOut.WithLabelValues(typ).Inc()
	return nil
}

// rejectReason names an error for the rejected-messages metric.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, gridmind.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, gridmind.ErrStale):
		return "stale"
	case errors.Is(err, gridmind.ErrReplay):
		return "replay"
	case errors.Is(err, errSenderMismatch):
		return "sender_mismatch"
	case errors.Is(err, gridmind.ErrMalformed):
		return "malformed"
	default:
		return "invalid"
	}
}

// RejectedCount returns how many messages were rejected for a reason
// ("bad_signature", "stale", "replay", "sender_mismatch", "malformed").
func (n *Node) RejectedCount(reason string) float64 {
	return counterValue(n.metrics.rejected, reason)
}

// replayGuard remembers every sequence number accepted per (topic, sender)
// for as long as the freshness check would still let it through; a replay
// older than that fails the timestamp check instead. Exact, and bounded by
// the message rate times the skew window.
type replayGuard struct {
	mu   sync.Mutex
	seen map[replayKey]map[uint64]time.Time
	ops  int
}

type replayKey struct {
	topic string
	from  gridmind.NodeID
}

func newReplayGuard() *replayGuard { return &replayGuard{seen: map[replayKey]map[uint64]time.Time{}} }

func (g *replayGuard) accept(topic string, from gridmind.NodeID, seq uint64, sent, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := replayKey{topic, from}
	m := g.seen[k]
	if m == nil {
		m = map[uint64]time.Time{}
		g.seen[k] = m
	}
	if _, dup := m[seq]; dup {
		return false
	}
	m[seq] = sent
	if g.ops++; g.ops%1024 == 0 {
		g.prune(now)
	}
	return true
}

func (g *replayGuard) prune(now time.Time) {
	horizon := now.Add(-2 * MaxClockSkew)
	for k, m := range g.seen {
		for seq, t := range m {
			if t.Before(horizon) {
				delete(m, seq)
			}
		}
		if len(m) == 0 {
			delete(g.seen, k)
		}
	}
}
