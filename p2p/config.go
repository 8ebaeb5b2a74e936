package p2p

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/gridmind/gridmind"
)

// Config says how to start a Host. Only Key is required.
type Config struct {
	// Key is the node identity; the peer ID equals gridmind.NodeIDFromPublicKey(Key.Public()).
	Key ed25519.PrivateKey
	// ListenAddrs are multiaddrs to listen on. Default: DefaultListenAddrs, or
	// LoopbackListenAddrs when LoopbackOnly is set.
	ListenAddrs []string
	// Bootstrap are full multiaddrs ending in /p2p/<id> that Host.Bootstrap dials.
	Bootstrap []string
	// LoopbackOnly keeps everything on 127.0.0.1 for tests and devnets: it
	// listens on loopback only, refuses to dial or accept anything else,
	// advertises only loopback addresses, and turns off relays, NAT port
	// mapping, hole punching and reachability probing.
	LoopbackOnly bool
	// ConnLow and ConnHigh are the connection manager's water marks: above
	// ConnHigh it trims connections down to ConnLow. Default 64 and 192.
	ConnLow, ConnHigh int
	// Limits are the resource manager's limits; the zero value means defaults.
	Limits Limits
	// MaxMessageSize caps one gossip message in bytes. Default 1 MiB.
	MaxMessageSize int
	// Logger receives the host's own logs. Default slog.Default().
	Logger *slog.Logger
}

// Limits are explicit resource-manager limits. libp2p's defaults cap a peer
// at a few dozen concurrent streams per protocol, far below what an
// all-reduce over many shards opens at once, so gridmind sets its own.
// "Gridmind protocol" means any protocol registered with Host.Handle; the
// values apply to each direction (inbound and outbound) separately.
type Limits struct {
	StreamsPerPeer     int   // concurrent streams one peer may hold on one protocol; default 512
	StreamsPerProtocol int   // concurrent streams on one protocol over all peers; default 8192
	Conns              int   // concurrent connections; default 4 × ConnHigh
	Memory             int64 // bytes libp2p may reserve for buffers and windows; default 1 GiB
	FileDescriptors    int   // file descriptors libp2p may use; default 8192
	Unlimited          bool  // no limits at all (benchmarks only)
	// StreamRate is how many inbound streams per second one peer may open
	// on one gridmind protocol (default 200), StreamBurst how many at once
	// after a quiet spell (default 1000); streams over it are reset.
	StreamRate  float64
	StreamBurst int
}

// maxRateEntries bounds the per-(peer, protocol) stream-rate table.
const maxRateEntries = 16384

// Default listen addresses of a production node. Port 4201, not libp2p's
// customary 4001, because 4001 is IPFS's (Kubo's) and a machine running
// both would fail to start one of them; no other gridmind default uses it.
var (
	DefaultListenAddrs  = []string{"/ip4/0.0.0.0/tcp/4201", "/ip4/0.0.0.0/udp/4201/quic-v1"}
	LoopbackListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
)

const (
	defaultConnLow        = 64
	defaultConnHigh       = 192
	defaultMaxMessageSize = 1 << 20
)

// withDefaults fills zero fields and checks the rest; errors name the field.
func (c Config) withDefaults() (Config, error) {
	const op = "p2p.config"
	if len(c.Key) != ed25519.PrivateKeySize {
		return c, gridmind.E(gridmind.KindInvalid, op, "key: want a %d-byte ed25519 private key, got %d bytes", ed25519.PrivateKeySize, len(c.Key))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.ListenAddrs) == 0 {
		if c.LoopbackOnly {
			c.ListenAddrs = LoopbackListenAddrs
		} else {
			c.ListenAddrs = DefaultListenAddrs
		}
	}
	for i, s := range c.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return c, gridmind.E(gridmind.KindInvalid, op, "listen_addrs[%d] %q: %v", i, s, err)
		}
		if c.LoopbackOnly && !manet.IsIPLoopback(a) {
			return c, gridmind.E(gridmind.KindInvalid, op, "listen_addrs[%d] %q: not a loopback address but loopback_only is set", i, s)
		}
	}
	for i, s := range c.Bootstrap {
		if _, err := parseAddr(s); err != nil {
			return c, gridmind.E(gridmind.KindInvalid, op, "bootstrap[%d]: %v", i, err)
		}
	}
	if c.ConnLow == 0 {
		c.ConnLow = defaultConnLow
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = max(defaultConnHigh, c.ConnLow)
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow {
		return c, gridmind.E(gridmind.KindInvalid, op, "conn_low %d, conn_high %d: want 0 <= conn_low <= conn_high", c.ConnLow, c.ConnHigh)
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.MaxMessageSize < 0 {
		return c, gridmind.E(gridmind.KindInvalid, op, "max_message_size %d: must be positive", c.MaxMessageSize)
	}
	l := &c.Limits
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"limits.streams_per_peer", &l.StreamsPerPeer, 512},
		{"limits.streams_per_protocol", &l.StreamsPerProtocol, 8192},
		{"limits.conns", &l.Conns, 4 * c.ConnHigh},
		{"limits.file_descriptors", &l.FileDescriptors, 8192},
	} {
		if *f.v < 0 {
			return c, gridmind.E(gridmind.KindInvalid, op, "%s %d: must not be negative", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if l.StreamRate < 0 || l.StreamBurst < 0 {
		return c, gridmind.E(gridmind.KindInvalid, op, "limits.stream_rate %v, stream_burst %d: must not be negative", l.StreamRate, l.StreamBurst)
	}
	if l.StreamRate == 0 {
		l.StreamRate = 200
	}
	if l.StreamBurst == 0 {
		l.StreamBurst = 1000
	}
	if l.Memory < 0 {
		return c, gridmind.E(gridmind.KindInvalid, op, "limits.memory %d: must not be negative", l.Memory)
	}
	if l.Memory == 0 {
		l.Memory = 1 << 30
	}
	return c, nil
}

// limiter turns Limits into a resource-manager limiter. It starts from
// libp2p's defaults (which carry sensible limits for identify, ping,
// autonat and the like) scaled to l.Memory, then overrides the defaults for
// protocols without their own entry, which are gridmind's, plus the peer,
// transient and system scopes those streams also pass through.
func (l Limits) limiter() rcmgr.Limiter {
	if l.Unlimited {
		return rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits)
	}
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(l.Memory, l.FileDescriptors)

	both := func(n int) rcmgr.ResourceLimits {
		v := rcmgr.LimitVal(n)
		return rcmgr.ResourceLimits{Streams: rcmgr.LimitVal(min(2*n, math.MaxInt32)), StreamsInbound: v, StreamsOutbound: v}
	}
	// A peer may use several protocols at once; give it room for a few.
	perPeerAll := min(4*l.StreamsPerPeer, l.StreamsPerProtocol)
	conns := rcmgr.LimitVal(l.Conns)
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: 2 * conns, ConnsInbound: conns, ConnsOutbound: conns,
			Streams: rcmgr.LimitVal(4 * l.StreamsPerProtocol), StreamsInbound: rcmgr.LimitVal(2 * l.StreamsPerProtocol), StreamsOutbound: rcmgr.LimitVal(2 * l.StreamsPerProtocol),
			Memory: rcmgr.LimitVal64(l.Memory), FD: rcmgr.LimitVal(l.FileDescriptors),
		},
		// Every connection is transient until its handshake completes and
		// every stream until its protocol is negotiated, so a burst (many
		// nodes bootstrapping to one, an all-reduce opening its streams)
		// needs transient room as large as the steady-state limits.
		Transient: rcmgr.ResourceLimits{
			Conns: 2 * conns, ConnsInbound: conns, ConnsOutbound: conns,
			Streams: rcmgr.LimitVal(2 * l.StreamsPerProtocol), StreamsInbound: rcmgr.LimitVal(l.StreamsPerProtocol), StreamsOutbound: rcmgr.LimitVal(l.StreamsPerProtocol),
		},
		ProtocolDefault:     both(l.StreamsPerProtocol),
		ProtocolPeerDefault: both(l.StreamsPerPeer),
		PeerDefault:         both(perPeerAll),
	}
	return rcmgr.NewFixedLimiter(partial.Build(base))
}

// loopbackGater refuses every dial to and connection from a non-loopback
// address, so a LoopbackOnly host cannot leak onto the network even if a
// peer advertises public addresses.
type loopbackGater struct{}

func (loopbackGater) InterceptPeerDial(peer.ID) bool { return true }
func (loopbackGater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool {
	return manet.IsIPLoopback(a)
}
func (loopbackGater) InterceptAccept(c network.ConnMultiaddrs) bool {
	return manet.IsIPLoopback(c.RemoteMultiaddr())
}
func (loopbackGater) InterceptSecured(_ network.Direction, _ peer.ID, c network.ConnMultiaddrs) bool {
	return manet.IsIPLoopback(c.RemoteMultiaddr())
}
func (loopbackGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// keepLoopback is the AddrsFactory of LoopbackOnly hosts.
func keepLoopback(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := addrs[:0:0]
	for _, a := range addrs {
		if manet.IsIPLoopback(a) {
			out = append(out, a)
		}
	}
	return out
}

// parseAddr parses a full multiaddr ending in /p2p/<id>.
func parseAddr(s string) (*peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", shorten(s), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return nil, fmt.Errorf("address %q: want a multiaddr ending in /p2p/<peer id>: %w", shorten(s), err)
	}
	return info, nil
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// quicAfterTCP is how long a dial waits for TCP before also trying QUIC.
// With libp2p's 250 ms, a busy node often completed both; and a QUIC
// listener flooded with handshakes (many nodes bootstrapping to one) drops
// connections the dialer already counted as open, which killed GossipSub
// streams and lost messages. In a 50-host loopback mesh, 1 s took that from
// 13-22 dropped streams per run to none.
const quicAfterTCP = time.Second

// tcpFirstRanker dials TCP addresses before QUIC ones, reversing libp2p's
// default. On loopback TCP+Noise+yamux moves bulk data about twice as fast
// as QUIC, and QUIC caps a connection at 256 concurrent streams, while
// gridmind's heavy traffic is tensor shards over many streams. QUIC is still
// tried after quicAfterTCP (or at once if every TCP dial has failed), so a
// peer reachable only by QUIC is still reached.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	first := time.Duration(-1)
	for _, r := range ranked {
		if isTCP(r.Addr) && (first < 0 || r.Delay < first) {
			first = r.Delay
		}
	}
	if first < 0 {
		return ranked
	}
	for i := range ranked {
		if isTCP(ranked[i].Addr) {
			ranked[i].Delay -= first
		} else {
			ranked[i].Delay += quicAfterTCP
		}
	}
	return ranked
}

func isTCP(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}
