package inferbench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/route"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/serve/p2pnet"
	"github.com/gridmind/gridmind/train"
)

// Scenarios of RunP2P.
const (
	Baseline = "baseline" // no failure
	Killed   = "killed"   // one replica's process is killed (SIGKILL) mid-run
	Silent   = "silent"   // one replica's process is frozen (SIGSTOP) mid-run
)

// P2POptions configures RunP2P ("gridmind bench infer"). Zero fields take
// the defaults in brackets.
type P2POptions struct {
	// Exe and Args start one replica process; Exe must call ServeReplica
	// when IsReplica (`gridmind bench infer` does). Required.
	Exe  string
	Args []string

	Replicas  int          // replica processes [4]
	Requests  int          // measured requests per run [300]
	Warmup    int          // unmeasured requests first, so routing has measured RTTs and latencies [30]; -1: none
	Rate      float64      // requests per second, Poisson arrivals (open loop) [3]
	MaxTokens int          // tokens per completion [16]
	Prompts   int          // distinct (prompt, seed) pairs, cycled; their answers are computed here to check every reply [24]
	Model     gomlx.Config // the served model, built from its seed in every replica [the default MLP, seed 1]
	FailAt    float64      // share of measured requests issued before the failure [0.3]
	Scenarios []string     // in order [baseline, killed, silent]
	Rounds    int          // rounds of every scenario, each round's order rotated by one, pooled [1]
	Seed      uint64       // arrivals, keys and routing [1]
	Logger    *slog.Logger
}

// P2PReport holds one run per scenario, in order, and each failure run's
// p99 against the baseline's measured in the same invocation.
type P2PReport struct {
	Options  P2POptions
	Model    string // the served model's hash (train.HashTheta), the same on every replica
	Params   int
	Runs     []RunStats
	P99Ratio map[string]float64 // scenario → its p99 / the baseline's
	Pass     bool               // every ratio <= 1.3 and no failed request in any run
}

func (o P2POptions) withDefaults() P2POptions {
	if o.Replicas <= 0 {
		o.Replicas = 4
	}
	if o.Requests <= 0 {
		o.Requests = 300
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = 30
	}
	if o.Rate <= 0 {
		o.Rate = 3
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 16
	}
	if o.Prompts <= 0 {
		o.Prompts = 24
	}
	if o.Model.Kind == "" {
		o.Model = gomlx.Config{Kind: gomlx.MLP, Seed: 1}
	}
	if o.FailAt <= 0 || o.FailAt >= 1 {
		o.FailAt = 0.3
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = []string{Baseline, Killed, Silent}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RunP2P measures inference fail-over as nodes run it: Replicas processes
// each serve the GoMLX model over libp2p on loopback (announced in the
// DHT), and this process's client — serve.Client over p2pnet, found
// through p2pnet.Directory, as a node's /v1/completions forwards — sends
// streaming requests at Rate. Each scenario runs on fresh processes: no
// failure, one replica killed, one replica frozen; the victim is the
// replica with the most of the client's requests in flight when FailAt of
// the measured requests have been issued. Every answer is checked against
// the text the model gives here for the same prompt and seed.
func RunP2P(ctx context.Context, opts P2POptions, progress func(Progress)) (P2PReport, error) {
	opts = opts.withDefaults()
	rep := P2PReport{Options: opts, P99Ratio: map[string]float64{}}
	if opts.Exe == "" {
		return rep, gridmind.E(gridmind.KindInvalid, "inferbench", "no executable to start replicas with")
	}
	if opts.Replicas < 2 {
		return rep, gridmind.E(gridmind.KindInvalid, "inferbench", "need at least 2 replicas, got %d", opts.Replicas)
	}
	for _, s := range opts.Scenarios {
		if s != Baseline && s != Killed && s != Silent {
			return rep, gridmind.E(gridmind.KindInvalid, "inferbench", "scenario %q: want %s, %s or %s", s, Baseline, Killed, Silent)
		}
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	want, err := expectedTexts(ctx, opts, &rep)
	if err != nil {
		return rep, err
	}
	// Rotating the order from round to round spreads drift in the
	// machine's load over every scenario alike.
	runs := map[string][]RunStats{}
	lats := map[string][]time.Duration{}
	for round := 0; round < opts.Rounds; round++ {
		for k := range opts.Scenarios {
			scenario := opts.Scenarios[(k+round)%len(opts.Scenarios)]
			run, lat, err := p2pRun(ctx, opts, scenario, rep.Model, want, progress)
			if err != nil {
				return rep, fmt.Errorf("%s run: %w", scenario, err)
			}
			runs[scenario] = append(runs[scenario], run)
			lats[scenario] = append(lats[scenario], lat...)
		}
	}
	for _, scenario := range opts.Scenarios {
		if len(runs[scenario]) > 0 {
			rep.Runs = append(rep.Runs, pool(runs[scenario], lats[scenario]))
			delete(runs, scenario) // a scenario listed twice is reported once
		}
	}
	rep.Pass = true
	var base *RunStats
	for i := range rep.Runs {
		if rep.Runs[i].Name == Baseline {
			base = &rep.Runs[i]
		}
		if rep.Runs[i].Failed > 0 {
			rep.Pass = false
		}
	}
	for _, r := range rep.Runs {
		if r.Name == Baseline || base == nil || base.P99 <= 0 {
			continue
		}
		ratio := float64(r.P99) / float64(base.P99)
		rep.P99Ratio[r.Name] = ratio
		if ratio > 1.3 {
			rep.Pass = false
		}
	}
	if base == nil {
		rep.Pass = false // nothing to compare with
	}
	return rep, nil
}

func prompt(opts P2POptions, i int) (string, int64) {
	k := i % opts.Prompts
	return fmt.Sprintf("The grid %d ", k), int64(k) + 1
}

// expectedTexts builds the model here (from the same seed as the
// replicas) and generates every prompt's answer.
func expectedTexts(ctx context.Context, opts P2POptions, rep *P2PReport) ([]string, error) {
	model, err := gomlx.New(opts.Model, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer model.Close()
	params, err := model.Params()
	if err != nil {
		return nil, err
	}
	rep.Model, rep.Params = train.HashTheta(params).String(), len(params)
	want := make([]string, opts.Prompts)
	for k := range want {
		p, seed := prompt(opts, k)
		if want[k], err = model.Generate(ctx, p, gridmind.GenerateOptions{MaxTokens: opts.MaxTokens, Temperature: 1, TopP: 1, Seed: seed}); err != nil {
			return nil, err
		}
	}
	return want, nil
}

func nodeSeed(seed uint64, i int) []byte {
	var s [ed25519.SeedSize]byte
	copy(s[:], "inferbench")
	binary.BigEndian.PutUint64(s[16:], seed)
	binary.BigEndian.PutUint64(s[24:], uint64(i))
	return s[:]
}

func p2pRun(ctx context.Context, opts P2POptions, scenario, model string, want []string, progress func(Progress)) (RunStats, []time.Duration, error) {
	run := RunStats{Name: scenario, Requests: opts.Requests}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	// Replicas, each joining the DHT through the ones started before it.
	var procs []*replicaProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	var peers []string
	for i := 0; i < opts.Replicas; i++ {
		p, err := startReplica(ctx, opts.Exe, opts.Args, replicaConfig{KeySeed: nodeSeed(opts.Seed, i+1), Model: opts.Model, Peers: peers})
		if err != nil {
			return run, nil, err
		}
		procs = append(procs, p)
		if p.ready.Model != model {
			return run, nil, fmt.Errorf("replica %d serves model %.12s, this process built %.12s", i, p.ready.Model, model)
		}
		peers = append(peers, p.ready.Addrs[0])
	}

	clientKey := ed25519.NewKeyFromSeed(nodeSeed(opts.Seed, 0))
	host, err := p2p.New(ctx, p2p.Config{Key: clientKey, LoopbackOnly: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet})
	if err != nil {
		return run, nil, err
	}
	defer host.Close()
	for _, addr := range peers {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		err := host.Connect(cctx, addr)
		ccancel()
		if err != nil {
			return run, nil, err
		}
	}
	// The directory a node uses (app.startServing), without heartbeats:
	// every replica has a neutral reputation and no reported queue.
	dir := &p2pnet.Directory{Host: host}
	if err := netutil.PollUntil(ctx, 30*time.Second, 50*time.Millisecond, func() bool {
		reps, err := dir.Replicas(ctx, model)
		return err == nil && len(reps) == opts.Replicas
	}); err != nil {
		return run, nil, fmt.Errorf("waiting for %d providers of the model in the DHT: %w", opts.Replicas, err)
	}
	client, err := serve.NewClient(serve.ClientConfig{Key: clientKey, Dialer: p2pnet.Dialer{Host: host}, Directory: dir,
		Seed: opts.Seed, Logger: quiet})
	if err != nil {
		return run, nil, err
	}
	byID := map[gridmind.NodeID]*replicaProc{}
	for _, p := range procs {
		byID[p.ready.ID] = p
	}

	// The same arrival gaps in every run.
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e2c))
	total := opts.Warmup + opts.Requests
	gaps := make([]time.Duration, total)
	for i := range gaps {
		gaps[i] = time.Duration(rng.ExpFloat64() / opts.Rate * float64(time.Second))
	}
	failIndex := opts.Warmup + int(opts.FailAt*float64(opts.Requests))

	results := make([]result, total)
	var wg, failing sync.WaitGroup
	defer wg.Wait() // every request goroutine ends before the hosts close
	defer failing.Wait()
	failed := make(chan failure, 1)
	var mu sync.Mutex
	done := 0
	var before serve.ClientStats
	var start time.Time
	canaryCtx, stopCanary := context.WithCancel(ctx)
	defer stopCanary()
	var canaryDone chan []time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := time.Now()
	for i := 0; i < total; i++ {
		next = next.Add(gaps[i])
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait) // the open-loop arrival schedule
			select {
			case <-timer.C:
			case <-ctx.Done():
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
		if scenario != Baseline && i == failIndex {
			failing.Add(1)
			go func() {
				defer failing.Done()
				failed <- failBusiest(ctx, opts, scenario, client, model, byID)
			}()
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			text, seed := prompt(opts, i)
			r := serve.Request{ID: fmt.Sprintf("bench-%s-%d", scenario, i), Model: model, Prompt: text,
				MaxTokens: opts.MaxTokens, Temperature: 1, TopP: 1, Seed: seed}
			t0 := time.Now()
			var got []byte
			comp, err := client.Complete(ctx, r, func(p string) error { got = append(got, p...); return nil })
			lat := time.Since(t0)
			expected := want[i%opts.Prompts]
			failed := err != nil || string(got) != expected || comp.Text != expected
			if failed && i >= opts.Warmup && ctx.Err() == nil {
				opts.Logger.Warn("bench request failed", "request", i, "err", err, "got", string(got), "want", expected)
			}
			results[i] = result{Sample: Sample{Index: i - opts.Warmup, Latency: lat, Attempts: comp.Attempts,
				Hedged: comp.Hedged, Resumed: comp.Resumed, AfterKill: scenario != Baseline && i >= failIndex}, failed: failed}
			if i >= opts.Warmup {
				mu.Lock() // progress is called from one goroutine at a time
				done++
				progress(Progress{Run: scenario, Done: done, Total: opts.Requests})
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	run.Wall = time.Since(start)
	if scenario != Baseline {
		f := <-failed
		if f.err != nil {
			return run, nil, f.err
		}
		run.Killed, run.StreamsCut = []gridmind.NodeID{f.victim}, f.inFlight
	}
	stopCanary()
	if canaryDone != nil {
		late := <-canaryDone
		_, _, _, run.SchedP99, run.SchedMax = percentiles(late)
	}
	after := client.Stats()
	run.Hedges = after.Hedges - before.Hedges
	run.Failovers = after.Failovers - before.Failovers
	run.Resumes = after.Resumes - before.Resumes

	measured := results[opts.Warmup:]
	lat := make([]time.Duration, 0, len(measured))
	slow := make([]Sample, 0, len(measured))
	for _, r := range measured {
		lat = append(lat, r.Latency)
		slow = append(slow, r.Sample)
		if r.failed {
			run.Failed++
		}
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i].Latency > slow[j].Latency })
	run.Slowest = slow[:min(5, len(slow))]
	run.P50, run.P90, run.P95, run.P99, run.Max = percentiles(lat)
	return run, lat, nil
}

type failure struct {
	victim   gridmind.NodeID
	inFlight int
	err      error
}

// failBusiest waits (up to 10 s) until some replica has a request of the
// client's in flight, so the failure cuts work under way, then kills or
// freezes the replica with the most (ties: the one routing prefers).
func failBusiest(ctx context.Context, opts P2POptions, scenario string, client *serve.Client, model string, procs map[gridmind.NodeID]*replicaProc) failure {
	var top route.Status[gridmind.NodeID]
	_ = netutil.PollUntil(ctx, 10*time.Second, time.Millisecond, func() bool {
		status := client.Status(model)
		sort.SliceStable(status, func(i, j int) bool {
			if status[i].InFlight != status[j].InFlight {
				return status[i].InFlight > status[j].InFlight
			}
			return status[i].Cost < status[j].Cost
		})
		if len(status) > 0 {
			top = status[0]
		}
		return top.InFlight > 0
	})
	p := procs[top.ID]
	if p == nil {
		return failure{err: fmt.Errorf("no replica process for %q", top.ID)}
	}
	if scenario == Killed {
		p.kill()
	} else if err := p.freeze(); err != nil {
		return failure{err: err}
	}
	opts.Logger.Info("replica failed", "scenario", scenario, "replica", top.ID.Short(), "in_flight", top.InFlight)
	return failure{victim: top.ID, inFlight: top.InFlight}
}
