package wan

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/train"
)

// This file emulates wide-area links in user space, around any Transport:
// each node has an uplink and a downlink of limited bandwidth, a one-way
// latency to the rest of the internet with jitter, and a packet loss rate.
// The kernel here has no netem, and tbf alone shapes bandwidth only; this
// layer adds latency, jitter and loss, and works the same in one process
// (over internal/dilocotest.MemNetwork) and over libp2p (netns.go).

// Link describes one node's connection.
type Link struct {
	UpBits, DownBits float64       // bandwidth in bit/s; 0 is unlimited
	Latency          time.Duration // one way, to the core; a→b takes a's plus b's
	Jitter           time.Duration // uniform extra delay in [0, Jitter) per message
	Loss             float64       // packet loss rate in [0, 1)
}

// Common links, named for `gridmind bench wan`.
var Links = map[string]Link{
	"unlimited": {},
	"lab":       {UpBits: 1e9, DownBits: 1e9, Latency: 5 * time.Millisecond},
	"dc-100ms":  {UpBits: 100e6, DownBits: 100e6, Latency: 25 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.01},
	"home":      {UpBits: 20e6, DownBits: 100e6, Latency: 25 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.005},
	"home-slow": {UpBits: 10e6, DownBits: 50e6, Latency: 50 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.02},
}

// ParseLink reads a named link or "up=20M,down=100M,rtt=100ms,jitter=10ms,loss=0.01"
// (rtt is the round trip between two such nodes: each gets a quarter of
// it as its one-way latency to the core).
func ParseLink(s string) (Link, error) {
	if l, ok := Links[s]; ok {
		return l, nil
	}
	var l Link
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Link{}, fmt.Errorf("link %q: %q is not key=value (or name one of %s)", s, kv, linkNames())
		}
		switch k {
		case "up", "down":
			bits, err := parseBits(v)
			if err != nil {
				return Link{}, fmt.Errorf("link %q: %s: %v", s, k, err)
			}
			if k == "up" {
				l.UpBits = bits
			} else {
				l.DownBits = bits
			}
		case "rtt", "jitter":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				return Link{}, fmt.Errorf("link %q: %s=%q: want a duration up to 1m", s, k, v)
			}
			if k == "rtt" {
				l.Latency = d / 4
			} else {
				l.Jitter = d
			}
		case "loss":
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p >= 0.5 {
				return Link{}, fmt.Errorf("link %q: loss=%q: want a rate in [0, 0.5)", s, v)
			}
			l.Loss = p
		default:
			return Link{}, fmt.Errorf("link %q: %q unknown (want up, down, rtt, jitter, loss)", s, k)
		}
	}
	return l, nil
}

func linkNames() string {
	var names []string
	for n := range Links {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func parseBits(v string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(v, "G"):
		mult, v = 1e9, strings.TrimSuffix(v, "G")
	case strings.HasSuffix(v, "M"):
		mult, v = 1e6, strings.TrimSuffix(v, "M")
	case strings.HasSuffix(v, "k"):
		mult, v = 1e3, strings.TrimSuffix(v, "k")
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f*mult > 1e12 {
		return 0, fmt.Errorf("%q: want a positive bandwidth like 20M", v)
	}
	return f * mult, nil
}

func (l Link) String() string {
	if l == (Link{}) {
		return "unlimited"
	}
	bw := func(b float64) string {
		if b == 0 {
			return "∞"
		}
		return fmt.Sprintf("%g Mbit/s", b/1e6)
	}
	return fmt.Sprintf("up %s, down %s, %s one-way ±%s, %.1f%% loss", bw(l.UpBits), bw(l.DownBits), l.Latency, l.Jitter, 100*l.Loss)
}

// ShapedNetwork holds every node's link and the queues of their uplinks
// and downlinks.
type ShapedNetwork struct {
	mu    sync.Mutex
	links map[gridmind.NodeID]Link
	up    map[gridmind.NodeID]time.Time // when each uplink is free again
	down  map[gridmind.NodeID]time.Time
	rng   *rand.Rand
}

// NewShapedNetwork returns an empty shaped network; seed drives jitter and loss.
func NewShapedNetwork(seed int64) *ShapedNetwork {
	return &ShapedNetwork{links: map[gridmind.NodeID]Link{}, up: map[gridmind.NodeID]time.Time{}, down: map[gridmind.NodeID]time.Time{},
		rng: rand.New(rand.NewSource(seed))}
}

// Wrap shapes inner's traffic with link.
func (n *ShapedNetwork) Wrap(inner diloco.Transport, link Link) *ShapedTransport {
	n.mu.Lock()
	n.links[inner.Self()] = link
	n.mu.Unlock()
	return &ShapedTransport{net: n, inner: inner}
}

// SetLink records a remote node's link, for a process that shapes only its
// own transport but must know its peers' latency (one worker per process).
func (n *ShapedNetwork) SetLink(id gridmind.NodeID, link Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[id] = link
}

const packetBytes = 1400

// delay is how long size bytes from a to b take from now: queueing and
// serialization on a's uplink and b's downlink, both latencies, jitter, and
// a retransmission timeout for each lost packet (a stream is reliable, so
// loss costs time, not data).
func (n *ShapedNetwork) delay(from, to gridmind.NodeID, size int, now time.Time) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, b := n.links[from], n.links[to]
	bits := float64(8 * (size + 64))
	depart := now
	if a.UpBits > 0 {
		depart = maxTime(now, n.up[from])
		depart = depart.Add(time.Duration(bits / a.UpBits * float64(time.Second)))
		n.up[from] = depart
	}
	arrive := depart.Add(a.Latency + b.Latency)
	if b.DownBits > 0 {
		arrive = maxTime(arrive, n.down[to]).Add(time.Duration(bits / b.DownBits * float64(time.Second)))
		n.down[to] = arrive
	}
	if j := a.Jitter + b.Jitter; j > 0 {
		arrive = arrive.Add(time.Duration(n.rng.Int63n(int64(j))))
	}
	if p := 1 - (1-a.Loss)*(1-b.Loss); p > 0 {
		rto := max(200*time.Millisecond, 2*(a.Latency+b.Latency))
		packets := (size + packetBytes - 1) / packetBytes
		lost := 0
		if packets <= 64 {
			for range packets {
				if n.rng.Float64() < p {
					lost++
				}
			}
		} else { // a normal approximation of the binomial
			mean := float64(packets) * p
			lost = max(0, int(math.Round(mean+n.rng.NormFloat64()*math.Sqrt(mean*(1-p)))))
		}
		// Fast retransmit recovers most losses within a round trip; count
		// one timeout per lost packet, in order: pessimistic on purpose.
		arrive = arrive.Add(time.Duration(lost) * rto)
	}
	return arrive.Sub(now)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ShapedTransport is one node's diloco.Transport behind its Link.
type ShapedTransport struct {
	net   *ShapedNetwork
	inner diloco.Transport
}

var _ diloco.Transport = (*ShapedTransport)(nil)

// Self is the inner transport's node.
func (t *ShapedTransport) Self() gridmind.NodeID { return t.inner.Self() }

func (t *ShapedTransport) wait(ctx context.Context, to gridmind.NodeID, size int) error {
	return sleep(ctx, t.net.delay(t.inner.Self(), to, size, time.Now()))
}

// Send delivers after the link's delay.
func (t *ShapedTransport) Send(ctx context.Context, to gridmind.NodeID, data []byte) error {
	if err := t.wait(ctx, to, len(data)); err != nil {
		return err
	}
	return t.inner.Send(ctx, to, data)
}

// SendBulk delivers after the link's delay.
func (t *ShapedTransport) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	if err := t.wait(ctx, to, len(data)); err != nil {
		return err
	}
	return t.inner.SendBulk(ctx, to, data)
}

// Broadcast is delayed like one copy to the slowest-reached peer: gossip
// sends one copy per mesh peer, and this worker's uplink carries them.
func (t *ShapedTransport) Broadcast(ctx context.Context, data []byte) error {
	t.net.mu.Lock()
	var far gridmind.NodeID
	var worst time.Duration = -1
	for id, l := range t.net.links {
		if id != t.inner.Self() && l.Latency > worst {
			far, worst = id, l.Latency
		}
	}
	t.net.mu.Unlock()
	if far != "" {
		if err := t.wait(ctx, far, len(data)); err != nil {
			return err
		}
	}
	return t.inner.Broadcast(ctx, data)
}

// FetchState returns the state after the time it takes to come from the peer.
func (t *ShapedTransport) FetchState(ctx context.Context, from gridmind.NodeID, round uint64, hash train.Hash) ([]byte, error) {
	b, err := t.inner.FetchState(ctx, from, round, hash)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, t.net.delay(from, t.inner.Self(), len(b), time.Now())); err != nil {
		return nil, err
	}
	return b, nil
}

// Serve serves the inner transport.
func (t *ShapedTransport) Serve(ctx context.Context, h diloco.Handler) error {
	return t.inner.Serve(ctx, h)
}

// LimitBulk passes the worker's frame bound to the inner transport.
func (t *ShapedTransport) LimitBulk(n int) {
	if l, ok := t.inner.(interface{ LimitBulk(int) }); ok {
		l.LimitBulk(n)
	}
}
