package diloco

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// MemNetwork is an in-process network of Transports for tests and
// benchmarks: delivery is a function call into the receiver's handler, a
// killed node neither sends nor receives, and bytes are counted per node.
type MemNetwork struct {
	mu    sync.Mutex
	nodes map[gridmind.NodeID]*MemTransport
	drop  func(kind string, from, to gridmind.NodeID, data []byte) bool
}

// SetDrop installs a filter that loses a message when it returns true
// (kind is "control", "bulk" or "state"); it may also kill nodes.
func (n *MemNetwork) SetDrop(f func(kind string, from, to gridmind.NodeID, data []byte) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = f
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork { return &MemNetwork{nodes: map[gridmind.NodeID]*MemTransport{}} }

// MemTransport is one node's end of a MemNetwork.
type MemTransport struct {
	net     *MemNetwork
	id      gridmind.NodeID
	mu      sync.Mutex
	handler Handler
	ctx     context.Context
	dead    atomic.Bool
	sent    atomic.Int64
}

var _ Transport = (*MemTransport)(nil)

// Join attaches a node (again, if it was killed: a restart).
func (n *MemNetwork) Join(id gridmind.NodeID) *MemTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := &MemTransport{net: n, id: id}
	n.nodes[id] = t
	return t
}

// Kill cuts a node off: its traffic in both directions is lost from now on.
func (n *MemNetwork) Kill(id gridmind.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[id]; t != nil {
		t.dead.Store(true)
	}
}

// BytesSent is what node id has sent so far.
func (n *MemNetwork) BytesSent(id gridmind.NodeID) int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[id]; t != nil {
		return t.sent.Load()
	}
	return 0
}

func (n *MemNetwork) peer(from *MemTransport, kind string, to gridmind.NodeID, data []byte) (Handler, context.Context, error) {
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
func (t *MemTransport) Self() gridmind.NodeID { return t.id }

// Send calls the receiver's Control handler.
func (t *MemTransport) Send(ctx context.Context, to gridmind.NodeID, data []byte) error {
	h, _, err := t.net.peer(t, "control", to, data)
	if h != nil {
		h.Control(t.id, data)
	}
	return err
}

// Broadcast sends to every other live node.
func (t *MemTransport) Broadcast(ctx context.Context, data []byte) error {
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
func (t *MemTransport) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	h, _, err := t.net.peer(t, "bulk", to, data)
	if h != nil {
		h.Bulk(t.id, data)
	}
	return err
}

// FetchState calls the peer's State handler; the reply counts as the peer's traffic.
func (t *MemTransport) FetchState(ctx context.Context, from gridmind.NodeID, round uint64, hash train.Hash) ([]byte, error) {
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
func (t *MemTransport) Serve(ctx context.Context, h Handler) error {
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
