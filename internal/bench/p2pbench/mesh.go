package p2pbench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/p2p"
)

// seededKey derives a deterministic key, so benchmark runs are repeatable.
func seededKey(seed uint64) ed25519.PrivateKey {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	s := sha256.Sum256(append([]byte("gridmind/p2p/bench"), b[:]...))
	return ed25519.NewKeyFromSeed(s[:])
}

// gossipMesh is n loopback hosts bootstrapped to the first, all joined to
// one topic, used by the mesh test and the gossip benchmark.
type gossipMesh struct {
	topic  string
	hosts  []*p2p.Host
	topics []*p2p.Topic
	subs   []*p2p.Subscription
	// seen[i] counts distinct messages host i has received in the current round.
	seen []atomic.Int64

	mu     sync.Mutex
	round  string
	byHost []map[string]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startMesh starts n hosts, bootstraps hosts 1..n-1 to host 0, joins and
// subscribes the topic, and waits until the GossipSub meshes together form
// a strongly connected graph, so a published message can reach everyone
// along mesh links without relying on lazy gossip.
func startMesh(ctx context.Context, n int, seed uint64, log *slog.Logger, ready time.Duration, mod func(*p2p.Config)) (*gossipMesh, error) {
	if n < 2 {
		return nil, fmt.Errorf("mesh of %d hosts: need at least 2", n)
	}
	m := &gossipMesh{topic: "gridmind/bench/1", seen: make([]atomic.Int64, n), byHost: make([]map[string]bool, n)}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	for i := range n {
		cfg := p2p.Config{Key: seededKey(seed + uint64(i)), LoopbackOnly: true, Logger: log}
		if i > 0 {
			cfg.Bootstrap = m.hosts[0].Addrs()
		}
		if mod != nil {
			mod(&cfg)
		}
		h, err := p2p.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("host %d: %w", i, err)
		}
		m.hosts = append(m.hosts, h)
		t, err := h.Join(m.topic, nil)
		if err != nil {
			return nil, err
		}
		s, err := t.Subscribe()
		if err != nil {
			return nil, err
		}
		m.topics = append(m.topics, t)
		m.subs = append(m.subs, s)
		m.byHost[i] = make(map[string]bool)
	}
	// Bootstrap in parallel, as separately started nodes would.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range m.hosts {
		wg.Go(func() { errs[i] = h.Bootstrap(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("host %d bootstrap: %w", i, err)
		}
	}
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = rcancel
	for i, s := range m.subs {
		m.wg.Go(func() { m.receive(rctx, i, s) })
	}
	if err := pollUntil(ctx, ready, m.meshConnected); err != nil {
		return nil, fmt.Errorf("gossip mesh of %d hosts not connected after %v: %s", n, ready, m.describe())
	}
	ok = true
	return m, nil
}

func (m *gossipMesh) receive(ctx context.Context, i int, s *p2p.Subscription) {
	for {
		msg, err := s.Next(ctx)
		if err != nil {
			return
		}
		data := string(msg.Data)
		m.mu.Lock()
		if !m.byHost[i][data] && strings.HasPrefix(data, m.round) {
			m.byHost[i][data] = true
			m.seen[i].Add(1)
		}
		m.mu.Unlock()
	}
}

// meshConnected reports whether following mesh links (i -> j when j is in
// i's mesh) reaches every host from host 0 and host 0 from every host.
func (m *gossipMesh) meshConnected() bool {
	index := make(map[gridmind.NodeID]int, len(m.hosts))
	for i, h := range m.hosts {
		index[h.ID()] = i
	}
	out := make([][]int, len(m.hosts))
	in := make([][]int, len(m.hosts))
	for i := range m.hosts {
		for _, p := range m.topics[i].MeshPeers() {
			if j, ok := index[p]; ok {
				out[i] = append(out[i], j)
				in[j] = append(in[j], i)
			}
		}
	}
	return reachesAll(out) && reachesAll(in)
}

func reachesAll(adj [][]int) bool {
	seen := make([]bool, len(adj))
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range adj[i] {
			if !seen[j] {
				seen[j] = true
				count++
				stack = append(stack, j)
			}
		}
	}
	return count == len(adj)
}

// allToAll has every host publish one message tagged with round and waits
// until every host has received the other n-1. It returns the time from the
// first publish until the last delivery.
func (m *gossipMesh) allToAll(ctx context.Context, round int, timeout time.Duration) (time.Duration, error) {
	tag := "round-" + strconv.Itoa(round) + "/"
	m.mu.Lock()
	m.round = tag
	for i := range m.seen {
		m.seen[i].Store(0)
	}
	m.mu.Unlock()
	n := len(m.hosts)
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, t := range m.topics {
		wg.Go(func() { errs[i] = t.Publish(ctx, []byte(tag+strconv.Itoa(i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("host %d publish: %w", i, err)
		}
	}
	done := func() bool {
		for i := range m.seen {
			if m.seen[i].Load() < int64(n-1) {
				return false
			}
		}
		return true
	}
	if err := pollUntil(ctx, timeout, done); err != nil {
		return 0, fmt.Errorf("all-to-all over %d hosts: %d of %d deliveries after %v", n, m.delivered(), n*(n-1), timeout)
	}
	return time.Since(start), nil
}

func (m *gossipMesh) delivered() int64 {
	var sum int64
	for i := range m.seen {
		sum += m.seen[i].Load()
	}
	return sum
}

func (m *gossipMesh) droppedRPCs() int64 {
	var sum int64
	for _, h := range m.hosts {
		sum += h.Stats().DroppedRPCs
	}
	return sum
}

// Close stops the receivers and every host.
func (m *gossipMesh) Close() {
	if m.cancel != nil {
		m.cancel()
	}
	// In parallel: closing a host in a large mesh takes up to seconds on a
	// busy machine, and one after another that adds up.
	for _, h := range m.hosts {
		m.wg.Go(func() { h.Close() })
	}
	m.wg.Wait()
}

// wellConnected is the peer count from which describe leaves a host out
// (p2p's hosts redial their bootstrap peers below three connections).
const wellConnected = 3

// describe summarises connectivity for a failure message.
func (m *gossipMesh) describe() string {
	index := make(map[gridmind.NodeID]int, len(m.hosts))
	for i, h := range m.hosts {
		index[h.ID()] = i
	}
	in := make([]int, len(m.hosts))
	for i := range m.hosts {
		for _, p := range m.topics[i].MeshPeers() {
			if j, ok := index[p]; ok {
				in[j]++
			}
		}
	}
	var b strings.Builder
	for i, h := range m.hosts {
		if len(h.Peers()) >= wellConnected && in[i] > 0 {
			continue // only the poorly connected ones are interesting
		}
		fmt.Fprintf(&b, "[%s %d peers=%d topic=%d mesh=%d in=%d] ", h.ID().Short(), i, len(h.Peers()), len(m.topics[i].Peers()), len(m.topics[i].MeshPeers()), in[i])
	}
	return b.String()
}

// pollUntil waits for cond every few milliseconds (netutil.PollUntil):
// mesh state and deliveries change with no event to wait on.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return netutil.PollUntil(ctx, timeout, 5*time.Millisecond, cond)
}
