package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// older than that fails the timestamp check instead.
//
// It is bounded: at most maxKeys (topic, sender) pairs and maxPerKey
// sequence numbers per pair. A peer can mint identities freely, so when a
// bound is reached the oldest records are evicted, and a floor remembers
// the newest timestamp evicted: a message signed at or before the floor is
// refused as a possible replay. That keeps the guard exact (nothing it has
// forgotten can come back) at the price, under a flood of identities, of
// refusing honest messages that arrive later than the floor.
type replayGuard struct {
	mu        sync.Mutex
	seen      map[replayKey]*senderSeqs
	floor     time.Time // for pairs evicted whole
	ops       int
	maxKeys   int
	maxPerKey int
}

type replayKey struct {
	topic string
	from  gridmind.NodeID
}

type senderSeqs struct {
	seqs   map[uint64]time.Time // sequence number → signing time
	floor  time.Time            // for this pair's evicted numbers
	newest time.Time
}

// Default bounds of the replay guard: room for thousands of live senders
// on a few topics, and for a sender publishing ~60 messages a second on
// one topic over the 2 × MaxClockSkew window it must remember.
const (
	maxReplayKeys       = 16384
	maxReplaySeqsPerKey = 4096
)

func newReplayGuard() *replayGuard {
	return &replayGuard{seen: map[replayKey]*senderSeqs{}, maxKeys: maxReplayKeys, maxPerKey: maxReplaySeqsPerKey}
}

func (g *replayGuard) accept(topic string, from gridmind.NodeID, seq uint64, sent, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !sent.After(g.floor) {
		return false
	}
	k := replayKey{topic, from}
	s := g.seen[k]
	if s == nil {
		if len(g.seen) >= g.maxKeys {
			g.prune(now)
			if len(g.seen) >= g.maxKeys {
				g.evictKeys()
			}
		}
		s = &senderSeqs{seqs: map[uint64]time.Time{}}
		g.seen[k] = s
	}
	if !sent.After(s.floor) {
		return false
	}
	if _, dup := s.seqs[seq]; dup {
		return false
	}
	if len(s.seqs) >= g.maxPerKey {
		s.prune(now.Add(-2 * MaxClockSkew))
		if len(s.seqs) >= g.maxPerKey {
			s.evictOldestHalf()
		}
		if !sent.After(s.floor) {
			return false
		}
	}
	s.seqs[seq] = sent
	if sent.After(s.newest) {
		s.newest = sent
	}
	if g.ops++; g.ops%1024 == 0 {
		g.prune(now)
	}
	return true
}

// size reports the pairs and sequence numbers held (for tests).
func (g *replayGuard) size() (keys, seqs int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.seen {
		seqs += len(s.seqs)
	}
	return len(g.seen), seqs
}

func (g *replayGuard) prune(now time.Time) {
	horizon := now.Add(-2 * MaxClockSkew)
	for k, s := range g.seen {
		s.prune(horizon)
		if len(s.seqs) == 0 && !s.floor.After(horizon) {
			delete(g.seen, k)
		}
	}
}

// evictKeys forgets the half of the pairs whose newest message is oldest.
func (g *replayGuard) evictKeys() {
	newest := make([]time.Time, 0, len(g.seen))
	for _, s := range g.seen {
		newest = append(newest, s.newest)
	}
	slices.SortFunc(newest, time.Time.Compare)
	cut := newest[len(newest)/2]
	for k, s := range g.seen {
		if !s.newest.After(cut) {
			if s.newest.After(g.floor) {
				g.floor = s.newest
			}
			if s.floor.After(g.floor) {
				g.floor = s.floor
			}
			delete(g.seen, k)
		}
	}
}

func (s *senderSeqs) prune(horizon time.Time) {
	for seq, t := range s.seqs {
		if t.Before(horizon) {
			delete(s.seqs, seq)
		}
	}
}

// evictOldestHalf forgets the older half of one pair's numbers and raises
// its floor to the newest of them.
func (s *senderSeqs) evictOldestHalf() {
	times := make([]time.Time, 0, len(s.seqs))
	for _, t := range s.seqs {
		times = append(times, t)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for seq, t := range s.seqs {
		if !t.After(cut) {
			delete(s.seqs, seq)
		}
	}
	if cut.After(s.floor) {
		s.floor = cut
	}
}
