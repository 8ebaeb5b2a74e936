package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// testConfig is the loopback-only option set for tests: nothing leaves 127.0.0.1.
func testConfig(bootstrap []string) Config {
	cfg := DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.LoopbackOnly = true
	cfg.Bootstrap = bootstrap
	cfg.HTTP = ""
	cfg.Heartbeat = Duration(500 * time.Millisecond)
	cfg.PeerTimeout = Duration(3 * time.Second)
	return cfg
}

type testNet struct {
	t     *testing.T
	mu    sync.Mutex
	nodes []*Node
	errs  []chan error
	boot  []string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (tn *testNet) start(key ed25519.PrivateKey) *Node {
	tn.t.Helper()
	n, err := New(context.Background(), Options{Key: key, Config: testConfig(tn.boot), Logger: quietLogger(), ThroughputGFLOPS: 1})
	if err != nil {
		tn.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	tn.t.Cleanup(func() { n.Close() })
	tn.mu.Lock()
	tn.nodes = append(tn.nodes, n)
	tn.errs = append(tn.errs, done)
	if tn.boot == nil {
		tn.boot = n.Addrs()[:1]
	}
	tn.mu.Unlock()
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, status)
		}
		<-tick.C
	}
}

func TestThirtyNodeNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("30 libp2p hosts in one process: runs in the plain suite (the -short race run uses TestFiveNodeNetwork)")
	}
	testNetwork(t, 30)
}

// TestFiveNodeNetwork is the same scenario small enough for the race detector.
func TestFiveNodeNetwork(t *testing.T) { testNetwork(t, 5) }

// testNetwork checks that every node sees every other node's heartbeat, that
// a stopped node disappears from the others' tables, and that a restarted
// node keeps its identity.
func testNetwork(t *testing.T, size int) {
	tn := &testNet{t: t}
	keys := make([]ed25519.PrivateKey, size)
	for i := range keys {
		keys[i] = KeyFromSeedString(fmt.Sprintf("net-test-%d", i))
		tn.start(keys[i])
	}
	allSee := func(nodes []*Node, want int) func() (bool, string) {
		return func() (bool, string) {
			worst, worstNode := want, -1
			for i, n := range nodes {
				if l := n.Peers().Len(); l < worst {
					worst, worstNode = l, i
				}
			}
			return worstNode == -1, fmt.Sprintf("node %d sees %d of %d peers", worstNode, worst, want)
		}
	}
	waitFor(t, 60*time.Second, "every node to see every other heartbeat", allSee(tn.nodes, size-1))
	for i, n := range tn.nodes {
		for _, p := range n.Peers().List() {
			if p.Heartbeat.Version != Version || p.Heartbeat.Hardware.CPUCores < 1 {
				t.Fatalf("node %d holds a bad offer for %s: %+v", i, p.ID.Short(), p.Heartbeat)
			}
		}
	}

	// Stop one node: it must vanish from every other table.
	victim := tn.nodes[size-1]
	victimID := victim.ID()
	victim.Close()
	rest := tn.nodes[:size-1]
	waitFor(t, 30*time.Second, "the stopped node to disappear", func() (bool, string) {
		for i, n := range rest {
			if _, ok := n.Peers().Get(victimID); ok {
				return false, fmt.Sprintf("node %d still lists it", i)
			}
		}
		return true, ""
	})

	// Restart it with the same key: same identity, seen again by all.
	back := tn.start(keys[size-1])
	if back.ID() != victimID {
		t.Fatalf("restarted node changed identity: %s != %s", back.ID(), victimID)
	}
	waitFor(t, 30*time.Second, "the restarted node to be seen again", func() (bool, string) {
		for i, n := range rest {
			if _, ok := n.Peers().Get(victimID); !ok {
				return false, fmt.Sprintf("node %d does not list it", i)
			}
		}
		return true, ""
	})
	if got := gridmind.NodeIDFromPublicKey(keys[size-1].Public().(ed25519.PublicKey)); got != victimID {
		t.Fatalf("identity is not derived from the key")
	}
}
