package dilocotest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// Handler is what a MemTransport delivers to: the methods of
// diloco.Handler, which instantiates MemNetwork (see the package comment).
type Handler interface {
	Control(from gridmind.NodeID, data []byte)
	Bulk(from gridmind.NodeID, data []byte)
	State(ctx context.Context, round uint64, hash train.Hash) ([]byte, error)
}

// MemNetwork is an in-process network of diloco Transports for tests and
// benchmarks: delivery is a function call into the receiver's handler, a
// killed node neither sends nor receives, and bytes are counted per node.
// H is diloco.Handler.
type MemNetwork[H Handler] struct {
	mu    sync.Mutex
	nodes map[gridmind.NodeID]*MemTransport[H]
	drop  func(kind string, from, to gridmind.NodeID, data []byte) bool
}

// SetDrop installs a filter that loses a message when it returns true
// (kind is "control", "bulk" or "state"); it may also kill nodes.
func (n *MemNetwork[H]) SetDrop(f func(kind string, from, to gridmind.NodeID, data []byte) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = f
}

// NewMemNetwork returns an empty network.
func NewMemNetwork[H Handler]() *MemNetwork[H] {
	return &MemNetwork[H]{nodes: map[gridmind.NodeID]*MemTransport[H]{}}
}

// MemTransport is one node's end of a MemNetwork.
type MemTransport[H Handler] struct {
	net     *MemNetwork[H]
	id      gridmind.NodeID
	mu      sync.Mutex
	handler Handler
	ctx     context.Context
	dead    atomic.Bool
	sent    atomic.Int64
}

// Join attaches a node (again, if it was killed: a restart).
func (n *MemNetwork[H]) Join(id gridmind.NodeID) *MemTransport[H] {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := &MemTransport[H]{net: n, id: id}
	n.nodes[id] = t
	return t
}

// Kill cuts a node off: its traffic in both directions is lost from now on.
func (n *MemNetwork[H]) Kill(id gridmind.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[id]; t != nil {
		t.dead.Store(true)
	}
}

// BytesSent is what node id has sent so far.
func (n *MemNetwork[H]) BytesSent(id gridmind.NodeID) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[id]; t != nil {
		return t.sent.Load()
	}
	return 0
}

func (n *MemNetwork[H]) peer(from *MemTransport[H], kind string, to gridmind.NodeID, data []byte) (Handler, context.Context, error) {
	if from.dead.Load() {
		return nil, nil, fmt.Errorf("memnet: %s is dead", from.id.Short())
	}
	n.mu.Lock()
	t := n.nodes[to]
	drop := n.drop
	n.mu.Unlock()
	if t == nil || t.dead.Load() {
		return nil, nil, fmt.Errorf("memnet: %s unreachable", to.Short())
	}
	from.sent.Add(int64(len(data)))
	if drop != nil && drop(kind, from.id, to, data) {
		return nil, nil, nil
	}
	t.mu.Lock()
	h, ctx := t.handler, t.ctx
	t.mu.Unlock()
	if h == nil || ctx.Err() != nil {
		return nil, nil, fmt.Errorf("memnet: %s is not serving", to.Short())
	}
	return h, ctx, nil
}

// Self is the node.
func (t *MemTransport[H]) Self() gridmind.NodeID { return t.id }

// Send calls the receiver's Control handler.
func (t *MemTransport[H]) Send(ctx context.Context, to gridmind.NodeID, data []byte) error {
	h, _, err := t.net.peer(t, "control", to, data)
	if h != nil {
		h.Control(t.id, data)
	}
	return err
}

// Broadcast sends to every other live node.
func (t *MemTransport[H]) Broadcast(ctx context.Context, data []byte) error {
	t.net.mu.Lock()
	var peers []gridmind.NodeID
	for id := range t.net.nodes {
		if id != t.id {
			peers = append(peers, id)
		}
	}
	t.net.mu.Unlock()
	for _, p := range peers {
		_ = t.Send(ctx, p, data) // gossip is best effort
	}
	return nil
}

// SendBulk calls the receiver's Bulk handler.
func (t *MemTransport[H]) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	h, _, err := t.net.peer(t, "bulk", to, data)
	if h != nil {
		h.Bulk(t.id, data)
	}
	return err
}

// FetchState calls the peer's State handler; the reply counts as the peer's traffic.
func (t *MemTransport[H]) FetchState(ctx context.Context, from gridmind.NodeID, round uint64, hash train.Hash) ([]byte, error) {
	h, pctx, err := t.net.peer(t, "state", from, hash[:])
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("memnet: state request to %s lost", from.Short())
	}
	ctx, cancel := mergeContexts(ctx, pctx)
	defer cancel()
	b, err := h.State(ctx, round, hash)
	t.net.mu.Lock()
	if p := t.net.nodes[from]; p != nil {
		p.sent.Add(int64(len(b)))
	}
	t.net.mu.Unlock()
	return b, err
}

// Serve installs h until ctx ends.
func (t *MemTransport[H]) Serve(ctx context.Context, h H) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handler, t.ctx = h, ctx
	return nil
}

// mergeContexts is done when either parent is.
func mergeContexts(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}
