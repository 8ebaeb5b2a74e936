package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/gridmind/gridmind"
)

// DHTPrefix keeps gridmind's Kademlia DHT apart from the public IPFS one.
const DHTPrefix = "/gridmind"

// ErrClosed is returned by calls on a closed Host, Topic or Subscription.
var ErrClosed = errors.New("p2p: closed")

// Host is one gridmind node on the network: a libp2p host with its DHT and
// GossipSub router. All methods are safe for concurrent use.
type Host struct {
	cfg  Config
	log  *slog.Logger
	self peer.ID
	id   gridmind.NodeID

	host host.Host
	dht  *dht.IpfsDHT
	ps   *pubsub.PubSub
	bw   *metrics.BandwidthCounter

	tracer *tracer
	rate   *streamRate // inbound streams per (peer, protocol)

	// ctx lives until Close; pubsub and everything else started here stop with it.
	ctx    context.Context
	cancel context.CancelFunc

	stats counters

	maintainOnce sync.Once
	wg           sync.WaitGroup // goroutines started here; Close waits for them

	listenFailed []string // configured listen addresses libp2p did not bind

	mu     sync.Mutex
	topics map[string]*Topic
	closed bool
}

// New starts a host: TCP and QUIC transports, Noise, yamux, a resource
// manager with explicit limits, a connection manager, ping, a Kademlia DHT in
// server mode under DHTPrefix, and GossipSub with queues sized so that
// bursts are not dropped. It does not dial anyone; call Bootstrap or Connect.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	const op = "p2p.new"
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "key: %v", err)
	}
	self, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "key: %v", err)
	}
	rm, err := rcmgr.NewResourceManager(cfg.Limits.limiter(), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, op, "resource manager: %v", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		rm.Close()
		return nil, gridmind.E(gridmind.KindInvalid, op, "connection manager: %v", err)
	}

	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &Host{
		cfg: cfg, log: cfg.Logger.With("component", "p2p"), self: self, id: gridmind.NodeID(self.String()),
		bw: metrics.NewBandwidthCounter(), ctx: hctx, cancel: cancel,
		topics: make(map[string]*Topic),
	}
	h.stats.init()
	h.tracer = newTracer(h)
	h.rate = newStreamRate(cfg.Limits.StreamRate, cfg.Limits.StreamBurst, maxRateEntries, time.Now)

	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		// Transports, security and muxer are named explicitly so that no
		// default (WebRTC, WebTransport, TLS) sneaks in.
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.BandwidthReporter(h.bw),
		libp2p.DialRanker(tcpFirstRanker),
		libp2p.Ping(true),
		libp2p.DisableMetrics(),
		libp2p.Routing(func(lh host.Host) (routing.PeerRouting, error) {
			d, err := dht.New(lh, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(DHTPrefix))
			h.dht = d
			return d, err
		}),
	}
	if cfg.LoopbackOnly {
		opts = append(opts,
			libp2p.ConnectionGater(loopbackGater{}),
			libp2p.AddrsFactory(keepLoopback),
			libp2p.DisableRelay(),
			libp2p.ForceReachabilityPrivate(),
			libp2p.DisableIdentifyAddressDiscovery(),
		)
	} else {
		opts = append(opts, libp2p.NATPortMap(), libp2p.EnableHolePunching(), libp2p.EnableAutoNATv2())
	}
	if err := checkListenPorts(cfg.ListenAddrs); err != nil {
		cancel()
		cm.Close()
		rm.Close()
		return nil, err
	}
	lh, err := libp2p.New(opts...)
	if err != nil {
		cancel()
		if h.dht != nil {
			h.dht.Close()
		}
		return nil, gridmind.E(gridmind.KindUnavailable, op, "start libp2p host: %v", err)
	}
	h.host = lh
	if miss := missingListen(cfg.ListenAddrs, lh.Network().ListenAddresses()); len(miss) > 0 {
		h.listenFailed = miss
		h.log.Warn("WARNING: could not listen on some addresses; peers cannot reach this node there", "failed", miss, "listening", lh.Network().ListenAddresses())
	}

	h.ps, err = pubsub.NewGossipSub(hctx, lh,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// pubsub v0.19 publishes only to mesh peers by default, so a message
		// published before the first heartbeat has formed the mesh reaches
		// no one and is lost. Our messages are small and coordination-critical
		// (round membership, heartbeats): send our own to every topic peer.
		pubsub.WithFloodPublish(true),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerOutboundQueueSize(1024),
		pubsub.WithMaxMessageSize(cfg.MaxMessageSize),
		pubsub.WithRawTracer(h.tracer),
	)
	if err != nil {
		h.Close()
		return nil, gridmind.E(gridmind.KindInternal, op, "start gossipsub: %v", err)
	}
	h.log.Debug("host started", "id", h.id, "addrs", h.Addrs())
	return h, nil
}

// ListenFailures are the configured listen addresses that could not be bound.
func (h *Host) ListenFailures() []string { return h.listenFailed }

// ID is this node's identity.
func (h *Host) ID() gridmind.NodeID { return h.id }

// Addrs are the addresses others can dial, as full multiaddrs with /p2p/<id>.
func (h *Host) Addrs() []string {
	suffix := "/p2p/" + h.self.String()
	var out []string
	for _, a := range h.host.Addrs() {
		out = append(out, a.String()+suffix)
	}
	sort.Strings(out)
	return out
}

// Connect dials a full multiaddr ending in /p2p/<id>.
func (h *Host) Connect(ctx context.Context, addr string) error {
	const op = "p2p.connect"
	info, err := parseAddr(addr)
	if err != nil {
		return gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	if info.ID == h.self {
		return gridmind.E(gridmind.KindInvalid, op, "address %q is this node itself", shorten(addr))
	}
	if err := h.host.Connect(ctx, *info); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "peer %s: %v", gridmind.NodeID(info.ID.String()).Short(), err)
	}
	return nil
}

// Bootstrap dials every configured bootstrap peer (in parallel, best
// effort) and starts a DHT refresh so the node learns about the rest of the
// network. It fails only if bootstrap peers are configured and none of them
// could be reached; with none configured (the first node) it just returns.
// From the first call on, the host also redials its bootstrap peers
// whenever it is left with fewer than minPeers connections (see maintain).
func (h *Host) Bootstrap(ctx context.Context) error {
	h.maintainOnce.Do(func() { h.wg.Go(h.maintain) })
	ok, tried, lastErr := h.dialBootstrap(ctx)
	if err := h.dht.Bootstrap(ctx); err != nil {
		return gridmind.E(gridmind.KindInternal, "p2p.bootstrap", "dht: %v", err)
	}
	if tried > 0 && ok == 0 {
		return gridmind.E(gridmind.KindUnavailable, "p2p.bootstrap", "none of %d bootstrap peers reachable, last error: %v", tried, lastErr)
	}
	return nil
}

// bootstrapPeers groups the configured addresses by peer, so that one dial
// per peer sees all of its addresses and the TCP-first ranking applies.
func (h *Host) bootstrapPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int)
	for _, addr := range h.cfg.Bootstrap {
		info, err := parseAddr(addr) // already checked in withDefaults
		if err != nil || info.ID == h.self {
			continue
		}
		if i, ok := index[info.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, info.Addrs...)
			continue
		}
		index[info.ID] = len(out)
		out = append(out, *info)
	}
	return out
}

// dialBootstrap dials the bootstrap peers not yet connected, in parallel.
func (h *Host) dialBootstrap(ctx context.Context) (ok, tried int, lastErr error) {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for _, info := range h.bootstrapPeers() {
		tried++
		if h.host.Network().Connectedness(info.ID) == network.Connected {
			ok++
			continue
		}
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			err := h.host.Connect(dctx, info)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lastErr = err
				h.log.Warn("bootstrap peer unreachable", "peer", info.ID.String(), "err", err)
				return
			}
			ok++
		})
	}
	wg.Wait()
	return ok, tried, lastErr
}

// minPeers is the connection count below which a host redials its
// bootstrap peers. A burst of dials can lose a fresh connection (a busy
// QUIC listener drops handshakes beyond its accept queue), and a bootstrap
// node may restart; without this a node that lost its only peer would stay
// alone until the DHT's next refresh, ten minutes later.
const minPeers = 3

// maintainInterval is how often maintain checks when nothing wakes it.
const maintainInterval = 5 * time.Second

// maintain redials bootstrap peers and refreshes the DHT whenever the
// host has fewer than minPeers connections. It runs until Close.
func (h *Host) maintain() {
	wake := make(chan struct{}, 1)
	notifee := &network.NotifyBundle{DisconnectedF: func(nw network.Network, _ network.Conn) {
		if len(nw.Peers()) < minPeers {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}}
	h.host.Network().Notify(notifee)
	defer h.host.Network().StopNotify(notifee)
	tick := time.NewTicker(maintainInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		if len(h.host.Network().Peers()) >= minPeers || len(h.cfg.Bootstrap) == 0 {
			continue
		}
		before := len(h.host.Network().Peers())
		if ok, _, _ := h.dialBootstrap(h.ctx); ok > 0 {
			// In a network smaller than minPeers this runs every tick with
			// the bootstrap peers still connected: say so only when a
			// connection was actually made.
			if now := len(h.host.Network().Peers()); now > before {
				h.log.Info("reconnected to bootstrap peers", "connected", ok, "peers", now)
			}
			_ = h.dht.Bootstrap(h.ctx)
		}
	}
}

// Peers lists the nodes this host has a live connection to, sorted.
func (h *Host) Peers() []gridmind.NodeID {
	return toNodeIDs(h.host.Network().Peers())
}

// RoutingTableSize is the number of peers in the DHT routing table; DHT
// lookups and Provide need at least one.
func (h *Host) RoutingTableSize() int { return h.dht.RoutingTable().Size() }

// Ping measures one round trip to a node with the libp2p ping protocol,
// dialing it first if needed.
func (h *Host) Ping(ctx context.Context, id gridmind.NodeID) (time.Duration, error) {
	const op = "p2p.ping"
	pid, err := decodeID(id)
	if err != nil {
		return 0, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops ping's goroutine after the first result
	select {
	case res := <-ping.Ping(ctx, h.host, pid):
		if res.Error != nil {
			return 0, gridmind.E(gridmind.KindUnavailable, op, "peer %s: %v", id.Short(), res.Error)
		}
		return res.RTT, nil
	case <-ctx.Done():
		return 0, gridmind.E(gridmind.KindUnavailable, op, "peer %s: %w", id.Short(), ctx.Err())
	}
}

// Protect keeps the connection manager from trimming the connection to id
// while any tag is set (for example the peers of a running training round).
func (h *Host) Protect(id gridmind.NodeID, tag string) {
	if pid, err := decodeID(id); err == nil {
		h.host.ConnManager().Protect(pid, tag)
	}
}

// Unprotect removes a tag set by Protect.
func (h *Host) Unprotect(id gridmind.NodeID, tag string) {
	if pid, err := decodeID(id); err == nil {
		h.host.ConnManager().Unprotect(pid, tag)
	}
}

// Close stops pubsub, the DHT and the libp2p host, and cancels every open
// subscription. It is safe to call more than once.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	topics := h.topics
	h.topics = nil
	h.mu.Unlock()

	for _, t := range topics {
		t.cancelSubs()
	}
	h.cancel() // stops pubsub's event loop and maintain
	h.wg.Wait()
	var errs []error
	if h.dht != nil {
		if err := h.dht.Close(); err != nil {
			errs = append(errs, fmt.Errorf("dht: %w", err))
		}
	}
	if h.host != nil {
		if err := h.host.Close(); err != nil {
			errs = append(errs, fmt.Errorf("host: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return gridmind.E(gridmind.KindInternal, "p2p.close", "%w", err)
	}
	return nil
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func decodeID(id gridmind.NodeID) (peer.ID, error) {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return "", fmt.Errorf("node id %q: %w", shorten(string(id)), err)
	}
	return pid, nil
}

func toNodeIDs(ids []peer.ID) []gridmind.NodeID {
	out := make([]gridmind.NodeID, 0, len(ids))
	for _, p := range ids {
		out = append(out, gridmind.NodeID(p.String()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
