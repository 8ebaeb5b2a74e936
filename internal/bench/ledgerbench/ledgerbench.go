// Package ledgerbench measures the ledger the way its users load it: a
// fresh chain of validators (each a `gridmind node` process, as in
// production, or in this process for tests), signed transactions of every
// common kind submitted over CometBFT's RPC with broadcast_tx_sync through
// chain.Client (the wallet's code), and commits observed through
// CometBFT's websocket event subscription (NewBlock). Nothing in the
// production packages knows it is being measured.
//
// `gridmind bench ledger` is the command line over Run.
package ledgerbench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// Options shape one run.
type Options struct {
	Validators int           // default 1
	Duration   time.Duration // of sustained load (default 60 s)
	// Exe is the gridmind binary: each validator runs as `Exe node --home
	// H`, a separate process, as in production. "" runs the validators in
	// this process (tests; one process shares its CPU between everything).
	Exe string
	// Submitters is how many goroutines submit, each with its own RPC
	// connection and its own accounts (default 16).
	Submitters int
	// Window bounds the transactions submitted but not yet seen committed
	// (default 8,000 for one validator, 2,500 for more), so the figures
	// are a steady state, not a growing backlog.
	Window int
	// Population of the chain, all funded at genesis (defaults 1,000
	// wallets, 1,000 providers, 20,000 observers).
	Wallets, Providers, Observers int
	// Drain bounds the wait for the last submitted transactions to commit
	// after the load stops (default 60 s).
	Drain  time.Duration
	Dir    string // scratch directory (default: a temporary one, removed after)
	Seed   int64
	Logger *slog.Logger
	// Progress, if set, is called about every two seconds.
	Progress func(Progress)
}

// Progress is reported while Run runs.
type Progress struct {
	Phase     string        `json:"phase"` // "starting", "setup", "load", "drain", "done"
	Submitted int           `json:"submitted"`
	Committed int           `json:"committed"`
	Height    int64         `json:"height"`
	Elapsed   time.Duration `json:"elapsed"`
}

// KindStats are the figures of one kind of transaction (or of all).
type KindStats struct {
	Kind      string  `json:"kind"`
	Committed int     `json:"committed"` // committed and applied (code 0)
	Failed    int     `json:"failed"`    // committed but refused by the ledger
	Share     float64 `json:"share"`     // of all committed, 0..1
	// Submit-to-commit latency: from the broadcast_tx_sync call to the
	// NewBlock event that carries the transaction.
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Report is what Run measured.
type Report struct {
	Date       time.Time     `json:"date"`
	Validators int           `json:"validators"`
	Mode       string        `json:"mode"` // how the validators ran
	GoVersion  string        `json:"go_version"`
	CPUs       int           `json:"cpus"`
	Submitters int           `json:"submitters"`
	Window     int           `json:"window"`
	Load       time.Duration `json:"load_ns"` // how long transactions were submitted
	// TPS is the transactions committed while the load ran, per second of
	// it: the sustained rate.
	TPS       float64 `json:"committed_per_second"`
	Submitted int     `json:"submitted"`
	// Uncommitted were submitted (CheckTx accepted them) but not seen in a
	// block before the drain ended.
	Uncommitted int         `json:"uncommitted"`
	Overall     KindStats   `json:"overall"`
	Kinds       []KindStats `json:"kinds"`
	// FailedLogs are the ledger's answers to the first few failures.
	FailedLogs  []string `json:"failed_logs,omitempty"`
	Blocks      int      `json:"blocks"` // blocks during the load
	MaxBlockTxs int      `json:"max_block_txs"`
	// CPU time per committed transaction during the load: the validator
	// processes' and this process's (the submitters, signing, RPC clients
	// and the event decoding). In-process runs have only Bench.
	ValidatorCPUPerTx time.Duration `json:"validator_cpu_per_tx_ns"`
	BenchCPUPerTx     time.Duration `json:"bench_cpu_per_tx_ns"`
	LoadAvgStart      string        `json:"loadavg_start"`
	LoadAvgEnd        string        `json:"loadavg_end"`
	// Substituted counts attestation slots sent as transfers because the
	// chain was near an epoch's end or every observer had attested it.
	Substituted int `json:"substituted"`
}

// String is a one-line summary.
func (r *Report) String() string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("%d validator(s) %s: %.0f committed tx/s over %s (%d committed, %d failed, %d uncommitted); latency p50 %s p95 %s p99 %s max %s; %d blocks (max %d txs); CPU per tx: validators %s, bench %s; loadavg %s → %s",
		r.Validators, r.Mode, r.TPS, r.Load.Round(time.Second), r.Overall.Committed, r.Overall.Failed, r.Uncommitted,
		ms(r.Overall.P50), ms(r.Overall.P95), ms(r.Overall.P99), ms(r.Overall.Max), r.Blocks, r.MaxBlockTxs,
		r.ValidatorCPUPerTx.Round(time.Microsecond), r.BenchCPUPerTx.Round(time.Microsecond), r.LoadAvgStart, r.LoadAvgEnd)
}

func (o *Options) defaults() error {
	if o.Validators == 0 {
		o.Validators = 1
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.Submitters == 0 {
		o.Submitters = 16
	}
	if o.Window == 0 {
		// One validator keeps up with a deep queue; several on one
		// machine starve their consensus if the mempools run far ahead.
		o.Window = 8_000
		if o.Validators > 1 {
			o.Window = 2_500
		}
	}
	if o.Wallets == 0 {
		o.Wallets = 1_000
	}
	if o.Providers == 0 {
		o.Providers = 1_000
	}
	if o.Observers == 0 {
		o.Observers = 20_000
	}
	if o.Drain == 0 {
		o.Drain = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Validators < 1 || o.Validators > 16:
		return fmt.Errorf("%d validators, want 1 to 16", o.Validators)
	case o.Duration < 0:
		return fmt.Errorf("duration %v, want a positive one", o.Duration)
	case o.Submitters < 1:
		return fmt.Errorf("%d submitters, want at least 1", o.Submitters)
	case o.Window < o.Submitters:
		return fmt.Errorf("window %d is below the %d submitters", o.Window, o.Submitters)
	case o.Wallets < 2*o.Submitters:
		return fmt.Errorf("%d wallets for %d submitters, want at least 2 per submitter", o.Wallets, o.Submitters)
	case o.Providers < jobWorkers+attestObservations:
		return fmt.Errorf("%d providers, want at least %d", o.Providers, jobWorkers+attestObservations)
	case o.Observers < o.Submitters:
		return fmt.Errorf("%d observers for %d submitters, want at least 1 per submitter", o.Observers, o.Submitters)
	}
	return nil
}

// Run starts a fresh chain, loads it for opts.Duration with the mix of
// transactions in mix.go, waits for what it submitted to commit, and
// throws the chain away.
func Run(ctx context.Context, opts Options) (*Report, error) {
	const op = "ledgerbench"
	if err := opts.defaults(); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	began := time.Now()
	progress := func(phase string, tr *tracker, sub int) {
		if opts.Progress == nil {
			return
		}
		p := Progress{Phase: phase, Submitted: sub, Elapsed: time.Since(began)}
		if tr != nil {
			p.Committed, p.Height = tr.committedCount(), tr.height.Load()
		}
		opts.Progress(p)
	}
	progress("starting", nil, 0)

	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "gridmind-ledgerbench-")
		if err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "%w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	pop := newPopulation(opts)
	net, err := startChain(ctx, dir, opts, pop.genesis())
	if err != nil {
		return nil, err
	}
	defer net.stop()

	tr, err := startTracker(ctx, net.rpcs[0], opts.Window, opts.Logger)
	if err != nil {
		return nil, err
	}
	defer tr.stop()

	w, err := newWorkload(ctx, net, pop, tr, opts)
	if err != nil {
		return nil, err
	}

	// Providers register their offers (a lease needs a registered
	// provider); this is set-up, not measured.
	progress("setup", tr, 0)
	if err := w.setup(ctx, func() { progress("setup", tr, int(w.submitted.Load())) }); err != nil {
		return nil, err
	}

	r := &Report{
		Date: time.Now().UTC(), Validators: opts.Validators, Mode: net.mode, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Submitters: opts.Submitters, Window: opts.Window, LoadAvgStart: loadAvg(),
	}
	valCPU0, benchCPU0 := net.cpu(), processCPU()
	tr.startWindow()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, opts.Submitters)
	stop := make(chan struct{})
	w.submitted.Store(0)
	for s := range opts.Submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.submitter(loadCtx, s, stop); err != nil {
				errs <- err
				stopLoad()
			}
		}()
	}
	loadStart := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	end := time.NewTimer(opts.Duration)
	defer end.Stop()
	var failure error
load:
	for {
		select {
		case <-end.C:
			break load
		case err := <-errs:
			failure = err
			break load
		case <-ctx.Done():
			failure = ctx.Err()
			break load
		case err := <-tr.failed:
			failure = err
			break load
		case <-tick.C:
			progress("load", tr, int(w.submitted.Load()))
		}
	}
	// Let each submitter finish the broadcast it is in (cancelling one
	// midway would leave its outcome unknown), then stop.
	close(stop)
	wg.Wait()
	stopLoad()
	r.Load = time.Since(loadStart)
	tr.endWindow()
	valCPU, benchCPU := net.cpu()-valCPU0, processCPU()-benchCPU0
	if failure == nil {
		select {
		case failure = <-errs:
		default:
		}
	}
	if failure != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", failure)
	}

	progress("drain", tr, int(w.submitted.Load()))
	drain, cancel := context.WithTimeout(ctx, opts.Drain)
	tr.waitEmpty(drain, func() { progress("drain", tr, int(w.submitted.Load())) })
	cancel()
	r.LoadAvgEnd = loadAvg()
	tr.summarise(r)
	r.Submitted = int(w.submitted.Load())
	r.Substituted = int(w.substituted.Load())
	if n := r.Overall.Committed + r.Overall.Failed; n > 0 {
		inWindow := max(tr.windowCommits(), 1)
		r.ValidatorCPUPerTx = valCPU / time.Duration(inWindow)
		r.BenchCPUPerTx = benchCPU / time.Duration(inWindow)
	}
	progress("done", tr, r.Submitted)
	return r, nil
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func stats(kind string, lat []time.Duration, failed int) KindStats {
	slices.Sort(lat)
	s := KindStats{Kind: kind, Committed: len(lat), Failed: failed,
		P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99)}
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	return s
}

// loadAvg reads the machine's load averages (Linux), to say how shared
// the machine was while measuring.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
