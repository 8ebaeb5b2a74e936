package testnet

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// MemNetwork connects inference clients and servers in one process through
// in-memory pipes, with a chosen round-trip time to each server and the
// ability to kill a server mid-stream (its streams are reset, new ones
// refused). It stands in for libp2p in serve's tests and in the in-memory
// inference benchmark. Its Dialer satisfies serve.Dialer and a
// serve.StreamHandler can be passed to Listen (serve.Stream is an
// io.ReadWriteCloser), without this package importing serve, so that
// serve's own tests can use it.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[gridmind.NodeID]*memNode
	handlers sync.WaitGroup
}

// Handler serves one inbound stream from a peer, like serve.StreamHandler.
type Handler = func(from gridmind.NodeID, s io.ReadWriteCloser)

type memNode struct {
	handler Handler
	rtt     time.Duration
	dead    bool
	conns   map[*memConn]struct{} // both ends of every stream to this node
	opened  int
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{nodes: make(map[gridmind.NodeID]*memNode)}
}

// Listen makes id reachable with round-trip time rtt (half each way);
// every stream opened to it is served by h in its own goroutine.
func (n *MemNetwork) Listen(id gridmind.NodeID, rtt time.Duration, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes[id] = &memNode{handler: h, rtt: rtt, conns: make(map[*memConn]struct{})}
}

// Kill crashes id: its open streams are reset and new ones refused. It
// returns how many streams were open.
func (n *MemNetwork) Kill(id gridmind.NodeID) int {
	n.mu.Lock()
	node := n.nodes[id]
	if node == nil {
		n.mu.Unlock()
		return 0
	}
	node.dead = true
	conns := make([]*memConn, 0, len(node.conns))
	streams := 0
	for c := range node.conns {
		conns = append(conns, c)
		if c.serverSide {
			streams++
		}
	}
	n.mu.Unlock()
	for _, c := range conns {
		_ = c.Reset()
	}
	return streams
}

// ActiveStreams is the number of streams open to id now (not yet closed
// by id's side).
func (n *MemNetwork) ActiveStreams(id gridmind.NodeID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	streams := 0
	if node := n.nodes[id]; node != nil {
		for c := range node.conns {
			if c.serverSide {
				streams++
			}
		}
	}
	return streams
}

// Opened is the number of streams ever opened to id.
func (n *MemNetwork) Opened(id gridmind.NodeID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if node := n.nodes[id]; node != nil {
		return node.opened
	}
	return 0
}

// Close kills every node and waits for the stream handlers to return.
func (n *MemNetwork) Close() {
	n.mu.Lock()
	ids := make([]gridmind.NodeID, 0, len(n.nodes))
	for id := range n.nodes {
		ids = append(ids, id)
	}
	n.mu.Unlock()
	for _, id := range ids {
		n.Kill(id)
	}
	n.handlers.Wait()
}

// Dialer returns a serve.Dialer that opens streams as node from.
func (n *MemNetwork) Dialer(from gridmind.NodeID) Dialer { return Dialer{n, from} }

// Dialer opens streams on a MemNetwork; it implements serve.Dialer.
type Dialer struct {
	net  *MemNetwork
	from gridmind.NodeID
}

// Open opens a stream to node to.
func (d Dialer) Open(ctx context.Context, to gridmind.NodeID) (io.ReadWriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := d.net
	n.mu.Lock()
	defer n.mu.Unlock()
	node := n.nodes[to]
	if node == nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "memnet.open", "no route to %s", to.Short())
	}
	if node.dead {
		return nil, gridmind.E(gridmind.KindUnavailable, "memnet.open", "%s: connection refused", to.Short())
	}
	a, b := net.Pipe()
	var client, server *memConn
	untrack := func(c *memConn) func() {
		return func() {
			n.mu.Lock()
			delete(node.conns, c)
			n.mu.Unlock()
		}
	}
	client = newMemConn(a, node.rtt/2)
	server = newMemConn(b, node.rtt/2)
	server.serverSide = true
	client.onEnd, server.onEnd = untrack(client), untrack(server)
	node.conns[client], node.conns[server] = struct{}{}, struct{}{}
	node.opened++
	n.handlers.Add(1)
	go func() {
		defer n.handlers.Done()
		node.handler(d.from, server)
	}()
	return client, nil
}

// memConn is one end of a pipe whose writes arrive after a delay. A pump
// goroutine, owned by the conn and stopped by Close or Reset, delivers
// them in order; Close delivers what is pending first, Reset drops it.
type memConn struct {
	inner net.Conn
	delay time.Duration
	queue chan delayedWrite
	abort chan struct{}
	onEnd func()
	// serverSide marks the node's end; a stream counts as open while it is.
	serverSide bool

	mu       sync.Mutex
	closing  bool
	pumpErr  error
	endOnce  sync.Once
	abortOne sync.Once
}

type delayedWrite struct {
	at    time.Time
	data  []byte
	close bool
}

func newMemConn(inner net.Conn, delay time.Duration) *memConn {
	c := &memConn{inner: inner, delay: delay, abort: make(chan struct{})}
	if delay > 0 {
		c.queue = make(chan delayedWrite, 1024)
		go c.pump()
	}
	return c
}

func (c *memConn) pump() {
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for w := range c.queue {
		if wait := time.Until(w.at); wait > 0 {
			timer.Reset(wait) // simulated network delay
			select {
			case <-timer.C:
			case <-c.abort:
				return
			}
		}
		if w.close {
			_ = c.inner.Close()
			c.end()
			return
		}
		if _, err := c.inner.Write(w.data); err != nil {
			c.mu.Lock()
			c.pumpErr = err
			c.mu.Unlock()
			_ = c.Reset()
			return
		}
	}
}

func (c *memConn) Read(p []byte) (int, error) { return c.inner.Read(p) }

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	closing, err := c.closing, c.pumpErr
	c.mu.Unlock()
	if closing {
		return 0, io.ErrClosedPipe
	}
	if err != nil {
		return 0, err
	}
	if c.delay <= 0 {
		return c.inner.Write(p)
	}
	w := delayedWrite{at: time.Now().Add(c.delay), data: append([]byte(nil), p...)}
	select {
	case c.queue <- w:
		return len(p), nil
	case <-c.abort:
		return 0, io.ErrClosedPipe
	}
}

// Close ends the stream after pending writes are delivered.
func (c *memConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	if c.delay <= 0 {
		err := c.inner.Close()
		c.end()
		return err
	}
	select {
	case c.queue <- delayedWrite{at: time.Now().Add(c.delay), close: true}:
	case <-c.abort:
	}
	return nil
}

// Reset aborts the stream at once, dropping pending writes.
func (c *memConn) Reset() error {
	c.abortOne.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		close(c.abort)
		_ = c.inner.Close()
		c.end()
	})
	return nil
}

func (c *memConn) end() {
	c.endOnce.Do(func() {
		if c.onEnd != nil {
			c.onEnd()
		}
	})
}
