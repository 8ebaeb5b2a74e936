package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
)

// Version is the software version announced in heartbeats.
var Version = "0.1.0-dev"

// PresenceTopic is the gossip topic of heartbeats.
const PresenceTopic = "/gridmind/presence/1.0.0"

// MaxClockSkew is how far a message's timestamp may be from our clock.
const MaxClockSkew = 30 * time.Second

// Options are what a Node needs besides its config.
type Options struct {
	Key    ed25519.PrivateKey
	Config Config
	Logger *slog.Logger
	// Energy, if set, reports the live energy state for heartbeats.
	Energy *EnergyMonitor
	// Serving, if set, reports the models served and their load.
	Serving func() []gridmind.ServedModel
	// Clock, if set, replaces time.Now (tests).
	Clock func() time.Time
	// Throughput, if > 0, is announced instead of running the built-in benchmark.
	ThroughputGFLOPS float64
	// RPC, if set, is the ledger RPC address a validator announces in its
	// heartbeats, so others can find a validator from gossip alone.
	RPC func() string
}

// Node is a gridmind agent: it owns a libp2p host, announces itself,
// keeps a table of peers, and hosts the parts (ledger client, trainer,
// server) that later layers attach.
type Node struct {
	opts    Options
	cfg     Config
	log     *slog.Logger
	key     ed25519.PrivateKey
	id      gridmind.NodeID
	host    *p2p.Host
	peers   *PeerTable
	metrics *metrics
	replay  *replayGuard

	warnMu   sync.Mutex
	warnings []string // problems `status` shows (no ledger, a failed listen address)

	hardware   gridmind.Hardware
	throughput float64
	started    time.Time

	presence *p2p.Topic
	presSub  *p2p.Subscription

	seqMu   sync.Mutex
	lastSeq uint64

	lastBeat atomic.Int64 // unix nanos of our last heartbeat

	wg     sync.WaitGroup
	cancel context.CancelFunc
	closed atomic.Bool
}

// New starts the network layer and joins the presence topic. Call Run to
// start announcing and Close to stop.
func New(ctx context.Context, opts Options) (*Node, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if len(opts.Key) != ed25519.PrivateKeySize {
		return nil, gridmind.E(gridmind.KindInvalid, "node", "missing or malformed ed25519 key")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	n := &Node{
		opts:   opts,
		cfg:    opts.Config,
		key:    opts.Key,
		id:     gridmind.NodeIDFromPublicKey(opts.Key.Public().(ed25519.PublicKey)),
		peers:  NewPeerTable(),
		replay: newReplayGuard(),
	}
	n.log = opts.Logger.With("node", n.id.Short())
	n.started = n.now()
	host, err := p2p.New(ctx, p2p.Config{
		Key:          opts.Key,
		ListenAddrs:  opts.Config.Listen,
		Bootstrap:    opts.Config.Bootstrap,
		LoopbackOnly: opts.Config.LoopbackOnly,
		ConnLow:      opts.Config.Limits.ConnLow,
		ConnHigh:     opts.Config.Limits.ConnHigh,
		Limits: p2p.Limits{
			StreamsPerPeer:     opts.Config.Limits.StreamsPerPeer,
			StreamsPerProtocol: opts.Config.Limits.StreamsPerProtocol,
		},
		Logger: n.log,
	})
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "node", "starting libp2p: %w", err)
	}
	n.host = host
	n.metrics = newMetrics(n)
	n.hardware = DetectHardware(ctx)
	n.throughput = opts.ThroughputGFLOPS
	if n.throughput <= 0 {
		n.throughput = MeasureThroughput()
	}
	n.presence, err = n.JoinTopic(PresenceTopic, "heartbeat", checkHeartbeat)
	if err != nil {
		host.Close()
		return nil, err
	}
	if n.presSub, err = n.presence.Subscribe(); err != nil {
		host.Close()
		return nil, err
	}
	return n, nil
}

// ID is this node's identity.
func (n *Node) ID() gridmind.NodeID { return n.id }

// Key is this node's signing key.
func (n *Node) Key() ed25519.PrivateKey { return n.key }

// Host is the network layer, for the parts that open streams or topics.
func (n *Node) Host() *p2p.Host { return n.host }

// Energy is the node's energy monitor (nil when none is configured).
func (n *Node) Energy() *EnergyMonitor { return n.opts.Energy }

// Peers is the peer table.
func (n *Node) Peers() *PeerTable { return n.peers }

// Config is the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Addrs are the node's full multiaddrs.
func (n *Node) Addrs() []string { return n.host.Addrs() }

func (n *Node) now() time.Time { return n.opts.Clock() }

// Now is the node's clock.
func (n *Node) Now() time.Time { return n.now() }

// NextSeq returns a sequence number for a message this node signs: it is
// time based, so it keeps increasing across restarts, and strictly
// increasing within a run.
func (n *Node) NextSeq() uint64 {
	n.seqMu.Lock()
	defer n.seqMu.Unlock()
	s := uint64(n.now().UnixNano())
	if s <= n.lastSeq {
		s = n.lastSeq + 1
	}
	n.lastSeq = s
	return s
}

// Run announces the node, follows peers and measures RTTs until ctx is
// cancelled or Close is called.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	defer cancel()
	if len(n.cfg.Bootstrap) > 0 {
		if err := n.host.Bootstrap(ctx); err != nil {
			n.log.Warn("bootstrap failed; will retry", "err", err)
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.receivePresence(ctx)
	}()
	n.publishHeartbeat(ctx)
	tick := time.NewTicker(n.cfg.Heartbeat.Std())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			n.wg.Wait()
			return nil
		case <-tick.C:
			n.publishHeartbeat(ctx)
			for _, id := range n.peers.Expire(n.now(), n.cfg.PeerTimeout.Std()) {
				n.log.Info("peer left", "peer", id.Short())
			}
			if len(n.host.Peers()) == 0 && len(n.cfg.Bootstrap) > 0 {
				if err := n.host.Bootstrap(ctx); err != nil {
					n.log.Debug("bootstrap retry failed", "err", err)
				}
			}
			n.pingPeers(ctx)
		}
	}
}

// Close stops Run and the network layer.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if n.presSub != nil {
		n.presSub.Cancel()
	}
	return n.host.Close()
}

// Heartbeat builds this node's current heartbeat.
func (n *Node) Heartbeat() gridmind.Heartbeat {
	hb := gridmind.Heartbeat{
		Version:          Version,
		Addrs:            n.host.Addrs(),
		Hardware:         n.hardware,
		ThroughputGFLOPS: n.throughput,
		PricePerUnit:     n.cfg.PriceAmount(),
		Region:           n.cfg.Region,
		Validator:        n.cfg.Chain.Validator,
	}
	if len(hb.Addrs) > 8 {
		hb.Addrs = hb.Addrs[:8]
	}
	if n.opts.Energy != nil {
		hb.Energy = n.opts.Energy.State()
		hb.Busy = n.opts.Energy.Busy() // placement skips providers already working
	}
	if n.opts.Serving != nil {
		hb.Serving = n.opts.Serving()
	}
	if n.opts.RPC != nil && n.cfg.Chain.Validator {
		hb.RPC = n.opts.RPC()
	}
	return hb
}

func (n *Node) publishHeartbeat(ctx context.Context) {
	if err := n.Publish(ctx, n.presence, "heartbeat", n.Heartbeat()); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("heartbeat not published", "err", err)
		}
		return
	}
	n.lastBeat.Store(n.now().UnixNano())
}

func (n *Node) heartbeatAge() time.Duration {
	last := n.lastBeat.Load()
	if last == 0 {
		return n.now().Sub(n.started)
	}
	return n.now().Sub(time.Unix(0, last))
}

func (n *Node) receivePresence(ctx context.Context) {
	for {
		msg, err := n.presSub.Next(ctx)
		if err != nil {
			return
		}
		// The validator already checked the envelope; decoding again is
		// cheap and keeps the subscription path free of shared state.
		env, err := gridmind.OpenEnvelope(msg.Data, n.now(), MaxClockSkew)
		if err != nil {
			continue
		}
		var hb gridmind.Heartbeat
		if err := env.Decode(&hb); err != nil {
			continue
		}
		if _, known := n.peers.Get(env.From); !known {
			n.log.Info("peer joined", "peer", env.From.Short(), "version", hb.Version)
		}
		n.peers.Observe(env.From, env.Seq, hb, n.now())
	}
}

func (n *Node) pingPeers(ctx context.Context) {
	connected := map[gridmind.NodeID]bool{}
	for _, id := range n.host.Peers() {
		connected[id] = true
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, p := range n.peers.List() {
		if !connected[p.ID] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(id gridmind.NodeID) {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if rtt, err := n.host.Ping(pctx, id); err == nil {
				n.peers.SetRTT(id, rtt)
			}
		}(p.ID)
	}
	wg.Wait()
}

// checkHeartbeat bounds every field so a peer cannot make us store or
// display garbage.
func checkHeartbeat(env *gridmind.Envelope) error {
	var hb gridmind.Heartbeat
	if err := env.Decode(&hb); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: heartbeat %s", gridmind.ErrMalformed, fmt.Sprintf(format, args...))
	}
	if hb.Version == "" || len(hb.Version) > 64 {
		return bad("version %q", hb.Version)
	}
	if len(hb.Addrs) > 16 {
		return bad("%d addresses", len(hb.Addrs))
	}
	for _, a := range hb.Addrs {
		if len(a) > 256 {
			return bad("address too long")
		}
	}
	if hb.Hardware.CPUCores < 0 || hb.Hardware.CPUCores > 1<<16 || len(hb.Hardware.GPUs) > 64 {
		return bad("hardware out of range")
	}
	if len(hb.Region) > 64 || len(hb.RPC) > 256 || len(hb.Serving) > 64 {
		return bad("field too long")
	}
	if hb.RPC != "" && !strings.HasPrefix(hb.RPC, "http://") && !strings.HasPrefix(hb.RPC, "https://") && !strings.HasPrefix(hb.RPC, "tcp://") {
		return bad("rpc %q is not an http:// or tcp:// address", hb.RPC)
	}
	floats := []float64{hb.ThroughputGFLOPS, hb.Energy.SolarWatts, hb.Energy.LoadWatts, hb.Energy.DeviceWatts,
		hb.Energy.SurplusWatts, hb.Energy.BatteryPercent, hb.Energy.CarbonGPerKWh, hb.Energy.ForecastSurplus}
	for _, s := range hb.Serving {
		floats = append(floats, s.LatencyP50Ms, s.LatencyP95Ms, s.ErrorRate)
	}
	for _, f := range floats {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < -1e9 || f > 1e12 {
			return bad("number out of range")
		}
	}
	if hb.ThroughputGFLOPS < 0 || hb.Energy.BatteryPercent < 0 || hb.Energy.BatteryPercent > 100 {
		return bad("negative throughput or battery outside 0..100")
	}
	return nil
}

// errSenderMismatch is returned when an envelope is relayed under another
// peer's name.
var errSenderMismatch = errors.New("envelope sender differs from gossip author")
