package p2p

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func TestStreamRateBucket(t *testing.T) {
	clock := time.Unix(1000, 0)
	r := newStreamRate(2, 4, 100, func() time.Time { return clock })
	allowed := 0
	for range 10 {
		if r.allow("p", "/x") {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("burst of 10 let %d through, want the burst of 4", allowed)
	}
	if !r.allow("q", "/x") || !r.allow("p", "/y") {
		t.Fatal("one peer's or protocol's bucket blocks another")
	}
	clock = clock.Add(time.Second) // refills 2
	if !r.allow("p", "/x") || !r.allow("p", "/x") || r.allow("p", "/x") {
		t.Fatal("one second at 2/s did not refill exactly 2")
	}
}

func TestStreamRateTableIsBounded(t *testing.T) {
	clock := time.Unix(0, 0)
	r := newStreamRate(1, 1, 64, func() time.Time { return clock })
	for i := range 10_000 {
		clock = clock.Add(time.Millisecond)
		r.allow(fmt.Sprint("peer-", i), "/x") // each drains its bucket: none is idle
		if n := r.size(); n > 64 {
			t.Fatalf("%d entries after %d peers, bound 64", n, i+1)
		}
	}
	// The most recent peer is still limited: eviction took the oldest.
	if r.allow("peer-9999", "/x") {
		t.Fatal("the most recent peer's drained bucket was evicted")
	}
}

// A peer that opens streams in a loop gets the burst, then resets; the
// handler never runs for the excess, and honest peers are unaffected.
func TestStreamRateOnTheWire(t *testing.T) {
	limit := func(c *Config) { tcpOnly(c); c.Limits.StreamRate = 0.001; c.Limits.StreamBurst = 5 }
	server := newTestHost(t, 1, limit)
	flooder := newTestHost(t, 2, tcpOnly)
	honest := newTestHost(t, 3, tcpOnly)
	connect(t, flooder, server)
	connect(t, honest, server)
	var handled atomic.Int64
	server.Handle("/gridmind/test-rate/1.0.0", func(from gridmind.NodeID, s Stream) {
		handled.Add(1)
		_, _ = s.Write([]byte("ok"))
		_ = s.Close()
	})
	ask := func(h *Host) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := h.Open(ctx, server.ID(), "/gridmind/test-rate/1.0.0")
		if err != nil {
			return false
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(s)
		return err == nil && string(b) == "ok"
	}
	served := 0
	for range 20 {
		if ask(flooder) {
			served++
		}
	}
	if served != 5 {
		t.Fatalf("flooder was served %d of 20 streams, want the burst of 5", served)
	}
	if !ask(honest) {
		t.Fatal("an honest peer was refused because another flooded")
	}
	if got := server.Stats().RateLimitedStreams; got != 15 {
		t.Fatalf("RateLimitedStreams %d, want 15", got)
	}
	if handled.Load() != 6 {
		t.Fatalf("handler ran %d times, want 6", handled.Load())
	}
}
