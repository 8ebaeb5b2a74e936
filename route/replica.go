package route

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// replica is what the router knows about one candidate.
type replica[ID cmp.Ordered] struct {
	id           ID
	rtt          time.Duration // moving average; 0 = never measured
	queue        int           // last reported queue length
	queueAt      time.Time     // when it was reported
	inflight     int           // requests this router sent and has not seen end
	capacity     int           // requests it runs at once, >= 1
	reputation   uint32        // ppm
	errRate      float64       // 0..1 as of errAt
	errAt        time.Time
	failures     int // consecutive failures
	backoffUntil time.Time
	latencies    samples
}

// errorRate is the recent error rate at now: the stored rate halves every
// ErrorHalfLife, so a replica that failed long ago is not punished forever.
func (r *replica[ID]) errorRate(now time.Time, cfg Config) float64 {
	if r.errRate == 0 || r.errAt.IsZero() {
		return r.errRate
	}
	age := now.Sub(r.errAt)
	if age <= 0 {
		return r.errRate
	}
	return r.errRate * math.Exp2(-float64(age)/float64(cfg.ErrorHalfLife))
}

// setErrorRate folds one outcome (1 failure, 0 success) into the rate.
func (r *replica[ID]) setErrorRate(at time.Time, outcome float64, cfg Config) {
	cur := r.errorRate(at, cfg)
	r.errRate = cur + cfg.ErrorAlpha*(outcome-cur)
	if at.After(r.errAt) {
		r.errAt = at
	}
}

// load is the number of requests ahead of a new one: the reported queue
// while it is fresh, plus what this router has in flight there.
func (r *replica[ID]) load(now time.Time, cfg Config) int {
	q := 0
	if !r.queueAt.IsZero() && now.Sub(r.queueAt) <= cfg.QueueTTL {
		q = r.queue
	}
	return q + r.inflight
}

// cost is the estimated latency in milliseconds, without jitter.
func (r *replica[ID]) cost(now time.Time, cfg Config) float64 {
	rtt := r.rtt
	if rtt == 0 {
		rtt = cfg.DefaultRTT
	}
	c := cfg.RTTWeight * ms(rtt)
	c += float64(r.load(now, cfg)) / float64(r.capacity) * ms(cfg.QueueCost)
	c += r.errorRate(now, cfg) * ms(cfg.ErrorCost)
	c += (1 - float64(r.reputation)/1e6) * ms(cfg.ReputationCost)
	return c
}

// Status is a snapshot of one replica, for logs, dashboards and tests.
type Status[ID cmp.Ordered] struct {
	ID           ID
	RTT          time.Duration // moving average, 0 if never measured
	Load         int           // fresh reported queue + in flight
	InFlight     int
	Capacity     int     // requests it runs at once
	ErrorRate    float64 // recent, 0..1
	Reputation   uint32  // ppm
	Failures     int     // consecutive
	BackoffUntil time.Time
	Cost         float64       // estimated ms, without jitter
	P50, P95     time.Duration // of this replica's recent successful latencies
	Samples      int
}

// Status returns a snapshot of every candidate in sorted id order.
func (r *Router[ID]) Status(now time.Time) []Status[ID] {
	out := make([]Status[ID], 0, len(r.replicas))
	for _, id := range r.IDs() {
		rep := r.replicas[id]
		st := Status[ID]{
			ID:         id,
			RTT:        rep.rtt,
			Load:       rep.load(now, r.cfg),
			InFlight:   rep.inflight,
			Capacity:   rep.capacity,
			ErrorRate:  rep.errorRate(now, r.cfg),
			Reputation: rep.reputation,
			Failures:   rep.failures,
			Cost:       rep.cost(now, r.cfg),
		}
		if now.Before(rep.backoffUntil) {
			st.BackoffUntil = rep.backoffUntil
		}
		if lat := rep.latencies.recent(now, r.cfg.Window); len(lat) > 0 {
			st.P50, st.P95, st.Samples = quantile(lat, 0.5), quantile(lat, 0.95), len(lat)
		}
		out = append(out, st)
	}
	return out
}

// samples is a ring of timestamped latencies.
type samples struct {
	at   []time.Time
	lat  []time.Duration
	next int
	full bool
}

func newSamples(n int) samples {
	return samples{at: make([]time.Time, n), lat: make([]time.Duration, n)}
}

func (s *samples) add(at time.Time, d time.Duration) {
	if len(s.lat) == 0 {
		return
	}
	s.at[s.next], s.lat[s.next] = at, d
	s.next++
	if s.next == len(s.lat) {
		s.next, s.full = 0, true
	}
}

// recent returns the latencies recorded within window before now (and any
// recorded "after" now, which happens when callers pass slightly stale times).
func (s *samples) recent(now time.Time, window time.Duration) []time.Duration {
	n := s.next
	if s.full {
		n = len(s.lat)
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if now.Sub(s.at[i]) <= window {
			out = append(out, s.lat[i])
		}
	}
	return out
}

// quantile is the nearest-rank q-quantile; it sorts lat in place.
func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	rank := int(math.Ceil(q*float64(len(lat)))) - 1
	rank = max(0, min(rank, len(lat)-1))
	return lat[rank]
}
