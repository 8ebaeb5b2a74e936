// Package trainbench measures DiLoCo training as gridmind runs it: workers
// built with diloco.NewWorker exchange signed messages and quantized
// pseudo-gradients, in this process on an in-memory network, and the same
// model is trained by a synchronous data-parallel baseline in the same run
// for the comparison. It also times the all-reduce on the in-memory
// network, on loopback libp2p (diloco.P2PTransport) and the same byte
// pattern on raw TCP.
//
// `gridmind bench train` is the command line over Run.
package trainbench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// Options configure Run. Every configuration trains the same
// model from the same weights on the same data for the same total number
// of inner steps (so the same number of training tokens), and differs only
// in the number of workers and in how they communicate.
type Options struct {
	// NewTrainer builds the trainer of a worker; every call must give the
	// same starting weights (the same seed).
	NewTrainer func() (gridmind.Trainer, error)
	// NewSyncTrainer, if set, builds the synchronous data-parallel
	// baseline for k workers: the same model and starting weights, with a
	// batch k times a worker's. One optimizer step on the k workers'
	// batches together is exactly one step of synchronous data-parallel
	// training (the gradient of the mean loss over k batches is the mean of
	// the k gradients). Without it the baseline is the older emulation:
	// every worker steps its own AdamW and the weights are averaged after
	// every step, which is not the same thing.
	NewSyncTrainer func(k int) (gridmind.Trainer, error)
	// Batches is the data of worker (0-based) of workers in round.
	Batches func(workers, worker int, round uint64) gridmind.BatchSource
	// EvalBatches measure the final loss.
	EvalBatches []gridmind.Batch
	// Workers lists K values (default 4 and 8).
	Workers []int
	// InnerSteps lists the DiLoCo H values (default 1, 10, 50, 250, 500).
	InnerSteps []int
	// TotalSteps is the number of inner steps summed over all workers
	// (default 4000): each of K workers runs TotalSteps/K steps. H values
	// larger than that are skipped.
	TotalSteps int
	// BlockSize of the quantization (default 256).
	BlockSize int
	// Codec of DiLoCo's pseudo-gradients and combined parts: train.CodecInt8
	// (the default) or train.CodecInt4. The synchronous baseline is always
	// float32.
	Codec train.Codec
	// Combiner for DiLoCo (default mean).
	Combiner train.Combiner
	// Outer is DiLoCo's outer optimizer (default lr 0.7, momentum 0.9).
	Outer train.Nesterov
	// ThroughputParams is the vector length of the all-reduce throughput
	// test (default 4Mi float32 values, 16 MiB); 0 keeps the default, a
	// negative value skips the test.
	ThroughputParams int
	// ThroughputLibp2p also measures over loopback libp2p (default true via Workers' first value).
	SkipLibp2p bool
	Logger     *slog.Logger
}

// Row is one configuration's result.
type Row struct {
	Method         string // "diloco", "sync-dp" (true synchronous data-parallel) or "param-avg" (weights averaged every step)
	Workers        int
	InnerSteps     int
	Rounds         int
	Codec          string
	StepsPerWorker int
	Tokens         int64 // training tokens, all workers
	FinalEvalLoss  float64
	BytesPerWorker int64   // everything a worker sent, mean over workers
	Reduction      float64 // the synchronous baseline's bytes per worker divided by this row's
	LossVsSync     float64 // (loss − baseline loss) / baseline loss
	Wall           time.Duration
	Skipped        string
}

// ThroughputRow is the all-reduce throughput over one transport.
type ThroughputRow struct {
	Transport      string
	Workers        int
	VectorBytes    int   // float32 bytes of the vector reduced
	BytesPerWorker int64 // sent per worker per all-reduce
	Seconds        float64
	BytesPerSec    float64 // per worker
}

// Report is what Run measured.
type Report struct {
	Date       time.Time
	TotalSteps int
	NumParams  int
	Rows       []Row
	Throughput []ThroughputRow
}

func (o *Options) withDefaults() error {
	if o.NewTrainer == nil || o.Batches == nil || len(o.EvalBatches) == 0 {
		return gridmind.E(gridmind.KindInvalid, "trainbench", "a trainer factory, a batch source and evaluation batches are required")
	}
	if len(o.Workers) == 0 {
		o.Workers = []int{4, 8}
	}
	if len(o.InnerSteps) == 0 {
		o.InnerSteps = []int{1, 10, 50, 250, 500}
	}
	if o.TotalSteps <= 0 {
		o.TotalSteps = 4000
	}
	if o.BlockSize <= 0 {
		o.BlockSize = train.DefaultBlockSize
	}
	if o.Codec == 0 {
		o.Codec = train.CodecInt8
	}
	if !o.Codec.Quantizes() {
		return gridmind.E(gridmind.KindInvalid, "trainbench", "codec %s: DiLoCo runs with int8 or int4", o.Codec)
	}
	if o.ThroughputParams == 0 {
		o.ThroughputParams = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range o.Workers {
		if k < 1 || k > 256 {
			return gridmind.E(gridmind.KindInvalid, "trainbench", "workers %d outside 1..256", k)
		}
	}
	return nil
}

// benchTiming never gives up on a live worker: in a benchmark nobody
// fails, and a worker slowed by a busy CPU must not be left out.
var benchTiming = train.Timing{
	ReadySlack: 1, MinReadyWait: 2 * time.Minute, MaxReadyWait: 10 * time.Minute, LeaderGrace: time.Minute,
	ResendEvery: 500 * time.Millisecond, ExchangeSlack: 10, MinExchangeWait: time.Minute, MaxExchangeWait: 10 * time.Minute,
}

// Run compares DiLoCo (int8 or int4 as opts.Codec says, outer
// Nesterov lr 0.7 momentum 0.9 unless opts.Outer says otherwise) for
// each K and H against the synchronous data-parallel baseline, emulated as
// H=1 with the float32 codec and an outer SGD of lr 1 without momentum:
// after every single inner step the workers' weights are averaged exactly
// (θ ← mean of the workers' θ). Each worker keeps its own AdamW moments, so
// this is parameter averaging after every step, which equals gradient
// averaging for plain SGD but not exactly for AdamW. Workers run in this
// process on the in-memory transport; the all-reduce throughput is then
// measured on the in-memory transport, loopback libp2p and raw TCP.
func Run(ctx context.Context, opts Options, progress func(line string)) (Report, error) {
	if err := opts.withDefaults(); err != nil {
		return Report{}, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	rep := Report{Date: time.Now().UTC(), TotalSteps: opts.TotalSteps}
	for _, k := range opts.Workers {
		steps := opts.TotalSteps / k
		var base benchResult
		var err error
		if opts.NewSyncTrainer != nil {
			base, err = benchSyncDP(ctx, opts, k, steps, progress)
		} else {
			base, err = benchOne(ctx, opts, k, 1, steps, true, progress)
		}
		if err != nil {
			return rep, err
		}
		rep.NumParams = base.numParams
		base.row.Reduction = 1
		rep.Rows = append(rep.Rows, base.row)
		for _, h := range opts.InnerSteps {
			if h > steps {
				rep.Rows = append(rep.Rows, Row{Method: "diloco", Workers: k, InnerSteps: h, Codec: opts.Codec.String(),
					Skipped: fmt.Sprintf("H=%d exceeds the %d steps per worker", h, steps)})
				continue
			}
			res, err := benchOne(ctx, opts, k, h, steps, false, progress)
			if err != nil {
				return rep, err
			}
			r := res.row
			if r.BytesPerWorker > 0 {
				r.Reduction = float64(base.row.BytesPerWorker) / float64(r.BytesPerWorker)
			}
			r.LossVsSync = (r.FinalEvalLoss - base.row.FinalEvalLoss) / base.row.FinalEvalLoss
			rep.Rows = append(rep.Rows, r)
		}
	}
	if opts.ThroughputParams > 0 {
		k := opts.Workers[0]
		tp, err := benchThroughput(ctx, opts, k, progress)
		rep.Throughput = tp
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type benchResult struct {
	row       Row
	numParams int
}

func benchKeys(k int) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	return dilocotest.Keys(rand.New(rand.NewSource(int64(k)*1009)), k)
}

// benchOne runs one configuration to the end on the in-memory transport.
func benchOne(ctx context.Context, opts Options, k, h, steps int, synchronous bool, progress func(string)) (benchResult, error) {
	rounds := steps / h
	row := Row{Method: "diloco", Workers: k, InnerSteps: h, Rounds: rounds, Codec: opts.Codec.String(), StepsPerWorker: rounds * h}
	proto := train.Config{BlockSize: opts.BlockSize, Codec: opts.Codec, Combiner: opts.Combiner, Outer: opts.Outer, Timing: benchTiming}
	if synchronous {
		row.Method, row.Codec = "param-avg", "float32"
		proto.Codec, proto.Outer, proto.Combiner = train.CodecFloat32, train.Nesterov{LR: 1}, train.Mean{}
	}
	keys, ids := benchKeys(k)
	trainers, closeAll, err := dilocotest.Trainers(k, opts.NewTrainer)
	defer closeAll()
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: trainer: %w", err)
	}
	initial, err := diloco.InitialState(trainers[0], ids)
	if err != nil {
		return benchResult{}, err
	}
	net := dilocotest.NewMemNetwork[diloco.Handler]()
	name := fmt.Sprintf("%s K=%d H=%d", row.Method, k, h)
	var mu sync.Mutex
	tokens := map[int]int64{}
	workers := make([]*diloco.Worker, k)
	for i := range workers {
		worker := i
		cfg := diloco.Config{
			Job: "bench", Key: keys[i], Trainer: trainers[i], Workers: ids, Initial: initial,
			Batches:    func(round uint64) gridmind.BatchSource { return opts.Batches(k, worker, round) },
			InnerSteps: h, Rounds: uint64(rounds), Transport: net.Join(ids[i]), Protocol: proto,
			Linger: 50 * time.Millisecond, TickEvery: 20 * time.Millisecond, Logger: opts.Logger,
			Progress: func(p diloco.Progress) {
				mu.Lock()
				tokens[worker] += p.Tokens
				mu.Unlock()
				if worker == 0 && (p.Round+1)%uint64(max(1, rounds/10)) == 0 {
					progress(fmt.Sprintf("%s: round %d/%d, train loss %.3f, %.0f tokens/s", name, p.Round+1, rounds, p.TrainLoss, p.TokensPerSec))
				}
			},
		}
		if i == 0 {
			cfg.EvalBatches = opts.EvalBatches // evaluated once, after the last round
		}
		if workers[i], err = diloco.NewWorker(cfg); err != nil {
			return benchResult{}, err
		}
	}
	start := time.Now()
	summaries := make([]diloco.Summary, k)
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { summaries[i], errs[i] = w.Run(ctx) })
	}
	wg.Wait()
	row.Wall = time.Since(start)
	var bytes int64
	for i, s := range summaries {
		if errs[i] != nil {
			return benchResult{}, fmt.Errorf("bench %s: worker %d: %w", name, i, errs[i])
		}
		if s.StateHash != summaries[0].StateHash {
			return benchResult{}, fmt.Errorf("bench %s: worker %d ended with another state", name, i)
		}
		bytes += s.BytesSent()
	}
	row.BytesPerWorker = bytes / int64(k)
	row.FinalEvalLoss = summaries[0].EvalLoss
	for _, t := range tokens {
		row.Tokens += t
	}
	progress(fmt.Sprintf("%s: done in %s, eval loss %.4f, %d bytes per worker", name, row.Wall.Round(time.Millisecond), row.FinalEvalLoss, row.BytesPerWorker))
	return benchResult{row: row, numParams: len(initial.Theta)}, nil
}

// benchSyncDP trains the synchronous data-parallel baseline: one trainer
// whose every step takes the k workers' batches of that step together,
// for as many steps as each DiLoCo worker takes. It sends nothing (one
// process), so its bytes are what a ring all-reduce of the float32
// gradients would send per worker: 2(k−1)/k · 4 bytes per parameter per
// step, the least any synchronous data-parallel implementation sends.
func benchSyncDP(ctx context.Context, opts Options, k, steps int, progress func(string)) (benchResult, error) {
	row := Row{Method: "sync-dp", Workers: k, InnerSteps: 1, Rounds: steps, Codec: "float32", StepsPerWorker: steps}
	t, err := opts.NewSyncTrainer(k)
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: sync trainer: %w", err)
	}
	defer t.Close()
	start := time.Now()
	stats, err := t.TrainSteps(ctx, steps, &mergedBatches{opts: opts, k: k})
	if err != nil {
		return benchResult{}, fmt.Errorf("bench sync-dp K=%d: %w", k, err)
	}
	if row.FinalEvalLoss, err = t.Evaluate(ctx, opts.EvalBatches); err != nil {
		return benchResult{}, err
	}
	row.Wall = time.Since(start)
	row.Tokens = stats.Tokens
	p := t.NumParams()
	row.BytesPerWorker = int64(steps) * int64(2*(k-1)) * int64(4*p) / int64(k)
	progress(fmt.Sprintf("sync-dp K=%d: %d steps of %d workers' batches in %s, eval loss %.4f", k, steps, k, row.Wall.Round(time.Millisecond), row.FinalEvalLoss))
	return benchResult{row: row, numParams: p}, nil
}

// mergedBatches hands out, at step s, the k workers' batches of round s
// (with H = 1 a round is a step) joined into one.
type mergedBatches struct {
	opts Options
	k    int
	step uint64
}

func (m *mergedBatches) Next() gridmind.Batch {
	var out gridmind.Batch
	for w := range m.k {
		b := m.opts.Batches(m.k, w, m.step).Next()
		out.Inputs = append(out.Inputs, b.Inputs...)
		out.Targets = append(out.Targets, b.Targets...)
	}
	m.step++
	return out
}

// Markdown renders the report as tables with the setting spelled out.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s; %d parameters; %d inner steps in total per configuration (split over the K workers).\n\n", r.Date.Format("2006-01-02"), r.NumParams, r.TotalSteps)
	b.WriteString("| method | K | H | rounds | codec | steps/worker | tokens | final eval loss | vs sync | bytes/worker | reduction | wall |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %d | %d | – | %s | – | – | – | – | – | – | skipped: %s |\n", row.Method, row.Workers, row.InnerSteps, row.Codec, row.Skipped)
			continue
		}
		vs := "baseline"
		if row.Method == "diloco" {
			vs = fmt.Sprintf("%+.2f%%", 100*row.LossVsSync)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %d | %d | %.4f | %s | %s | %.0f× | %s |\n",
			row.Method, row.Workers, row.InnerSteps, row.Rounds, row.Codec, row.StepsPerWorker, row.Tokens,
			row.FinalEvalLoss, vs, humanBytes(row.BytesPerWorker), row.Reduction, row.Wall.Round(time.Second/10))
	}
	if len(r.Throughput) > 0 {
		b.WriteString("\n| all-reduce over | K | vector | bytes sent/worker | seconds | throughput/worker |\n|---|---|---|---|---|---|\n")
		for _, t := range r.Throughput {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %.3f | %s/s |\n", t.Transport, t.Workers, humanBytes(int64(t.VectorBytes)), humanBytes(t.BytesPerWorker), t.Seconds, humanBytes(int64(t.BytesPerSec)))
		}
	}
	return b.String()
}

func humanBytes(n int64) string {
	f := float64(n)
	for _, unit := range []string{"B", "KiB", "MiB", "GiB"} {
		if math.Abs(f) < 1024 || unit == "GiB" {
			if unit == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, unit)
		}
		f /= 1024
	}
	return ""
}
