package p2p

import (
	"slices"
	"sync"
	"time"
)

// streamRate limits how fast one peer may open inbound streams on one
// gridmind protocol: a token bucket per (peer, protocol), refilled at rate
// per second up to burst. The resource manager already caps how many
// streams are open at once; this caps how fast a peer can make the node
// start handlers (a goroutine and a read each), which the concurrency cap
// alone does not: a peer that opens and resets streams in a loop never
// holds many at once.
//
// The table of buckets is bounded too (maxEntries): when it is full, idle
// entries (a full bucket is the same as no entry) are dropped, then the
// least recently used ones. An evicted peer starts again with a full
// bucket, so eviction can only ever let a peer through, never block an
// honest one; the bound is on memory, and eviction needs many identities
// each holding a connection, which the connection limits bound.
type streamRate struct {
	rate       float64 // tokens per second
	burst      float64
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	buckets map[rateKey]*bucket
}

type rateKey struct {
	peer, proto string
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newStreamRate(rate float64, burst, maxEntries int, now func() time.Time) *streamRate {
	return &streamRate{rate: rate, burst: float64(burst), maxEntries: maxEntries, now: now, buckets: map[rateKey]*bucket{}}
}

// allow takes one token from the peer's bucket for proto, if it has one.
func (r *streamRate) allow(peer, proto string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	k := rateKey{peer, proto}
	b := r.buckets[k]
	if b == nil {
		if len(r.buckets) >= r.maxEntries {
			r.evict(now)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[k] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(r.burst, b.tokens+el*r.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict makes room: buckets that have refilled are forgotten, and if none
// has, the least recently used half goes.
func (r *streamRate) evict(now time.Time) {
	for k, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.buckets, k)
		}
	}
	if len(r.buckets) < r.maxEntries {
		return
	}
	times := make([]time.Time, 0, len(r.buckets))
	for _, b := range r.buckets {
		times = append(times, b.last)
	}
	slices.SortFunc(times, time.Time.Compare)
	cutoff := times[len(times)/2]
	for k, b := range r.buckets {
		if !b.last.After(cutoff) {
			delete(r.buckets, k)
		}
	}
}

// size is the number of buckets held (for tests).
func (r *streamRate) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buckets)
}
