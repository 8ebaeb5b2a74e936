package p2p

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/gridmind/gridmind"
)

// Validator decides whether a gossip message is accepted and forwarded.
// from is the message's author, proven by its signature (pubsub StrictSign),
// not merely the peer that relayed it. Return nil to accept; an error
// rejects the message and counts it in Stats under the error's reason (see
// Reject). A panic inside a Validator rejects the message with reason
// "panic" instead of crashing the node.
type Validator func(ctx context.Context, from gridmind.NodeID, data []byte) error

// Reasoner is implemented by validator errors that name their own reason
// for Stats.RejectedByReason.
type Reasoner interface{ Reason() string }

type reasonError struct {
	reason string
	err    error
}

func (e *reasonError) Error() string  { return e.reason + ": " + e.err.Error() }
func (e *reasonError) Unwrap() error  { return e.err }
func (e *reasonError) Reason() string { return e.reason }

// Reject wraps err so that Stats counts it under reason, for example
// Reject("stale", err) for a replayed heartbeat.
func Reject(reason string, err error) error {
	if err == nil {
		err = errors.New("rejected")
	}
	return &reasonError{reason: reason, err: err}
}

// Reason names why a validator rejected: the Reasoner's reason if the error
// has one, else its gridmind error kind, else "invalid".
func reasonOf(err error) string {
	var r Reasoner
	if errors.As(err, &r) {
		if s := r.Reason(); s != "" {
			return s
		}
	}
	if k := gridmind.KindOf(err); k != gridmind.KindOther {
		return k.String()
	}
	return "invalid"
}

// Topic is a joined GossipSub topic.
type Topic struct {
	h     *Host
	name  string
	topic *pubsub.Topic

	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Message is one gossip message from another node.
type Message struct {
	From         gridmind.NodeID // author, verified by signature
	ReceivedFrom gridmind.NodeID // the peer that forwarded it to us
	Data         []byte
}

// Subscription delivers a topic's messages in arrival order.
type Subscription struct {
	t      *Topic
	sub    *pubsub.Subscription
	ctx    context.Context // done after Cancel or Host.Close
	cancel context.CancelFunc
}

// Join joins a topic and installs its validator (nil accepts everything).
// Every message, including our own, passes the validator before it is
// delivered or forwarded. A topic can be joined once per host.
func (h *Host) Join(topic string, validate Validator) (*Topic, error) {
	const op = "p2p.join"
	if topic == "" || len(topic) > 256 {
		return nil, gridmind.E(gridmind.KindInvalid, op, "topic name %q: want 1 to 256 bytes", shorten(topic))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "topic %q: %w", topic, ErrClosed)
	}
	if _, ok := h.topics[topic]; ok {
		return nil, gridmind.E(gridmind.KindConflict, op, "topic %q already joined", topic)
	}
	if err := h.ps.RegisterTopicValidator(topic, h.wrapValidator(topic, validate)); err != nil {
		return nil, gridmind.E(gridmind.KindInternal, op, "topic %q: validator: %v", topic, err)
	}
	pt, err := h.ps.Join(topic)
	if err != nil {
		_ = h.ps.UnregisterTopicValidator(topic)
		return nil, gridmind.E(gridmind.KindInternal, op, "topic %q: %v", topic, err)
	}
	t := &Topic{h: h, name: topic, topic: pt, subs: make(map[*Subscription]struct{})}
	h.topics[topic] = t
	return t, nil
}

// wrapValidator adapts a Validator to pubsub: it recovers panics and counts
// rejections of messages from other nodes. Our own messages are not counted
// (Publish returns the error instead).
func (h *Host) wrapValidator(topic string, validate Validator) func(context.Context, peer.ID, *pubsub.Message) (res pubsub.ValidationResult) {
	return func(ctx context.Context, _ peer.ID, msg *pubsub.Message) (res pubsub.ValidationResult) {
		author, err := peer.IDFromBytes(msg.From)
		if err != nil { // StrictSign has checked it already; belt and braces
			h.stats.reject(topic, "bad author")
			return pubsub.ValidationReject
		}
		local := author == h.self
		defer func() {
			if p := recover(); p != nil {
				h.log.Warn("gossip validator panicked; message rejected", "topic", topic, "from", author.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !local {
					h.stats.reject(topic, "panic")
				}
				res = pubsub.ValidationReject
			}
		}()
		if validate != nil {
			if err := validate(ctx, gridmind.NodeID(author.String()), msg.Data); err != nil {
				if !local {
					h.stats.reject(topic, reasonOf(err))
					h.log.Debug("gossip message rejected", "topic", topic, "from", author.String(), "err", err)
				}
				return pubsub.ValidationReject
			}
		}
		if !local {
			h.stats.msgsIn.Add(1)
		}
		return pubsub.ValidationAccept
	}
}

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Publish signs and sends data to the topic. It fails if our own validator
// rejects the data.
func (t *Topic) Publish(ctx context.Context, data []byte) error {
	if t.h.isClosed() {
		return gridmind.E(gridmind.KindUnavailable, "p2p.publish", "topic %q: %w", t.name, ErrClosed)
	}
	if len(data) > t.h.cfg.MaxMessageSize-1024 { // room for signature and framing
		return gridmind.E(gridmind.KindInvalid, "p2p.publish", "topic %q: message of %d bytes exceeds the %d byte limit", t.name, len(data), t.h.cfg.MaxMessageSize-1024)
	}
	if err := t.topic.Publish(ctx, data); err != nil {
		return gridmind.E(gridmind.KindInvalid, "p2p.publish", "topic %q: %v", t.name, err)
	}
	t.h.stats.msgsOut.Add(1)
	return nil
}

// Peers lists the connected nodes that we know are subscribed to the topic.
func (t *Topic) Peers() []gridmind.NodeID { return toNodeIDs(t.topic.ListPeers()) }

// MeshPeers lists the peers in our GossipSub mesh for the topic: the ones
// we forward every message to (the rest only get gossip about it).
func (t *Topic) MeshPeers() []gridmind.NodeID {
	return toNodeIDs(t.h.tracer.meshPeers(t.name))
}

// Subscribe starts receiving the topic's messages. The buffer holds 4096
// messages: a consumer that falls further behind loses the oldest ones.
func (t *Topic) Subscribe() (*Subscription, error) {
	sub, err := t.topic.Subscribe(pubsub.WithBufferSize(4096))
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "p2p.subscribe", "topic %q: %v", t.name, err)
	}
	ctx, cancel := context.WithCancel(t.h.ctx)
	s := &Subscription{t: t, sub: sub, ctx: ctx, cancel: cancel}
	t.mu.Lock()
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return s, nil
}

// Close leaves the topic; cancel its subscriptions first.
func (t *Topic) Close() error {
	t.cancelSubs()
	t.h.mu.Lock()
	if t.h.topics != nil && t.h.topics[t.name] == t {
		delete(t.h.topics, t.name)
	}
	t.h.mu.Unlock()
	_ = t.h.ps.UnregisterTopicValidator(t.name)
	if err := t.topic.Close(); err != nil {
		return gridmind.E(gridmind.KindConflict, "p2p.topic.close", "topic %q: %v", t.name, err)
	}
	return nil
}

func (t *Topic) cancelSubs() {
	t.mu.Lock()
	subs := t.subs
	t.subs = make(map[*Subscription]struct{})
	t.mu.Unlock()
	for s := range subs {
		s.cancel()
		s.sub.Cancel()
	}
}

// Next waits for the next message from another node (our own are skipped).
// It returns ctx's error when ctx ends and ErrClosed after Cancel, Topic.Close
// or Host.Close.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	// pubsub does not wake a blocked Next when the host shuts down, so tie
	// the wait to the subscription's own lifetime as well.
	if s.ctx.Err() != nil {
		return Message{}, ErrClosed
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	for {
		msg, err := s.sub.Next(waitCtx)
		if err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			if s.ctx.Err() != nil || errors.Is(err, pubsub.ErrSubscriptionCancelled) {
				return Message{}, ErrClosed
			}
			return Message{}, err
		}
		author := msg.GetFrom()
		if author == s.t.h.self {
			continue
		}
		return Message{
			From:         gridmind.NodeID(author.String()),
			ReceivedFrom: gridmind.NodeID(msg.ReceivedFrom.String()),
			Data:         msg.Data,
		}, nil
	}
}

// Cancel stops the subscription; a blocked Next returns ErrClosed.
func (s *Subscription) Cancel() {
	s.t.mu.Lock()
	delete(s.t.subs, s)
	s.t.mu.Unlock()
	s.cancel()
	s.sub.Cancel()
}
