package route

import (
	"cmp"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Config holds the weights and time constants of a Router. The costs are
// in milliseconds of estimated latency so that they add up to one number
// with a meaning: "how long would a request here take, all things counted".
type Config struct {
	// RTTWeight multiplies the measured round-trip time (in ms).
	RTTWeight float64
	// DefaultRTT is assumed for a replica whose RTT was never measured; it
	// sits between near and far so a new replica is tried, but not first.
	DefaultRTT time.Duration
	// RTTAlpha is the weight of a new RTT sample in the moving average.
	RTTAlpha float64
	// QueueCost is added per request queued at or in flight to a replica,
	// divided by the replica's parallelism (SetCapacity): four requests on
	// a replica that runs four at once wait no longer than one on a
	// replica that runs one.
	QueueCost time.Duration
	// QueueTTL is how long a reported queue length stays believable; older
	// reports count as an empty queue (local in-flight still counts).
	QueueTTL time.Duration
	// ErrorCost is added at a 100% recent error rate (linear below).
	ErrorCost time.Duration
	// ErrorHalfLife is how fast the error rate forgets old failures.
	ErrorHalfLife time.Duration
	// ErrorAlpha is the weight of one new outcome in the error rate.
	ErrorAlpha float64
	// ReputationCost is added at zero reputation (linear up to 1,000,000 ppm).
	ReputationCost time.Duration
	// Jitter is the width of the seeded random tie-breaker added to each cost.
	Jitter time.Duration
	// BackoffBase is how long a replica is avoided after one failure; it
	// doubles with each further consecutive failure up to BackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// HedgeQuantile of recent latencies after which a request is hedged.
	HedgeQuantile float64
	// HedgeFloor is the shortest hedge delay, so that a very fast recent
	// history does not double the load with needless hedges.
	HedgeFloor time.Duration
	// HedgeDefault is used until MinSamples recent samples exist.
	HedgeDefault time.Duration
	// HedgeBudget caps hedges at this share of recent requests (plus one),
	// so that when everything is slow — overload — hedging does not double
	// the load and make it worse. Counts decay with BudgetHalfLife.
	HedgeBudget    float64
	BudgetHalfLife time.Duration
	// MinSamples is the number of recent samples needed to trust the quantile.
	MinSamples int
	// Window is how long a latency sample counts as recent.
	Window time.Duration
	// MaxSamples bounds the latency history kept (router-wide and per replica).
	MaxSamples int
}

// DefaultConfig returns weights that worked in the inference benchmark.
func DefaultConfig() Config {
	return Config{
		RTTWeight:      1,
		DefaultRTT:     50 * time.Millisecond,
		RTTAlpha:       0.3,
		QueueCost:      10 * time.Millisecond,
		QueueTTL:       10 * time.Second,
		ErrorCost:      500 * time.Millisecond,
		ErrorHalfLife:  30 * time.Second,
		ErrorAlpha:     0.3,
		ReputationCost: 100 * time.Millisecond,
		Jitter:         time.Millisecond,
		BackoffBase:    250 * time.Millisecond,
		BackoffMax:     60 * time.Second,
		HedgeQuantile:  0.95,
		HedgeFloor:     10 * time.Millisecond,
		HedgeDefault:   250 * time.Millisecond,
		HedgeBudget:    0.1,
		BudgetHalfLife: 10 * time.Second,
		MinSamples:     20,
		Window:         60 * time.Second,
		MaxSamples:     256,
	}
}

// Outcome is how one attempt at a replica ended.
type Outcome uint8

const (
	// Success: the replica answered. Its latency becomes a sample.
	Success Outcome = iota
	// Failure: the replica errored, refused or vanished. It counts against
	// the replica's error rate and starts or extends its back-off.
	Failure
	// Cancelled: the caller gave up on the attempt (it lost a hedge race or
	// the user went away). Neither a sample nor an error.
	Cancelled
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Cancelled:
		return "cancelled"
	}
	return "outcome(?)"
}

// Result reports how an attempt that was started with Begin ended.
type Result[ID cmp.Ordered] struct {
	Replica ID
	At      time.Time // when the attempt ended
	Outcome Outcome
	// Latency is the time to the first answer (first token or the whole
	// reply), the quantity hedging compares against. Used on Success.
	Latency time.Duration
}

// Router ranks the replicas of one model. The zero value is not usable;
// call New.
type Router[ID cmp.Ordered] struct {
	cfg      Config
	rng      *rand.Rand
	replicas map[ID]*replica[ID]
	recent   samples // latencies of successful attempts on any replica

	// Decayed counts of requests and hedges for the hedge budget.
	requests, hedges float64
	countedAt        time.Time
}

// New returns a Router with the given configuration (zero fields take the
// default) and random source (nil means a fixed seed of 1).
func New[ID cmp.Ordered](cfg Config, rng *rand.Rand) *Router[ID] {
	cfg = cfg.withDefaults()
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 1))
	}
	return &Router[ID]{
		cfg:      cfg,
		rng:      rng,
		replicas: make(map[ID]*replica[ID]),
		recent:   newSamples(cfg.MaxSamples),
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setFloat := func(v *float64, def float64) {
		if *v <= 0 || math.IsNaN(*v) || math.IsInf(*v, 0) {
			*v = def
		}
	}
	setFloat(&c.RTTWeight, d.RTTWeight)
	setDur(&c.DefaultRTT, d.DefaultRTT)
	setFloat(&c.RTTAlpha, d.RTTAlpha)
	setDur(&c.QueueCost, d.QueueCost)
	setDur(&c.QueueTTL, d.QueueTTL)
	setDur(&c.ErrorCost, d.ErrorCost)
	setDur(&c.ErrorHalfLife, d.ErrorHalfLife)
	setFloat(&c.ErrorAlpha, d.ErrorAlpha)
	setDur(&c.ReputationCost, d.ReputationCost)
	if c.Jitter < 0 {
		c.Jitter = 0
	}
	setDur(&c.BackoffBase, d.BackoffBase)
	setDur(&c.BackoffMax, d.BackoffMax)
	setFloat(&c.HedgeQuantile, d.HedgeQuantile)
	if c.HedgeQuantile > 1 {
		c.HedgeQuantile = 1
	}
	setDur(&c.HedgeFloor, d.HedgeFloor)
	setDur(&c.HedgeDefault, d.HedgeDefault)
	setFloat(&c.HedgeBudget, d.HedgeBudget)
	setDur(&c.BudgetHalfLife, d.BudgetHalfLife)
	if c.MinSamples <= 0 {
		c.MinSamples = d.MinSamples
	}
	setDur(&c.Window, d.Window)
	if c.MaxSamples <= 0 {
		c.MaxSamples = d.MaxSamples
	}
	c.RTTAlpha = math.Min(c.RTTAlpha, 1)
	c.ErrorAlpha = math.Min(c.ErrorAlpha, 1)
	return c
}

// Config returns the effective configuration (defaults filled in).
func (r *Router[ID]) Config() Config { return r.cfg }

// Add makes id a candidate (or updates its reputation if it is one).
// Reputation is in parts per million and is clamped to 1,000,000.
func (r *Router[ID]) Add(id ID, reputationPPM uint32) {
	rep := r.replicas[id]
	if rep == nil {
		rep = &replica[ID]{id: id, capacity: 1, latencies: newSamples(r.cfg.MaxSamples)}
		r.replicas[id] = rep
	}
	rep.reputation = min(reputationPPM, 1_000_000)
}

// Remove forgets id and everything measured about it.
func (r *Router[ID]) Remove(id ID) { delete(r.replicas, id) }

// Has reports whether id is a candidate.
func (r *Router[ID]) Has(id ID) bool { return r.replicas[id] != nil }

// Len is the number of candidates.
func (r *Router[ID]) Len() int { return len(r.replicas) }

// IDs lists the candidates in a stable (sorted) order.
func (r *Router[ID]) IDs() []ID {
	ids := make([]ID, 0, len(r.replicas))
	for id := range r.replicas {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// SetQueue records the queue length id reported at time now (from a
// heartbeat or the start of a reply). Unknown ids are ignored.
func (r *Router[ID]) SetQueue(id ID, queue int, now time.Time) {
	if rep := r.replicas[id]; rep != nil {
		rep.queue = max(queue, 0)
		rep.queueAt = now
	}
}

// SetCapacity records how many requests id runs at once (as it reported;
// values below 1 count as 1). Unknown ids are ignored.
func (r *Router[ID]) SetCapacity(id ID, slots int) {
	if rep := r.replicas[id]; rep != nil {
		rep.capacity = max(slots, 1)
	}
}

// ObserveRTT folds one round-trip measurement into id's moving average.
// Non-positive measurements and unknown ids are ignored.
func (r *Router[ID]) ObserveRTT(id ID, rtt time.Duration) {
	rep := r.replicas[id]
	if rep == nil || rtt <= 0 {
		return
	}
	if rep.rtt == 0 {
		rep.rtt = rtt
		return
	}
	rep.rtt = time.Duration(float64(rep.rtt) + r.cfg.RTTAlpha*float64(rtt-rep.rtt))
}

// Begin records that a request was sent to id; the matching Observe ends it.
// Requests in flight count like queued requests in the score, which spreads
// a burst across replicas before any heartbeat reports the queues.
func (r *Router[ID]) Begin(id ID) {
	if rep := r.replicas[id]; rep != nil {
		rep.inflight++
	}
}

// Observe ends an attempt started with Begin.
func (r *Router[ID]) Observe(res Result[ID]) {
	rep := r.replicas[res.Replica]
	if rep == nil {
		return
	}
	if rep.inflight > 0 {
		rep.inflight--
	}
	switch res.Outcome {
	case Success:
		rep.setErrorRate(res.At, 0, r.cfg)
		rep.failures = 0
		rep.backoffUntil = time.Time{}
		if res.Latency > 0 {
			rep.latencies.add(res.At, res.Latency)
			r.recent.add(res.At, res.Latency)
		}
	case Failure:
		rep.setErrorRate(res.At, 1, r.cfg)
		rep.failures++
		rep.backoffUntil = res.At.Add(backoff(rep.failures, r.cfg))
	case Cancelled:
	}
}

// backoff is BackoffBase·2^(failures−1), capped at BackoffMax.
func backoff(failures int, cfg Config) time.Duration {
	d := cfg.BackoffBase
	for i := 1; i < failures && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, cfg.BackoffMax)
}

// Choose ranks every candidate for a request at time now, best first.
// Replicas in back-off come last, soonest-recovering first, so a caller
// that has exhausted the healthy ones can still try them rather than fail.
// It draws from the random source (the tie-breaking jitter), so the order
// depends on the seed and on the sequence of calls.
func (r *Router[ID]) Choose(now time.Time) []ID {
	type ranked struct {
		id      ID
		cost    float64
		backoff time.Time
	}
	var healthy, resting []ranked
	// Iterate in sorted order so the jitter drawn for each replica depends
	// only on the seed, not on map iteration order.
	for _, id := range r.IDs() {
		rep := r.replicas[id]
		cost := rep.cost(now, r.cfg)
		if r.cfg.Jitter > 0 {
			cost += r.rng.Float64() * ms(r.cfg.Jitter)
		}
		if now.Before(rep.backoffUntil) {
			resting = append(resting, ranked{id, cost, rep.backoffUntil})
		} else {
			healthy = append(healthy, ranked{id, cost, time.Time{}})
		}
	}
	sort.SliceStable(healthy, func(i, j int) bool { return healthy[i].cost < healthy[j].cost })
	sort.SliceStable(resting, func(i, j int) bool {
		if !resting[i].backoff.Equal(resting[j].backoff) {
			return resting[i].backoff.Before(resting[j].backoff)
		}
		return resting[i].cost < resting[j].cost
	})
	out := make([]ID, 0, len(healthy)+len(resting))
	for _, h := range healthy {
		out = append(out, h.id)
	}
	for _, s := range resting {
		out = append(out, s.id)
	}
	return out
}

// HedgeAfter is how long to wait for a first answer before sending the
// same request to a second replica: the HedgeQuantile (p95) of the latencies
// of recent successful attempts, never below HedgeFloor, and HedgeDefault
// while there are fewer than MinSamples recent samples.
func (r *Router[ID]) HedgeAfter(now time.Time) time.Duration {
	lat := r.recent.recent(now, r.cfg.Window)
	if len(lat) < r.cfg.MinSamples {
		return max(r.cfg.HedgeDefault, r.cfg.HedgeFloor)
	}
	return max(quantile(lat, r.cfg.HedgeQuantile), r.cfg.HedgeFloor)
}

// NoteRequest counts a new request (not an attempt) towards the hedge budget.
func (r *Router[ID]) NoteRequest(now time.Time) {
	r.decayCounts(now)
	r.requests++
}

// TryHedge reports whether the hedge budget allows one more hedge now,
// and if so counts it: hedges may not exceed HedgeBudget × recent
// requests + 1.
func (r *Router[ID]) TryHedge(now time.Time) bool {
	r.decayCounts(now)
	if r.hedges+1 > r.cfg.HedgeBudget*r.requests+1 {
		return false
	}
	r.hedges++
	return true
}

func (r *Router[ID]) decayCounts(now time.Time) {
	if !r.countedAt.IsZero() && now.After(r.countedAt) {
		f := math.Exp2(-float64(now.Sub(r.countedAt)) / float64(r.cfg.BudgetHalfLife))
		r.requests *= f
		r.hedges *= f
	}
	if now.After(r.countedAt) {
		r.countedAt = now
	}
}

// Quantile returns the q-quantile of recent successful latencies across
// all replicas, and how many samples it is based on (0: no estimate).
func (r *Router[ID]) Quantile(now time.Time, q float64) (time.Duration, int) {
	lat := r.recent.recent(now, r.cfg.Window)
	if len(lat) == 0 {
		return 0, 0
	}
	return quantile(lat, q), len(lat)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
