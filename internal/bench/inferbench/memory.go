package inferbench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/route"
	"github.com/gridmind/gridmind/serve"
)

// MemoryOptions configures RunMemory ("gridmind bench infer"). Zero fields
// take the defaults in brackets.
type MemoryOptions struct {
	Replicas     int             // serving nodes [10]
	Latencies    []time.Duration // round-trip time to each replica, cycled [5, 20, 80 ms]
	Requests     int             // measured requests per run [2000]
	Warmup       int             // unmeasured requests before each run, so routing has measured RTTs [100]
	Rate         float64         // requests per second, Poisson arrivals (open loop) [200]
	MaxTokens    int             // tokens per completion [16]
	TokenDelay   time.Duration   // generation time per token [1 ms]
	Workers      int             // concurrent generations per replica [4]
	KillFraction float64         // share of replicas killed in the failure run [0.2]
	KillAt       float64         // share of measured requests issued before the kill [0.3]
	Pairs        int             // (baseline, failures) pairs, alternating order, pooled [1]
	Seed         uint64          // arrivals, prompts, keys and routing [1]
	Route        route.Config    // router weights [route.DefaultConfig]
	Logger       *slog.Logger
}

// Progress is reported as requests complete (one call at a time).
type Progress struct {
	Run         string // "baseline" or "failures"
	Done, Total int
}

// RunStats is the outcome of one run.
type RunStats struct {
	Name               string
	Requests           int
	Failed             int // errors or wrong text
	P50, P90, P95, P99 time.Duration
	Max                time.Duration
	Hedges             int64
	Failovers          int64
	Resumes            int64
	Killed             []gridmind.NodeID
	KilledRTT          []time.Duration
	StreamsCut         int           // streams open on the killed replicas when they died
	Wall               time.Duration // measured part of the run
	// ServedByRTT counts answers by the round-trip time of the replica
	// that finished them (how routing spread the load).
	ServedByRTT map[time.Duration]int
	Slowest     []Sample // the slowest requests, slowest first
	// SchedP99 and SchedMax are how late a 1 ms timer fired during the
	// measured part of the run (p99 and worst): the machine's own noise,
	// which every request latency includes.
	SchedP99, SchedMax time.Duration
}

// Sample describes one request, for looking into the tail.
type Sample struct {
	Index     int
	Latency   time.Duration
	ServerRTT time.Duration // of the replica that finished it
	Attempts  int
	Hedged    bool
	Resumed   bool
	AfterKill bool
}

// MemoryReport compares a run without failures with the same run (same
// arrivals, prompts and seeds) in which KillFraction of the replicas are
// killed mid-run. With several pairs the runs alternate in order (so that
// drift in machine load hits both alike) and their requests are pooled.
type MemoryReport struct {
	Options      MemoryOptions
	Baseline     RunStats // pooled over pairs
	WithFailures RunStats // pooled over pairs
	P99Ratio     float64  // WithFailures.P99 / Baseline.P99
	PairRatios   []float64
	Pass         bool // P99Ratio <= 1.3 and no failed requests in either run
}

// Goal is what Pass checks.
const Goal = "p99 with failures <= 1.3 x p99 without, and zero failed requests"

func (o MemoryOptions) withDefaults() MemoryOptions {
	if o.Replicas <= 0 {
		o.Replicas = 10
	}
	if len(o.Latencies) == 0 {
		o.Latencies = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond}
	}
	if o.Requests <= 0 {
		o.Requests = 2000
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 100
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 16
	}
	if o.TokenDelay <= 0 {
		o.TokenDelay = time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.KillFraction <= 0 {
		o.KillFraction = 0.2
	}
	o.KillFraction = math.Min(o.KillFraction, 1)
	if o.KillAt <= 0 || o.KillAt >= 1 {
		o.KillAt = 0.3
	}
	if o.Pairs <= 0 {
		o.Pairs = 1
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RunMemory runs the inference fail-over benchmark on an in-memory network:
// Replicas serving nodes with the given round-trip times and one client
// node sending streaming requests at Rate; first without failures, then
// with the busiest KillFraction of replicas killed (their streams reset,
// new ones refused) after KillAt of the requests. Every answer is checked
// against the deterministic expected text, so a resumed stream that
// spliced wrong text counts as failed.
func RunMemory(ctx context.Context, opts MemoryOptions, progress func(Progress)) (MemoryReport, error) {
	opts = opts.withDefaults()
	if opts.Replicas < 2 {
		return MemoryReport{}, gridmind.E(gridmind.KindInvalid, "inferbench", "need at least 2 replicas, got %d", opts.Replicas)
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	rep := MemoryReport{Options: opts}
	var base, fail []RunStats
	var baseLat, failLat []time.Duration
	for p := 0; p < opts.Pairs; p++ {
		var b, f RunStats
		var bl, fl []time.Duration
		var err error
		if p%2 == 0 {
			if b, bl, err = memoryRun(ctx, opts, false, progress); err == nil {
				f, fl, err = memoryRun(ctx, opts, true, progress)
			}
		} else {
			if f, fl, err = memoryRun(ctx, opts, true, progress); err == nil {
				b, bl, err = memoryRun(ctx, opts, false, progress)
			}
		}
		if err != nil {
			return rep, err
		}
		base, fail = append(base, b), append(fail, f)
		baseLat, failLat = append(baseLat, bl...), append(failLat, fl...)
		rep.PairRatios = append(rep.PairRatios, float64(f.P99)/float64(b.P99))
	}
	rep.Baseline, rep.WithFailures = pool(base, baseLat), pool(fail, failLat)
	if rep.Baseline.P99 > 0 {
		rep.P99Ratio = float64(rep.WithFailures.P99) / float64(rep.Baseline.P99)
	}
	rep.Pass = rep.P99Ratio > 0 && rep.P99Ratio <= 1.3 && rep.Baseline.Failed == 0 && rep.WithFailures.Failed == 0
	return rep, nil
}

func benchKey(seed uint64, i int) ed25519.PrivateKey {
	var s [ed25519.SeedSize]byte
	binary.BigEndian.PutUint64(s[:], seed)
	binary.BigEndian.PutUint64(s[8:], uint64(i))
	return ed25519.NewKeyFromSeed(s[:])
}

type result struct {
	Sample
	failed bool
}

// pool merges runs of one scenario; percentiles come from all latencies.
func pool(runs []RunStats, lat []time.Duration) RunStats {
	out := RunStats{Name: runs[0].Name}
	for _, r := range runs {
		out.Requests += r.Requests
		out.Failed += r.Failed
		out.Hedges += r.Hedges
		out.Failovers += r.Failovers
		out.Resumes += r.Resumes
		out.Killed = append(out.Killed, r.Killed...)
		out.KilledRTT = append(out.KilledRTT, r.KilledRTT...)
		out.StreamsCut += r.StreamsCut
		out.Wall += r.Wall
		out.SchedP99 = max(out.SchedP99, r.SchedP99)
		out.SchedMax = max(out.SchedMax, r.SchedMax)
		if out.ServedByRTT == nil {
			out.ServedByRTT = map[time.Duration]int{}
		}
		for k, v := range r.ServedByRTT {
			out.ServedByRTT[k] += v
		}
		out.Slowest = append(out.Slowest, r.Slowest...)
	}
	sort.Slice(out.Slowest, func(i, j int) bool { return out.Slowest[i].Latency > out.Slowest[j].Latency })
	out.Slowest = out.Slowest[:min(5, len(out.Slowest))]
	out.P50, out.P90, out.P95, out.P99, out.Max = percentiles(lat)
	return out
}

// percentiles returns the nearest-rank p50, p90, p95, p99 and the maximum.
func percentiles(lat []time.Duration) (p50, p90, p95, p99, maxLat time.Duration) {
	if len(lat) == 0 {
		return
	}
	lat = slices.Clone(lat)
	slices.Sort(lat)
	pct := func(q float64) time.Duration {
		return lat[max(0, min(len(lat)-1, int(math.Ceil(q*float64(len(lat))))-1))]
	}
	return pct(0.50), pct(0.90), pct(0.95), pct(0.99), lat[len(lat)-1]
}

func memoryRun(ctx context.Context, opts MemoryOptions, kill bool, progress func(Progress)) (RunStats, []time.Duration, error) {
	name := "baseline"
	if kill {
		name = "failures"
	}
	run := RunStats{Name: name, Requests: opts.Requests}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	netw := testnet.NewMemNetwork()
	defer netw.Close()
	const model = "bench-model"
	dir := serve.StaticDirectory{}
	rtt := map[gridmind.NodeID]time.Duration{}
	var ids []gridmind.NodeID
	for i := 0; i < opts.Replicas; i++ {
		key := benchKey(opts.Seed, i+1)
		local := serve.NewLocal(serve.LocalConfig{Workers: opts.Workers, Logger: quiet})
		if err := local.Add(model, testnet.FakeGenerator{TokenDelay: opts.TokenDelay}); err != nil {
			return run, nil, err
		}
		srv, err := serve.NewServer(serve.ServerConfig{Key: key, Local: local, Logger: quiet})
		if err != nil {
			return run, nil, err
		}
		lat := opts.Latencies[i%len(opts.Latencies)]
		netw.Listen(srv.ID(), lat, srv.Handler(ctx))
		rtt[srv.ID()] = lat
		ids = append(ids, srv.ID())
		dir[model] = append(dir[model], serve.Replica{ID: srv.ID(), ReputationPPM: 900_000})
	}
	clientKey := benchKey(opts.Seed, 0)
	clientID := gridmind.NodeIDFromPublicKey(clientKey.Public().(ed25519.PublicKey))
	client, err := serve.NewClient(serve.ClientConfig{Key: clientKey, Dialer: netw.Dialer(clientID), Directory: dir,
		Route: opts.Route, Seed: opts.Seed, RefreshEvery: time.Hour, Logger: quiet})
	if err != nil {
		return run, nil, err
	}

	// The same arrival gaps and prompts in both runs.
	rng := rand.New(rand.NewPCG(opts.Seed, 0xbe9c4))
	total := opts.Warmup + opts.Requests
	gaps := make([]time.Duration, total)
	for i := range gaps {
		gaps[i] = time.Duration(rng.ExpFloat64() / opts.Rate * float64(time.Second))
	}
	killIndex := opts.Warmup + int(opts.KillAt*float64(opts.Requests))
	nKill := max(1, int(math.Round(opts.KillFraction*float64(opts.Replicas))))

	results := make([]result, total)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	var before serve.ClientStats
	var start time.Time
	canaryCtx, stopCanary := context.WithCancel(ctx)
	defer stopCanary()
	var canaryDone chan []time.Duration
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	next := time.Now()
	for i := 0; i < total; i++ {
		next = next.Add(gaps[i])
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait) // open-loop arrival schedule
			select {
			case <-timer.C:
			case <-ctx.Done():
				wg.Wait()
				return run, nil, ctx.Err()
			}
		}
		if i == opts.Warmup {
			wg.Wait() // warm-up finished: measure from a clean state
			before = client.Stats()
			start = time.Now()
			next = start
			canaryDone = make(chan []time.Duration, 1)
			go schedCanary(canaryCtx, canaryDone)
		}
		if kill && i == killIndex {
			run.Killed, run.StreamsCut = killBusiest(netw, ids, rtt, nKill)
			for _, id := range run.Killed {
				run.KilledRTT = append(run.KilledRTT, rtt[id])
			}
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := serve.Request{ID: fmt.Sprintf("bench-%d", i), Model: model, Prompt: fmt.Sprintf("bench prompt %d", i),
				MaxTokens: opts.MaxTokens, Temperature: 1, TopP: 1, Seed: int64(i)}
			t0 := time.Now()
			var got []byte
			comp, err := client.Complete(ctx, r, func(p string) error { got = append(got, p...); return nil })
			lat := time.Since(t0)
			failed := err != nil || string(got) != testnet.FakeText(r.Prompt, r.Seed, r.MaxTokens) || comp.Text != string(got)
			if failed && i >= opts.Warmup {
				opts.Logger.Warn("bench request failed", "request", i, "err", err)
			}
			results[i] = result{Sample: Sample{Index: i - opts.Warmup, Latency: lat, ServerRTT: rtt[comp.Server],
				Attempts: comp.Attempts, Hedged: comp.Hedged, Resumed: comp.Resumed, AfterKill: kill && i >= killIndex}, failed: failed}
			if i >= opts.Warmup {
				mu.Lock() // progress is called from one goroutine at a time
				done++
				progress(Progress{Run: name, Done: done, Total: opts.Requests})
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	run.Wall = time.Since(start)
	stopCanary()
	if canaryDone != nil {
		late := <-canaryDone
		_, _, _, run.SchedP99, run.SchedMax = percentiles(late)
	}
	after := client.Stats()
	run.Hedges = after.Hedges - before.Hedges
	run.Failovers = after.Failovers - before.Failovers
	run.Resumes = after.Resumes - before.Resumes

	lat := make([]time.Duration, 0, opts.Requests)
	run.ServedByRTT = map[time.Duration]int{}
	measured := results[opts.Warmup:]
	for _, r := range measured {
		lat = append(lat, r.Latency)
		if r.failed {
			run.Failed++
		} else {
			run.ServedByRTT[r.ServerRTT]++
		}
	}
	slow := make([]Sample, len(measured))
	for i, r := range measured {
		slow[i] = r.Sample
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].Latency > slow[j].Latency })
	run.Slowest = slow[:min(5, len(slow))]
	run.P50, run.P90, run.P95, run.P99, run.Max = percentiles(lat)
	return run, lat, nil
}

// schedCanary measures how late a 1 ms timer fires until ctx ends.
func schedCanary(ctx context.Context, out chan<- []time.Duration) {
	var late []time.Duration
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for {
		t0 := time.Now()
		t.Reset(time.Millisecond)
		select {
		case <-ctx.Done():
			out <- late
			return
		case <-t.C:
			late = append(late, time.Since(t0)-time.Millisecond)
		}
	}
}

// killBusiest kills the n replicas with the most open streams (ties: the
// nearest first, as those are the ones routing prefers), the worst case
// for fail-over, and returns them and how many streams they had.
func killBusiest(netw *testnet.MemNetwork, ids []gridmind.NodeID, rtt map[gridmind.NodeID]time.Duration, n int) ([]gridmind.NodeID, int) {
	type load struct {
		id      gridmind.NodeID
		streams int
	}
	loads := make([]load, len(ids))
	for i, id := range ids {
		loads[i] = load{id, netw.ActiveStreams(id)}
	}
	sort.Slice(loads, func(i, j int) bool {
		a, b := loads[i], loads[j]
		if a.streams != b.streams {
			return a.streams > b.streams
		}
		if rtt[a.id] != rtt[b.id] {
			return rtt[a.id] < rtt[b.id]
		}
		return a.id < b.id
	})
	var killed []gridmind.NodeID
	cut := 0
	for _, l := range loads[:min(n, len(loads))] {
		cut += netw.Kill(l.id)
		killed = append(killed, l.id)
	}
	return killed, cut
}
