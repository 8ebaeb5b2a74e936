package p2p

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/gridmind/gridmind"
)

// The root package derives NodeIDs without libp2p; this property test pins
// that derivation to libp2p's own for many random keys.
func TestNodeIDMatchesLibp2pPeerID(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var seed [ed25519.SeedSize]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		if i == 0 {
			seed = [ed25519.SeedSize]byte{} // all-zero seed: leading-zero edge cases
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		lpub, err := crypto.UnmarshalEd25519PublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := peer.IDFromPublicKey(lpub)
		if err != nil {
			t.Fatal(err)
		}
		got, want := gridmind.NodeIDFromPublicKey(pub), gridmind.NodeID(pid.String())
		if got != want {
			t.Fatalf("key %d: NodeIDFromPublicKey = %s, libp2p peer ID = %s", i, got, want)
		}
		back, err := got.PublicKey()
		if err != nil || !back.Equal(pub) {
			t.Fatalf("key %d: PublicKey() = %x, %v; want %x", i, back, err, pub)
		}
		if _, err := peer.Decode(string(got)); err != nil {
			t.Fatalf("key %d: libp2p cannot decode %s: %v", i, got, err)
		}
	}
}

func TestHostIDIsNodeID(t *testing.T) {
	key := testKey(7)
	h := newTestHost(t, 7, nil)
	if got, want := h.ID(), gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)); got != want {
		t.Fatalf("ID() = %s, want %s", got, want)
	}
	// A restarted host with the same key keeps its identity.
	h.Close()
	h2 := newTestHost(t, 7, nil)
	if h2.ID() != h.ID() {
		t.Fatalf("restart changed identity: %s -> %s", h.ID(), h2.ID())
	}
	for _, a := range h2.Addrs() {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") || !strings.HasSuffix(a, "/p2p/"+string(h2.ID())) {
			t.Errorf("address %q: want a loopback multiaddr ending in /p2p/<id>", a)
		}
	}
	if len(h2.Addrs()) != 2 {
		t.Errorf("Addrs() = %v, want one TCP and one QUIC address", h2.Addrs())
	}
}

func TestConfigErrors(t *testing.T) {
	good := testKey(1)
	tests := []struct {
		name string
		cfg  Config
		want string // substring naming the field
	}{
		{"no key", Config{LoopbackOnly: true}, "key"},
		{"short key", Config{Key: good[:10], LoopbackOnly: true}, "key"},
		{"bad listen", Config{Key: good, ListenAddrs: []string{"tcp:4001"}}, "listen_addrs[0]"},
		{"public listen in loopback mode", Config{Key: good, LoopbackOnly: true, ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0"}}, "listen_addrs[0]"},
		{"bootstrap without peer id", Config{Key: good, LoopbackOnly: true, Bootstrap: []string{"/ip4/127.0.0.1/tcp/4001"}}, "bootstrap[0]"},
		{"bootstrap garbage", Config{Key: good, LoopbackOnly: true, Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBogus", "x"}}, "bootstrap[0]"},
		{"high below low", Config{Key: good, LoopbackOnly: true, ConnLow: 10, ConnHigh: 5}, "conn_high"},
		{"negative limit", Config{Key: good, LoopbackOnly: true, Limits: Limits{StreamsPerPeer: -1}}, "limits.streams_per_peer"},
		{"negative memory", Config{Key: good, LoopbackOnly: true, Limits: Limits{Memory: -1}}, "limits.memory"},
		{"negative message size", Config{Key: good, LoopbackOnly: true, MaxMessageSize: -1}, "max_message_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger()
			h, err := New(context.Background(), tt.cfg)
			if err == nil {
				h.Close()
				t.Fatal("New succeeded, want an error")
			}
			if gridmind.KindOf(err) != gridmind.KindInvalid {
				t.Errorf("kind = %v, want invalid (err: %v)", gridmind.KindOf(err), err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %q", err, tt.want)
			}
		})
	}
}
