package p2p

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/gridmind/gridmind"
)

// testKey derives a deterministic ed25519 key from seed.
func testKey(seed uint64) ed25519.PrivateKey {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var s [ed25519.SeedSize]byte
	for i := range s {
		s[i] = byte(rng.Uint32())
	}
	return ed25519.NewKeyFromSeed(s[:])
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestHost starts a loopback-only host and closes it at cleanup.
func newTestHost(t testing.TB, seed uint64, mod func(*Config)) *Host {
	t.Helper()
	cfg := Config{Key: testKey(seed), LoopbackOnly: true, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// connect dials b from a with a deadline.
func connect(t testing.TB, a, b *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Addrs()[0]); err != nil {
		t.Fatalf("connect %s -> %s: %v", a.ID().Short(), b.ID().Short(), err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := pollUntil(context.Background(), timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

func tcpOnly(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"} }

func contains(ids []gridmind.NodeID, id gridmind.NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func mustLibp2pKey(k ed25519.PrivateKey) crypto.PrivKey {
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return priv
}

// connected reports whether h has a live connection to id.
func (h *Host) connected(id gridmind.NodeID) bool {
	pid, err := decodeID(id)
	return err == nil && h.host.Network().Connectedness(pid) == network.Connected
}
