package serve

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
)

var quietLog = slog.New(slog.DiscardHandler)

// testKey derives a deterministic node key from a small number.
func testKey(i int) (ed25519.PrivateKey, gridmind.NodeID) {
	seed := sha256.Sum256([]byte{byte(i), byte(i >> 8), 'k'})
	key := ed25519.NewKeyFromSeed(seed[:])
	return key, gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// testServer is one serving node on a testnet.MemNetwork.
type testServer struct {
	id    gridmind.NodeID
	key   ed25519.PrivateKey
	local *Local
	srv   *Server

	mu       sync.Mutex
	receipts []Receipt
}

func (s *testServer) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Receipt(nil), s.receipts...)
}

// cluster is n serving nodes and one client node on a testnet.MemNetwork.
type cluster struct {
	net     *testnet.MemNetwork
	servers []*testServer
	client  *Client
	dir     StaticDirectory
	model   string
}

func newCluster(t *testing.T, model string, rtts []time.Duration, gen func(i int) Generator, tweak func(*ClientConfig)) *cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{net: testnet.NewMemNetwork(), dir: StaticDirectory{}, model: model}
	t.Cleanup(func() {
		cancel()
		c.net.Close()
	})
	for i, rtt := range rtts {
		key, id := testKey(i + 1)
		ts := &testServer{id: id, key: key, local: NewLocal(LocalConfig{Workers: 2, Logger: quietLog})}
		if err := ts.local.Add(model, gen(i)); err != nil {
			t.Fatal(err)
		}
		srv, err := NewServer(ServerConfig{Key: key, Local: ts.local, Logger: quietLog, OnReceipt: func(r Receipt) error {
			if err := r.Verify(); err != nil {
				t.Errorf("server got an unverifiable receipt: %v", err)
			}
			ts.mu.Lock()
			ts.receipts = append(ts.receipts, r)
			ts.mu.Unlock()
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		ts.srv = srv
		c.net.Listen(id, rtt, srv.Handler(ctx))
		c.servers = append(c.servers, ts)
		c.dir[model] = append(c.dir[model], Replica{ID: id, ReputationPPM: 900_000})
	}
	key, id := testKey(1000)
	cfg := ClientConfig{Key: key, Dialer: c.net.Dialer(id), Directory: c.dir, Seed: 1, Logger: quietLog}
	if tweak != nil {
		tweak(&cfg)
	}
	cli, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.client = cli
	return c
}

func (c *cluster) server(id gridmind.NodeID) *testServer {
	for _, s := range c.servers {
		if s.id == id {
			return s
		}
	}
	return nil
}
