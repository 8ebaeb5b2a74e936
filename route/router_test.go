package route

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newRouter(seed uint64) *Router[string] {
	return New[string](DefaultConfig(), rand.New(rand.NewPCG(seed, seed)))
}

func TestChoose(t *testing.T) {
	type replicaSetup struct {
		id       string
		rtt      time.Duration
		queue    int
		inflight int
		capacity int
		rep      uint32
	}
	tests := []struct {
		name     string
		replicas []replicaSetup
		want     []string
	}{
		{
			name: "latency: nearest first",
			replicas: []replicaSetup{
				{id: "far", rtt: 80 * time.Millisecond, rep: 1e6},
				{id: "near", rtt: 5 * time.Millisecond, rep: 1e6},
				{id: "mid", rtt: 20 * time.Millisecond, rep: 1e6},
			},
			want: []string{"near", "mid", "far"},
		},
		{
			name: "load: reported queue outweighs a small RTT gap",
			replicas: []replicaSetup{
				{id: "near-busy", rtt: 5 * time.Millisecond, queue: 4, rep: 1e6},
				{id: "mid-idle", rtt: 20 * time.Millisecond, rep: 1e6},
				{id: "mid-one", rtt: 20 * time.Millisecond, queue: 1, rep: 1e6},
			},
			want: []string{"mid-idle", "mid-one", "near-busy"},
		},
		{
			name: "load: requests in flight from this router count too",
			replicas: []replicaSetup{
				{id: "a", rtt: 10 * time.Millisecond, inflight: 3, rep: 1e6},
				{id: "b", rtt: 10 * time.Millisecond, inflight: 1, rep: 1e6},
				{id: "c", rtt: 10 * time.Millisecond, inflight: 2, rep: 1e6},
			},
			want: []string{"b", "c", "a"},
		},
		{
			name: "load is divided by reported parallelism",
			replicas: []replicaSetup{
				{id: "near-4-slots", rtt: 5 * time.Millisecond, inflight: 4, capacity: 4, rep: 1e6},
				{id: "near-1-slot", rtt: 5 * time.Millisecond, inflight: 2, rep: 1e6},
				{id: "mid-idle", rtt: 20 * time.Millisecond, rep: 1e6},
			},
			want: []string{"near-4-slots", "mid-idle", "near-1-slot"},
		},
		{
			name: "reputation: equal latency, trusted first",
			replicas: []replicaSetup{
				{id: "shady", rtt: 10 * time.Millisecond, rep: 100_000},
				{id: "solid", rtt: 10 * time.Millisecond, rep: 1_000_000},
				{id: "new", rtt: 10 * time.Millisecond, rep: 500_000},
			},
			want: []string{"solid", "new", "shady"},
		},
		{
			name: "reputation does not beat a much nearer replica",
			replicas: []replicaSetup{
				{id: "trusted-far", rtt: 200 * time.Millisecond, rep: 1_000_000},
				{id: "ok-near", rtt: 5 * time.Millisecond, rep: 600_000},
			},
			want: []string{"ok-near", "trusted-far"},
		},
		{
			name: "unmeasured RTT assumed between near and far",
			replicas: []replicaSetup{
				{id: "far", rtt: 120 * time.Millisecond, rep: 1e6},
				{id: "unknown", rep: 1e6},
				{id: "near", rtt: 5 * time.Millisecond, rep: 1e6},
			},
			want: []string{"near", "unknown", "far"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(7)
			for _, s := range tt.replicas {
				r.Add(s.id, s.rep)
				r.ObserveRTT(s.id, s.rtt)
				r.SetQueue(s.id, s.queue, t0)
				r.SetCapacity(s.id, s.capacity)
				for i := 0; i < s.inflight; i++ {
					r.Begin(s.id)
				}
			}
			if got := r.Choose(t0.Add(time.Second)); !slices.Equal(got, tt.want) {
				t.Errorf("Choose = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStaleQueueIsIgnored(t *testing.T) {
	r := newRouter(1)
	r.Add("a", 1e6)
	r.Add("b", 1e6)
	r.ObserveRTT("a", 5*time.Millisecond)
	r.ObserveRTT("b", 20*time.Millisecond)
	r.SetQueue("a", 10, t0)
	if got := r.Choose(t0.Add(time.Second)); got[0] != "b" {
		t.Errorf("with a fresh queue of 10 at a: first = %s, want b", got[0])
	}
	later := t0.Add(r.Config().QueueTTL + time.Second)
	if got := r.Choose(later); got[0] != "a" {
		t.Errorf("after the queue report expired: first = %s, want a", got[0])
	}
}

func TestRTTMovingAverage(t *testing.T) {
	r := newRouter(1)
	r.Add("a", 1e6)
	r.ObserveRTT("a", 10*time.Millisecond)
	r.ObserveRTT("a", 0) // ignored
	r.ObserveRTT("a", 20*time.Millisecond)
	got := r.Status(t0)[0].RTT
	want := 13 * time.Millisecond // 10 + 0.3·(20−10)
	if got != want {
		t.Errorf("RTT = %v, want %v", got, want)
	}
}

func TestHedgeAfter(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration // one per millisecond after t0
		now     time.Time
		want    time.Duration
	}{
		{name: "no history: default", want: 250 * time.Millisecond, now: t0},
		{
			name:    "too few samples: default",
			samples: repeat(19, 40*time.Millisecond),
			now:     t0.Add(time.Second),
			want:    250 * time.Millisecond,
		},
		{
			name:    "p95 of 1..100 ms is 95 ms",
			samples: ramp(100),
			now:     t0.Add(time.Second),
			want:    95 * time.Millisecond,
		},
		{
			name:    "a slow tail moves the hedge point",
			samples: append(repeat(90, 10*time.Millisecond), repeat(10, 300*time.Millisecond)...),
			now:     t0.Add(time.Second),
			want:    300 * time.Millisecond,
		},
		{
			name:    "fast history is floored",
			samples: repeat(100, time.Millisecond),
			now:     t0.Add(time.Second),
			want:    10 * time.Millisecond,
		},
		{
			name:    "samples older than the window are forgotten",
			samples: ramp(100),
			now:     t0.Add(2 * time.Minute),
			want:    250 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(1)
			r.Add("a", 1e6)
			for i, d := range tt.samples {
				r.Begin("a")
				r.Observe(Result[string]{Replica: "a", At: t0.Add(time.Duration(i) * time.Millisecond), Outcome: Success, Latency: d})
			}
			if got := r.HedgeAfter(tt.now); got != tt.want {
				t.Errorf("HedgeAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHedgeIgnoresFailuresAndCancellations(t *testing.T) {
	r := newRouter(1)
	r.Add("a", 1e6)
	for i := 0; i < 50; i++ {
		r.Observe(Result[string]{Replica: "a", At: t0, Outcome: Success, Latency: 20 * time.Millisecond})
		// A cancelled hedge loser or a failure is no latency sample.
		r.Observe(Result[string]{Replica: "a", At: t0, Outcome: Cancelled, Latency: time.Second})
	}
	r.Observe(Result[string]{Replica: "a", At: t0, Outcome: Failure, Latency: 5 * time.Second})
	if got, n := r.Quantile(t0, 0.95); got != 20*time.Millisecond || n != 50 {
		t.Errorf("p95 = %v over %d samples, want 20ms over 50", got, n)
	}
}

func TestBackoffAndRecovery(t *testing.T) {
	r := newRouter(3)
	for _, id := range []string{"a", "b", "c"} {
		r.Add(id, 1e6)
	}
	r.ObserveRTT("a", 5*time.Millisecond)
	r.ObserveRTT("b", 20*time.Millisecond)
	r.ObserveRTT("c", 40*time.Millisecond)
	fail := func(at time.Time) {
		r.Begin("a")
		r.Observe(Result[string]{Replica: "a", At: at, Outcome: Failure})
	}

	// Each consecutive failure doubles the time "a" is avoided.
	now := t0
	for i, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
		fail(now)
		if got := r.Choose(now.Add(want - time.Millisecond)); !slices.Equal(got, []string{"b", "c", "a"}) {
			t.Fatalf("failure %d: just before %v: Choose = %v, want a last", i+1, want, got)
		}
		// When the back-off ends "a" is a candidate again, but its recent
		// errors keep it behind the healthy replicas.
		now = now.Add(want)
		got := r.Choose(now)
		if got[2] != "a" {
			t.Fatalf("failure %d: after back-off: Choose = %v, want a still last (error rate)", i+1, got)
		}
		if st := r.Status(now)[0]; !st.BackoffUntil.IsZero() || st.Failures != i+1 {
			t.Fatalf("failure %d: status %+v, want no back-off and %d failures", i+1, st, i+1)
		}
	}

	// One success forgets the failure streak: the next failure starts over at the base.
	r.Begin("a")
	r.Observe(Result[string]{Replica: "a", At: now, Outcome: Success, Latency: 5 * time.Millisecond})
	if st := r.Status(now)[0]; st.Failures != 0 {
		t.Fatalf("after success: failures = %d, want 0", st.Failures)
	}
	fail(now)
	if got := r.Status(now)[0].BackoffUntil; got != now.Add(250*time.Millisecond) {
		t.Fatalf("after a new failure: back-off until %v, want base 250ms", got.Sub(now))
	}

	// The error rate decays: a minute later the nearest replica is first again.
	later := now.Add(5 * time.Minute)
	if got := r.Choose(later); got[0] != "a" {
		t.Errorf("5 min after the last failure: Choose = %v, want a first", got)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	cfg := DefaultConfig()
	cases := []struct {
		failures int
		want     time.Duration
	}{{1, 250 * time.Millisecond}, {2, 500 * time.Millisecond}, {9, 64 * time.Second}, {10, 60 * time.Second}, {1000, 60 * time.Second}}
	for _, c := range cases {
		want := min(c.want, cfg.BackoffMax)
		if got := backoff(c.failures, cfg); got != want {
			t.Errorf("backoff(%d) = %v, want %v", c.failures, got, want)
		}
	}
}

func TestAllBackedOffStillReturned(t *testing.T) {
	r := newRouter(1)
	for i, id := range []string{"a", "b"} {
		r.Add(id, 1e6)
		for j := 0; j <= i; j++ { // b fails twice: longer back-off
			r.Begin(id)
			r.Observe(Result[string]{Replica: id, At: t0, Outcome: Failure})
		}
	}
	if got := r.Choose(t0); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Choose = %v, want [a b] (soonest recovery first)", got)
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	run := func(seed uint64) [][]string {
		r := newRouter(seed)
		for _, id := range []string{"a", "b", "c", "d"} {
			r.Add(id, 1e6)
			r.ObserveRTT(id, 10*time.Millisecond) // all equal: only jitter decides
		}
		var out [][]string
		for i := 0; i < 20; i++ {
			out = append(out, r.Choose(t0))
		}
		return out
	}
	a, b := run(42), run(42)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("same seed, call %d: %v vs %v", i, a[i], b[i])
		}
	}
	// Equal replicas share the load: each one comes first sometimes.
	firsts := map[string]int{}
	for _, order := range a {
		firsts[order[0]]++
	}
	if len(firsts) < 3 {
		t.Errorf("first choices over 20 calls = %v, want the tie spread over several replicas", firsts)
	}
	c := run(43)
	same := true
	for i := range a {
		same = same && slices.Equal(a[i], c[i])
	}
	if same {
		t.Error("seeds 42 and 43 gave identical sequences; jitter is not seeded")
	}
}

func TestErrorRateDecays(t *testing.T) {
	r := newRouter(1)
	r.Add("a", 1e6)
	r.Begin("a")
	r.Observe(Result[string]{Replica: "a", At: t0, Outcome: Failure})
	cfg := r.Config()
	tests := []struct {
		after time.Duration
		want  float64
	}{{0, cfg.ErrorAlpha}, {cfg.ErrorHalfLife, cfg.ErrorAlpha / 2}, {2 * cfg.ErrorHalfLife, cfg.ErrorAlpha / 4}}
	for _, tt := range tests {
		if got := r.Status(t0.Add(tt.after))[0].ErrorRate; math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("error rate after %v = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestConfigDefaultsAndBadValues(t *testing.T) {
	r := New[string](Config{RTTWeight: math.NaN(), HedgeQuantile: 7, Jitter: -1}, nil)
	cfg := r.Config()
	if cfg.RTTWeight != 1 || cfg.HedgeQuantile != 1 || cfg.Jitter != 0 || cfg.MaxSamples != 256 {
		t.Errorf("config = %+v, want defaults filled and bad values clamped", cfg)
	}
	// Unknown ids and a router with no replicas must not panic.
	r.Observe(Result[string]{Replica: "ghost", At: t0, Outcome: Failure})
	r.SetQueue("ghost", 3, t0)
	r.ObserveRTT("ghost", time.Second)
	r.Begin("ghost")
	if got := r.Choose(t0); len(got) != 0 {
		t.Errorf("Choose on empty router = %v", got)
	}
	r.Add("x", math.MaxUint32)
	if got := r.Status(t0)[0].Reputation; got != 1_000_000 {
		t.Errorf("reputation = %d, want clamped to 1e6", got)
	}
	r.Remove("x")
	if r.Has("x") || r.Len() != 0 {
		t.Error("Remove did not remove")
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{7}, 0.95, 7},
		{[]time.Duration{3, 1, 2}, 0.5, 2},
		{ramp(100), 0.99, 99 * time.Millisecond},
		{ramp(100), 0, time.Millisecond},
		{ramp(100), 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := quantile(slices.Clone(tt.in), tt.q); got != tt.want {
			t.Errorf("quantile(%d samples, %v) = %v, want %v", len(tt.in), tt.q, got, tt.want)
		}
	}
}

func TestSamplesRingKeepsNewest(t *testing.T) {
	s := newSamples(4)
	for i := 1; i <= 6; i++ {
		s.add(t0, time.Duration(i))
	}
	got := s.recent(t0, time.Second)
	slices.Sort(got)
	if want := []time.Duration{3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("ring = %v, want %v", got, want)
	}
}

func ramp(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestHedgeBudget(t *testing.T) {
	r := newRouter(1) // budget 10% of requests + 1, half-life 10 s
	tests := []struct {
		name     string
		requests int
		at       time.Duration
		hedges   int // attempted
		want     int // allowed
	}{
		{"one request may hedge", 1, 0, 3, 1},
		{"ten more requests earn one more hedge", 10, 0, 3, 1},
		{"a hundred requests earn about ten", 100, 0, 20, 10},
		{"counts decay: the old hedges stop counting", 0, 10 * time.Minute, 3, 1},
	}
	for _, tt := range tests {
		now := t0.Add(tt.at)
		for i := 0; i < tt.requests; i++ {
			r.NoteRequest(now)
		}
		got := 0
		for i := 0; i < tt.hedges; i++ {
			if r.TryHedge(now) {
				got++
			}
		}
		if got != tt.want {
			t.Errorf("%s: %d hedges allowed, want %d", tt.name, got, tt.want)
		}
	}
}
