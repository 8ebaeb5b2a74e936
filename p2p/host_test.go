package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/gridmind/gridmind"
)

func TestConnectPingAndPeers(t *testing.T) {
	a := newTestHost(t, 1, nil)
	b := newTestHost(t, 2, nil)
	connect(t, a, b)
	if !contains(a.Peers(), b.ID()) {
		t.Fatalf("a.Peers() = %v, want it to contain %s", a.Peers(), b.ID())
	}
	waitFor(t, 5*time.Second, "b to list a as a peer", func() bool { return contains(b.Peers(), a.ID()) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := a.Ping(ctx, b.ID())
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if rtt <= 0 || rtt > 5*time.Second {
		t.Fatalf("Ping RTT = %v, want > 0 and sane", rtt)
	}
	if _, err := a.Ping(ctx, "not-a-node-id"); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("Ping(bad id) err = %v, want kind invalid", err)
	}
}

func TestConnectErrors(t *testing.T) {
	a := newTestHost(t, 1, nil)
	b := newTestHost(t, 2, nil)
	bID := string(b.ID())
	tests := []struct {
		name string
		addr string
		kind gridmind.Kind
	}{
		{"garbage", "hello", gridmind.KindInvalid},
		{"no peer id", "/ip4/127.0.0.1/tcp/1", gridmind.KindInvalid},
		{"self", a.Addrs()[0], gridmind.KindInvalid},
		// The loopback gater must refuse to dial anything off this machine.
		{"non-loopback refused", "/ip4/10.11.12.13/tcp/4001/p2p/" + bID, gridmind.KindUnavailable},
		{"nobody listening", "/ip4/127.0.0.1/tcp/1/p2p/" + bID, gridmind.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := a.Connect(ctx, tt.addr)
			if err == nil {
				t.Fatalf("Connect(%q) succeeded", tt.addr)
			}
			if gridmind.KindOf(err) != tt.kind {
				t.Fatalf("Connect(%q) kind = %v, want %v (err: %v)", tt.addr, gridmind.KindOf(err), tt.kind, err)
			}
		})
	}
	if len(a.Peers()) != 0 {
		t.Fatalf("a has peers %v after failed dials", a.Peers())
	}
}

func TestBootstrap(t *testing.T) {
	first := newTestHost(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap with no peers configured: %v", err)
	}
	second := newTestHost(t, 2, func(c *Config) { c.Bootstrap = first.Addrs() })
	if err := second.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if !contains(second.Peers(), first.ID()) {
		t.Fatalf("after Bootstrap peers = %v, want %s", second.Peers(), first.ID())
	}
	waitFor(t, 5*time.Second, "DHT routing table to hold the bootstrap peer", func() bool { return second.RoutingTableSize() > 0 })

	// A closed port for a peer id: configured but unreachable.
	dead := newTestHost(t, 3, tcpOnly)
	deadAddr := dead.Addrs()[0]
	dead.Close()
	lonely := newTestHost(t, 4, func(c *Config) { c.Bootstrap = []string{deadAddr} })
	err := lonely.Bootstrap(ctx)
	if gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Fatalf("Bootstrap to a dead peer: err = %v, want kind unavailable", err)
	}
}

// A host that loses its bootstrap connection redials it on its own.
func TestReconnectsToBootstrap(t *testing.T) {
	first := newTestHost(t, 1, nil)
	second := newTestHost(t, 2, func(c *Config) { c.Bootstrap = first.Addrs() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := second.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	// Let the DHT's start-up refresh finish: its lookups dial peers too, and
	// this test is about the host's own redial.
	select {
	case <-second.dht.RefreshRoutingTable():
	case <-ctx.Done():
		t.Fatal("DHT refresh did not finish")
	}
	var connects, disconnects atomic.Int64
	second.host.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(network.Network, network.Conn) { connects.Add(1) },
		DisconnectedF: func(network.Network, network.Conn) { disconnects.Add(1) },
	})
	// The bootstrap node drops the connection, as a restarting or
	// overloaded node would.
	if err := first.host.Network().ClosePeer(second.self); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*maintainInterval, "second to notice and redial its bootstrap peer", func() bool {
		return disconnects.Load() > 0 && connects.Load() > 0 && second.connected(first.ID())
	})
}

// echo serves a protocol that copies the stream back until EOF.
func echo(from gridmind.NodeID, s Stream) {
	defer s.Close()
	io.Copy(s, s)
}

func TestStreamRoundTrip(t *testing.T) {
	const proto = "/gridmind/test-echo/1.0.0"
	for _, tt := range []struct {
		name   string
		listen string
	}{
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			only := func(c *Config) { c.ListenAddrs = []string{tt.listen} }
			a := newTestHost(t, 1, only)
			b := newTestHost(t, 2, only)
			var gotFrom atomic.Value
			b.Handle(proto, func(from gridmind.NodeID, s Stream) { gotFrom.Store(from); echo(from, s) })
			connect(t, a, b)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := a.Open(ctx, b.ID(), proto)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			want := make([]byte, 3<<20+17) // several yamux windows, odd length
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			var got []byte
			var readErr error
			var wg sync.WaitGroup
			wg.Go(func() { got, readErr = io.ReadAll(s) })
			if _, err := s.Write(want); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := s.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			wg.Wait()
			s.Close()
			if readErr != nil || !bytes.Equal(got, want) {
				t.Fatalf("echo returned %d bytes (err %v), want the %d bytes sent", len(got), readErr, len(want))
			}
			if gotFrom.Load() != a.ID() {
				t.Fatalf("handler saw from = %v, want %s", gotFrom.Load(), a.ID())
			}
			// The bandwidth counter folds traffic in once a second.
			waitFor(t, 5*time.Second, "bytes to be counted", func() bool {
				st := a.Stats()
				return st.BytesOut >= int64(len(want)) && st.BytesIn >= int64(len(want))
			})
		})
	}
}

func TestStreamErrorsAndHandlerPanic(t *testing.T) {
	a := newTestHost(t, 1, nil)
	b := newTestHost(t, 2, nil)
	b.Handle("/gridmind/test-panic/1.0.0", func(from gridmind.NodeID, s Stream) {
		var buf [1]byte
		s.Read(buf[:])
		panic("handler bug")
	})
	b.Handle("/gridmind/test-echo/1.0.0", echo)
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, tt := range []struct {
		name, to, proto string
		kind            gridmind.Kind
	}{
		{"bad protocol", string(b.ID()), "no-slash", gridmind.KindInvalid},
		{"bad node id", "xyz", "/gridmind/test-echo/1.0.0", gridmind.KindInvalid},
		{"self", string(a.ID()), "/gridmind/test-echo/1.0.0", gridmind.KindInvalid},
		{"unsupported protocol", string(b.ID()), "/gridmind/nope/1.0.0", gridmind.KindUnavailable},
	} {
		s, err := a.Open(ctx, gridmind.NodeID(tt.to), tt.proto)
		if err == nil {
			// libp2p may negotiate lazily; the failure then shows on first use.
			_, err = s.Write([]byte("x"))
			if err == nil {
				_, err = s.Read(make([]byte, 1))
			}
			s.Reset()
			if err == nil {
				t.Errorf("%s: stream worked, want an error", tt.name)
			}
			continue
		}
		if gridmind.KindOf(err) != tt.kind {
			t.Errorf("%s: kind = %v, want %v (err: %v)", tt.name, gridmind.KindOf(err), tt.kind, err)
		}
	}

	s, err := a.Open(ctx, b.ID(), "/gridmind/test-panic/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("boom"))
	s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(s); err == nil {
		t.Fatal("stream to a panicking handler ended cleanly, want a reset")
	}
	// b survived the panic and still serves streams.
	s, err = a.Open(ctx, b.ID(), "/gridmind/test-echo/1.0.0")
	if err != nil {
		t.Fatalf("Open after panic: %v", err)
	}
	s.Write([]byte("still alive"))
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "still alive" {
		t.Fatalf("echo after panic = %q, %v", got, err)
	}
}

// The explicit resource-manager limits must allow many more concurrent
// streams per peer than libp2p's defaults (about 75) and must still be a
// limit: a small configured value is enforced.
func TestStreamLimits(t *testing.T) {
	const proto = "/gridmind/test-hold/1.0.0"
	for _, tt := range []struct {
		name    string
		limits  Limits
		open    int
		wantErr bool
	}{
		{"defaults allow 300", Limits{}, 300, false},
		{"configured 4 refuses the 5th", Limits{StreamsPerPeer: 4}, 5, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mod := func(c *Config) { tcpOnly(c); c.Limits = tt.limits }
			a := newTestHost(t, 1, mod)
			b := newTestHost(t, 2, mod)
			release := make(chan struct{})
			var served atomic.Int64
			b.Handle(proto, func(from gridmind.NodeID, s Stream) {
				defer s.Close()
				var buf [1]byte
				if _, err := io.ReadFull(s, buf[:]); err != nil {
					return
				}
				served.Add(1)
				<-release
			})
			defer close(release)
			connect(t, a, b)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var opened int
			var firstErr error
			for range tt.open {
				s, err := a.Open(ctx, b.ID(), proto)
				if err == nil {
					_, err = s.Write([]byte{1})
				}
				if err != nil {
					firstErr = err
					break
				}
				defer s.Reset()
				opened++
			}
			if tt.wantErr {
				if firstErr == nil {
					t.Fatalf("opened %d streams, want the limit to refuse one", opened)
				}
				if opened != tt.open-1 {
					t.Fatalf("opened %d streams before the error, want %d (err: %v)", opened, tt.open-1, firstErr)
				}
				if !strings.Contains(firstErr.Error(), "resource limit") {
					t.Fatalf("error %q does not say it hit a resource limit", firstErr)
				}
				return
			}
			if firstErr != nil {
				t.Fatalf("stream %d failed: %v", opened+1, firstErr)
			}
			waitFor(t, 10*time.Second, "all streams to reach the handler", func() bool { return served.Load() == int64(tt.open) })
		})
	}
}

func TestProvideFindProviders(t *testing.T) {
	a := newTestHost(t, 1, nil)
	b := newTestHost(t, 2, nil)
	c := newTestHost(t, 3, nil)
	connect(t, a, b)
	connect(t, c, b) // c knows only b
	for _, h := range []*Host{a, b, c} {
		waitFor(t, 5*time.Second, "routing tables", func() bool { return h.RoutingTableSize() > 0 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Provide(ctx, "checkpoint/abc"); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	got, err := c.FindProviders(ctx, "checkpoint/abc", 5)
	if err != nil {
		t.Fatalf("FindProviders: %v", err)
	}
	if len(got) != 1 || got[0] != a.ID() {
		t.Fatalf("FindProviders(checkpoint/abc) = %v, want [%s]", got, a.ID())
	}
	none, err := c.FindProviders(ctx, "checkpoint/other", 5)
	if err != nil || len(none) != 0 {
		t.Fatalf("FindProviders(unprovided key) = %v, %v; want none", none, err)
	}
	// c can now open a stream to a by ID alone, through the DHT.
	a.Handle("/gridmind/test-echo/1.0.0", echo)
	s, err := c.Open(ctx, a.ID(), "/gridmind/test-echo/1.0.0")
	if err != nil {
		t.Fatalf("Open to a provider found in the DHT: %v", err)
	}
	s.Write([]byte("hi"))
	s.CloseWrite()
	if got, err := io.ReadAll(s); err != nil || string(got) != "hi" {
		t.Fatalf("echo = %q, %v", got, err)
	}

	lonely := newTestHost(t, 4, nil)
	if err := lonely.Provide(ctx, "x"); gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Fatalf("Provide with an empty routing table: err = %v, want kind unavailable", err)
	}
	if err := a.Provide(ctx, ""); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Fatalf("Provide(\"\"): err = %v, want kind invalid", err)
	}
}

// Close must stop every goroutine the host started.
func TestCloseStopsGoroutines(t *testing.T) {
	// Warm up libp2p's process-wide goroutines (metrics sweeper and the like).
	warm := newTestHost(t, 99, nil)
	warm.Close()
	base := runtime.NumGoroutine()

	func() {
		hosts := make([]*Host, 3)
		for i := range hosts {
			h, err := New(context.Background(), Config{Key: testKey(uint64(10 + i)), LoopbackOnly: true, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			hosts[i] = h
		}
		connect(t, hosts[0], hosts[1])
		connect(t, hosts[2], hosts[1])
		if err := hosts[0].Bootstrap(context.Background()); err != nil { // starts maintain
			t.Fatal(err)
		}
		topic, err := hosts[0].Join("leak", nil)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := topic.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := sub.Next(context.Background()); done <- err }()
		for _, h := range hosts {
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Next after Close = %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Next still blocked 10s after Host.Close")
		}
	}()
	var now int
	if err := pollUntil(context.Background(), 20*time.Second, func() bool {
		now = runtime.NumGoroutine()
		return now <= base+2
	}); err != nil {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%d goroutines after closing 3 hosts, %d before:\n%s", now, base, buf[:n])
	}
}

// A peer whose address failed once (it was not up yet) is in dial
// backoff for seconds; a stream asked for explicitly once it is up must
// still reach it rather than fail with "dial backoff".
func TestOpenDialsAPeerInBackoff(t *testing.T) {
	const proto = "/gridmind/test-echo/1.0.0"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there until b starts below
	a := newTestHost(t, 1, tcpOnly)
	bKey := testKey(2)
	bID := gridmind.NodeIDFromPublicKey(bKey.Public().(ed25519.PublicKey))
	pid, err := decodeID(bID)
	if err != nil {
		t.Fatal(err)
	}
	a.host.Peerstore().AddAddr(pid, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Open(ctx, bID, proto); err == nil {
		t.Fatal("Open reached a peer that is not running")
	}
	b := newTestHost(t, 2, func(c *Config) { c.ListenAddrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)} })
	b.Handle(proto, echo)
	s, err := a.Open(ctx, bID, proto)
	if err != nil {
		t.Fatalf("Open after the peer came up: %v", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hi" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}
