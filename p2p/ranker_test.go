package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirstRanker(t *testing.T) {
	tcp := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	quic := ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1")
	ranked := tcpFirstRanker([]ma.Multiaddr{quic, tcp})
	delay := map[string]time.Duration{}
	for _, r := range ranked {
		delay[r.Addr.String()] = r.Delay
	}
	if delay[tcp.String()] != 0 || delay[quic.String()] < quicAfterTCP {
		t.Fatalf("delays = %v, want TCP at 0 and QUIC at >= %v", delay, quicAfterTCP)
	}
	onlyQUIC := tcpFirstRanker([]ma.Multiaddr{quic})
	if len(onlyQUIC) != 1 || onlyQUIC[0].Delay != 0 {
		t.Fatalf("QUIC-only = %v, want it dialed at once", onlyQUIC)
	}
}

// A peer whose TCP address is dead is still reached over QUIC, without
// waiting out the whole TCP head start.
func TestQUICFallbackWhenTCPFails(t *testing.T) {
	b := newTestHost(t, 2, func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"} })
	dead := newTestHost(t, 3, tcpOnly)
	deadTCP := dead.host.Addrs()[0]
	dead.Close()
	a := newTestHost(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.self, Addrs: append([]ma.Multiaddr{deadTCP}, b.host.Addrs()...)}); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	took := time.Since(start)
	t.Logf("connected over QUIC after %v", took)
	if took >= quicAfterTCP {
		t.Errorf("took %v: the QUIC dial waited out the TCP head start after TCP had failed", took)
	}
}
