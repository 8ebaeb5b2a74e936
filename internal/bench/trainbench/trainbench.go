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
	"slices"
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
	// NewTrainer builds the trainer of a worker for a seed and an (inner)
	// learning rate, 0 meaning the trainer's own default; every call with
	// the same seed must give the same starting weights.
	NewTrainer func(seed int64, lr float64) (gridmind.Trainer, error)
	// NewSyncTrainer, if set, builds the synchronous data-parallel
	// baseline for k workers: the same model and starting weights, with a
	// batch k times a worker's. One optimizer step on the k workers'
	// batches together is exactly one step of synchronous data-parallel
	// training (the gradient of the mean loss over k batches is the mean of
	// the k gradients). Without it the baseline is the older emulation:
	// every worker steps its own AdamW and the weights are averaged after
	// every step, which is not the same thing.
	NewSyncTrainer func(k int, seed int64, lr float64) (gridmind.Trainer, error)
	// Batches is the data of worker (0-based) of workers in round, for a seed.
	Batches func(seed int64, workers, worker int, round uint64) gridmind.BatchSource
	// EvalBatches measure the final loss that is reported.
	EvalBatches []gridmind.Batch
	// ValidBatches, if set, choose each configuration's learning rate;
	// without them the choice is made on EvalBatches, the reported set,
	// which flatters every configuration alike and the report says so.
	ValidBatches []gridmind.Batch
	// Seeds to run every configuration with (default 1).
	Seeds []int64
	// LearningRates is the search grid of the AdamW learning rate, the
	// same for the baseline and for DiLoCo's inner optimizer, so both get
	// the same search budget (default: the trainer's own, 0).
	LearningRates []float64
	// BaselineLearningRates, if set, are the baseline's rates instead of
	// LearningRates: for runs of further seeds at rates a search already
	// chose, not for the search itself.
	BaselineLearningRates []float64
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
	// Codecs of DiLoCo's pseudo-gradients and combined parts, each run
	// against the same baseline (default train.CodecInt8); the
	// synchronous baseline is always float32.
	Codecs []train.Codec
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

// Row is one run: one configuration, seed and learning rate.
type Row struct {
	Method         string // "diloco", "sync-dp" (true synchronous data-parallel) or "param-avg" (weights averaged every step)
	Workers        int
	InnerSteps     int
	Rounds         int
	Codec          string
	Seed           int64
	LR             float64 // the AdamW (inner) learning rate; 0: the trainer's default
	StepsPerWorker int
	Tokens         int64 // training tokens, all workers
	ValidLoss      float64
	FinalEvalLoss  float64
	BytesPerWorker int64   // everything a worker sent, mean over workers
	Reduction      float64 // the synchronous baseline's bytes per worker divided by this row's
	LossVsSync     float64 // (loss − baseline loss) / baseline loss, against the baseline at its chosen rate and the same seed
	Chosen         bool    // this row's learning rate is its configuration's choice
	Wall           time.Duration
	Skipped        string
}

// config names what a learning rate is chosen for.
type config struct {
	method     string
	workers, h int
	codec      string
}

func (r Row) config() config { return config{r.Method, r.Workers, r.InnerSteps, r.Codec} }

// Summary is one configuration at its chosen learning rate, over the seeds.
type Summary struct {
	Method     string
	Workers    int
	InnerSteps int
	Rounds     int
	Codec      string
	LR         float64
	Seeds      int
	// Loss and LossVsSync of the seeds: mean, min, max and sample
	// standard deviation (0 with one seed).
	Loss, LossVsSync Spread
	BytesPerWorker   int64 // mean over seeds
	Reduction        float64
	ValidLossByLR    []float64 // mean validation loss over the seeds, per Report.LearningRates
	EvalLossByLR     []float64 // the same for the reported loss
}

// Spread is the mean, extremes and sample standard deviation of values.
type Spread struct{ Mean, Min, Max, Std float64 }

func spreadOf(v []float64) Spread {
	s := Spread{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, x := range v {
		s.Mean += x / float64(len(v))
		s.Min, s.Max = min(s.Min, x), max(s.Max, x)
	}
	if len(v) > 1 {
		for _, x := range v {
			s.Std += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(s.Std / float64(len(v)-1))
	}
	return s
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
	Date          time.Time
	TotalSteps    int
	NumParams     int
	Seeds         []int64
	LearningRates []float64
	// SelectedOnEval is true when the learning rates were chosen on the
	// reported held-out set (no Options.ValidBatches).
	SelectedOnEval bool
	Rows           []Row
	Summaries      []Summary
	Throughput     []ThroughputRow
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
	if len(o.Seeds) == 0 {
		o.Seeds = []int64{1}
	}
	if len(o.LearningRates) == 0 {
		o.LearningRates = []float64{0}
	}
	if len(o.BaselineLearningRates) == 0 {
		o.BaselineLearningRates = o.LearningRates
	}
	if o.TotalSteps <= 0 {
		o.TotalSteps = 4000
	}
	if o.BlockSize <= 0 {
		o.BlockSize = train.DefaultBlockSize
	}
	if len(o.Codecs) == 0 {
		o.Codecs = []train.Codec{train.CodecInt8}
	}
	for _, c := range o.Codecs {
		if !c.Quantizes() {
			return gridmind.E(gridmind.KindInvalid, "trainbench", "codec %s: DiLoCo runs with int8, int4 or top-k", c)
		}
	}
	for _, lr := range append(slices.Clone(o.LearningRates), o.BaselineLearningRates...) {
		if !(lr >= 0 && lr < 10) {
			return gridmind.E(gridmind.KindInvalid, "trainbench", "learning rate %v outside [0, 10)", lr)
		}
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

// Run compares DiLoCo (each of opts.Codecs, outer Nesterov lr 0.7
// momentum 0.9 unless opts.Outer says otherwise) for each K and H against
// a baseline in the same run: synchronous data-parallel training with
// opts.NewSyncTrainer, or else parameter averaging, emulated as H=1 with
// the float32 codec and an outer SGD of lr 1 without momentum (after every
// inner step the workers' weights are averaged exactly; each worker keeps
// its own AdamW moments, so this equals gradient averaging for plain SGD
// but not for AdamW). Every configuration, baseline included, runs at
// every learning rate of opts.LearningRates and every seed; its rate is
// the one with the lowest validation loss averaged over the seeds, and its
// comparison with the baseline is seed by seed, each at its chosen rate.
// Workers run in this process on the in-memory transport; the all-reduce
// throughput is then measured on the in-memory transport, loopback libp2p
// and raw TCP.
func Run(ctx context.Context, opts Options, progress func(line string)) (Report, error) {
	if err := opts.withDefaults(); err != nil {
		return Report{}, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	rates := slices.Clone(opts.BaselineLearningRates)
	for _, lr := range opts.LearningRates {
		if !slices.Contains(rates, lr) {
			rates = append(rates, lr)
		}
	}
	rep := Report{Date: time.Now().UTC(), TotalSteps: opts.TotalSteps, Seeds: opts.Seeds, LearningRates: rates,
		SelectedOnEval: len(opts.ValidBatches) == 0}
	// Seeds outermost: a run cut short has every configuration of its
	// first seeds in its progress lines.
	for _, k := range opts.Workers {
		steps := opts.TotalSteps / k
		for _, seed := range opts.Seeds {
			for _, lr := range rates {
				var base benchResult
				var err error
				switch {
				case !slices.Contains(opts.BaselineLearningRates, lr):
				case opts.NewSyncTrainer != nil:
					base, err = benchSyncDP(ctx, opts, k, steps, seed, lr, progress)
				default:
					base, err = benchOne(ctx, opts, k, 1, steps, train.CodecFloat32, seed, lr, progress)
				}
				if err != nil {
					return rep, err
				}
				if base.row.Method != "" {
					rep.NumParams = base.numParams
					rep.Rows = append(rep.Rows, base.row)
				}
				if !slices.Contains(opts.LearningRates, lr) {
					continue
				}
				for _, codec := range opts.Codecs {
					for _, h := range opts.InnerSteps {
						if h > steps {
							continue
						}
						res, err := benchOne(ctx, opts, k, h, steps, codec, seed, lr, progress)
						if err != nil {
							return rep, err
						}
						rep.Rows = append(rep.Rows, res.row)
					}
				}
			}
		}
		for _, codec := range opts.Codecs {
			for _, h := range opts.InnerSteps {
				if h > steps {
					rep.Rows = append(rep.Rows, Row{Method: "diloco", Workers: k, InnerSteps: h, Codec: codec.String(),
						Skipped: fmt.Sprintf("H=%d exceeds the %d steps per worker", h, steps)})
				}
			}
		}
	}
	rep.choose()
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

// choose picks each configuration's learning rate by its validation loss
// averaged over the seeds, compares every row with the baseline of its K
// and seed at the baseline's chosen rate, and summarises the chosen rows.
func (r *Report) choose() {
	lrIndex := map[float64]int{}
	for i, lr := range r.LearningRates {
		lrIndex[lr] = i
	}
	var order []config
	valid, eval, runs := map[config][]float64{}, map[config][]float64{}, map[config][]int{}
	for _, row := range r.Rows {
		if row.Skipped != "" {
			continue
		}
		c := row.config()
		if valid[c] == nil {
			order = append(order, c)
			valid[c], eval[c], runs[c] = make([]float64, len(r.LearningRates)), make([]float64, len(r.LearningRates)), make([]int, len(r.LearningRates))
		}
		valid[c][lrIndex[row.LR]] += row.ValidLoss
		eval[c][lrIndex[row.LR]] += row.FinalEvalLoss
		runs[c][lrIndex[row.LR]]++
	}
	for _, c := range order {
		for i, n := range runs[c] {
			// A rate this configuration did not run is NaN: never chosen.
			valid[c][i] /= float64(n)
			eval[c][i] /= float64(n)
		}
	}
	chosen := map[config]float64{}
	for _, c := range order {
		best := 0
		for i, v := range valid[c] {
			// NaN (a diverged run) never wins.
			if v < valid[c][best] || math.IsNaN(valid[c][best]) {
				best = i
			}
		}
		chosen[c] = r.LearningRates[best]
	}
	type baseKey struct {
		workers int
		seed    int64
	}
	base := map[baseKey]Row{}
	for i, row := range r.Rows {
		if row.Skipped == "" && chosen[row.config()] == row.LR {
			r.Rows[i].Chosen = true
			if row.Method != "diloco" {
				base[baseKey{row.Workers, row.Seed}] = row
			}
		}
	}
	for i, row := range r.Rows {
		b, ok := base[baseKey{row.Workers, row.Seed}]
		if row.Skipped != "" || !ok {
			continue
		}
		if row.BytesPerWorker > 0 {
			r.Rows[i].Reduction = float64(b.BytesPerWorker) / float64(row.BytesPerWorker)
		}
		r.Rows[i].LossVsSync = (row.FinalEvalLoss - b.FinalEvalLoss) / b.FinalEvalLoss
	}
	for _, c := range order {
		s := Summary{Method: c.method, Workers: c.workers, InnerSteps: c.h, Codec: c.codec, LR: chosen[c],
			ValidLossByLR: valid[c], EvalLossByLR: eval[c]}
		var losses, vs []float64
		var bytes int64
		var reduction float64
		for _, row := range r.Rows {
			if row.Chosen && row.config() == c {
				s.Rounds = row.Rounds
				losses, vs = append(losses, row.FinalEvalLoss), append(vs, row.LossVsSync)
				bytes += row.BytesPerWorker
				reduction += row.Reduction
			}
		}
		s.Seeds = len(losses)
		s.Loss, s.LossVsSync = spreadOf(losses), spreadOf(vs)
		s.BytesPerWorker, s.Reduction = bytes/int64(s.Seeds), reduction/float64(s.Seeds)
		r.Summaries = append(r.Summaries, s)
	}
}

type benchResult struct {
	row       Row
	numParams int
}

func benchKeys(k int) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	return dilocotest.Keys(rand.New(rand.NewSource(int64(k)*1009)), k)
}

// benchOne runs one configuration to the end on the in-memory transport;
// the float32 codec makes it the parameter-averaging baseline.
func benchOne(ctx context.Context, opts Options, k, h, steps int, codec train.Codec, seed int64, lr float64, progress func(string)) (benchResult, error) {
	rounds := steps / h
	row := Row{Method: "diloco", Workers: k, InnerSteps: h, Rounds: rounds, Codec: codec.String(), Seed: seed, LR: lr, StepsPerWorker: rounds * h}
	proto := train.Config{BlockSize: opts.BlockSize, Codec: codec, Combiner: opts.Combiner, Outer: opts.Outer, Timing: benchTiming}
	if codec == train.CodecFloat32 {
		row.Method = "param-avg"
		proto.Outer, proto.Combiner = train.Nesterov{LR: 1}, train.Mean{}
	}
	keys, ids := benchKeys(k)
	trainers, closeAll, err := dilocotest.Trainers(k, func() (gridmind.Trainer, error) { return opts.NewTrainer(seed, lr) })
	defer closeAll()
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: trainer: %w", err)
	}
	initial, err := diloco.InitialState(trainers[0], ids)
	if err != nil {
		return benchResult{}, err
	}
	net := dilocotest.NewMemNetwork[diloco.Handler]()
	name := fmt.Sprintf("%s %s K=%d H=%d seed %d lr %s", row.Method, row.Codec, k, h, seed, lrString(lr))
	var mu sync.Mutex
	tokens := map[int]int64{}
	workers := make([]*diloco.Worker, k)
	for i := range workers {
		worker := i
		cfg := diloco.Config{
			Job: "bench", Key: keys[i], Trainer: trainers[i], Workers: ids, Initial: initial,
			Batches:    func(round uint64) gridmind.BatchSource { return opts.Batches(seed, k, worker, round) },
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
			// Evaluated once, after the last round, while the trainer holds
			// the final global weights: the validation loss is kept aside.
			cfg.Eval = func(ctx context.Context, t gridmind.Trainer) (float64, error) {
				v, err := evalValid(ctx, opts, t)
				if err != nil {
					return 0, err
				}
				row.ValidLoss = v
				return t.Evaluate(ctx, opts.EvalBatches)
			}
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
	if math.IsNaN(row.FinalEvalLoss) {
		return benchResult{}, fmt.Errorf("bench %s: the final evaluation failed (the log of worker 0 says why)", name)
	}
	for _, t := range tokens {
		row.Tokens += t
	}
	progress(fmt.Sprintf("%s: done in %s, validation loss %.4f, eval loss %.4f, %d bytes per worker", name, row.Wall.Round(time.Millisecond), row.ValidLoss, row.FinalEvalLoss, row.BytesPerWorker))
	return benchResult{row: row, numParams: len(initial.Theta)}, nil
}

// evalValid is the loss that chooses the learning rate: on the validation
// batches, or on the reported ones when there are none.
func evalValid(ctx context.Context, opts Options, t gridmind.Trainer) (float64, error) {
	if len(opts.ValidBatches) == 0 {
		return t.Evaluate(ctx, opts.EvalBatches)
	}
	return t.Evaluate(ctx, opts.ValidBatches)
}

// benchSyncDP trains the synchronous data-parallel baseline: one trainer
// whose every step takes the k workers' batches of that step together,
// for as many steps as each DiLoCo worker takes. It sends nothing (one
// process), so its bytes are what a ring all-reduce of the float32
// gradients would send per worker: 2(k−1)/k · 4 bytes per parameter per
// step, the least any synchronous data-parallel implementation sends.
func benchSyncDP(ctx context.Context, opts Options, k, steps int, seed int64, lr float64, progress func(string)) (benchResult, error) {
	row := Row{Method: "sync-dp", Workers: k, InnerSteps: 1, Rounds: steps, Codec: "float32", Seed: seed, LR: lr, StepsPerWorker: steps}
	t, err := opts.NewSyncTrainer(k, seed, lr)
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: sync trainer: %w", err)
	}
	defer t.Close()
	start := time.Now()
	stats, err := t.TrainSteps(ctx, steps, &mergedBatches{opts: opts, k: k, seed: seed})
	if err != nil {
		return benchResult{}, fmt.Errorf("bench sync-dp K=%d seed %d lr %s: %w", k, seed, lrString(lr), err)
	}
	if row.ValidLoss, err = evalValid(ctx, opts, t); err != nil {
		return benchResult{}, err
	}
	if row.FinalEvalLoss, err = t.Evaluate(ctx, opts.EvalBatches); err != nil {
		return benchResult{}, err
	}
	row.Wall = time.Since(start)
	row.Tokens = stats.Tokens
	p := t.NumParams()
	row.BytesPerWorker = int64(steps) * int64(2*(k-1)) * int64(4*p) / int64(k)
	progress(fmt.Sprintf("sync-dp K=%d seed %d lr %s: %d steps of %d workers' batches in %s, validation loss %.4f, eval loss %.4f",
		k, seed, lrString(lr), steps, k, row.Wall.Round(time.Millisecond), row.ValidLoss, row.FinalEvalLoss))
	return benchResult{row: row, numParams: p}, nil
}

// mergedBatches hands out, at step s, the k workers' batches of round s
// (with H = 1 a round is a step) joined into one.
type mergedBatches struct {
	opts Options
	k    int
	seed int64
	step uint64
}

func (m *mergedBatches) Next() gridmind.Batch {
	var out gridmind.Batch
	for w := range m.k {
		b := m.opts.Batches(m.seed, m.k, w, m.step).Next()
		out.Inputs = append(out.Inputs, b.Inputs...)
		out.Targets = append(out.Targets, b.Targets...)
	}
	m.step++
	return out
}

func lrString(lr float64) string {
	if lr == 0 {
		return "default"
	}
	return fmt.Sprintf("%g", lr)
}

// Markdown renders the report as tables with the setting spelled out:
// the summary over seeds at the chosen rates, the learning-rate search,
// then every run.
func (r Report) Markdown() string {
	var b strings.Builder
	seeds := make([]string, len(r.Seeds))
	for i, s := range r.Seeds {
		seeds[i] = fmt.Sprint(s)
	}
	lrs := make([]string, len(r.LearningRates))
	for i, lr := range r.LearningRates {
		lrs[i] = lrString(lr)
	}
	fmt.Fprintf(&b, "Measured %s; %d parameters; %d inner steps in total per configuration (split over the K workers); seeds %s; AdamW learning rates %s",
		r.Date.Format("2006-01-02"), r.NumParams, r.TotalSteps, strings.Join(seeds, ", "), strings.Join(lrs, ", "))
	if len(r.LearningRates) > 1 {
		if r.SelectedOnEval {
			b.WriteString(" (each configuration's chosen by its mean loss over the seeds on the same held-out set that is reported)")
		} else {
			b.WriteString(" (each configuration's chosen by its mean loss over the seeds on a validation set apart from the reported one)")
		}
	}
	b.WriteString(".\n\n")
	if len(r.Summaries) > 0 {
		b.WriteString("| method | K | H | rounds | codec | lr | seeds | final eval loss: mean (min–max) ± std | vs baseline: mean (min–max) | bytes/worker | reduction |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.Summaries {
			vs := "baseline"
			if s.Method == "diloco" {
				vs = fmt.Sprintf("%+.2f%% (%+.2f%% – %+.2f%%)", 100*s.LossVsSync.Mean, 100*s.LossVsSync.Min, 100*s.LossVsSync.Max)
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %d | %.4f (%.4f–%.4f) ± %.4f | %s | %s | %.0f× |\n",
				s.Method, s.Workers, s.InnerSteps, s.Rounds, s.Codec, lrString(s.LR), s.Seeds,
				s.Loss.Mean, s.Loss.Min, s.Loss.Max, s.Loss.Std, vs, humanBytes(s.BytesPerWorker), s.Reduction)
		}
		b.WriteString("\n")
	}
	if len(r.LearningRates) > 1 && len(r.Summaries) > 0 {
		b.WriteString("Learning-rate search (mean over the seeds; the chosen rate in bold):\n\n| method | K | H | codec |")
		for _, lr := range lrs {
			fmt.Fprintf(&b, " lr %s: validation / eval loss |", lr)
		}
		b.WriteString("\n|---|---|---|---|" + strings.Repeat("---|", len(lrs)) + "\n")
		for _, s := range r.Summaries {
			fmt.Fprintf(&b, "| %s | %d | %d | %s |", s.Method, s.Workers, s.InnerSteps, s.Codec)
			for i, lr := range r.LearningRates {
				cell := fmt.Sprintf("%.4f / %.4f", s.ValidLossByLR[i], s.EvalLossByLR[i])
				if math.IsNaN(s.ValidLossByLR[i]) {
					cell = "not run"
				}
				if lr == s.LR {
					cell = "**" + cell + "**"
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("| method | K | H | rounds | codec | seed | lr | steps/worker | tokens | final eval loss | vs baseline | bytes/worker | reduction | wall |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		if row.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %d | %d | – | %s | – | – | – | – | – | – | – | – | skipped: %s |\n", row.Method, row.Workers, row.InnerSteps, row.Codec, row.Skipped)
			continue
		}
		vs := "baseline"
		if row.Method == "diloco" {
			vs = fmt.Sprintf("%+.2f%%", 100*row.LossVsSync)
		}
		lr := lrString(row.LR)
		if row.Chosen && len(r.LearningRates) > 1 {
			lr = "**" + lr + "**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %d | %s | %d | %d | %.4f | %s | %s | %.0f× | %s |\n",
			row.Method, row.Workers, row.InnerSteps, row.Rounds, row.Codec, row.Seed, lr, row.StepsPerWorker, row.Tokens,
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
