// Package trainlocal runs one DiLoCo job across several in-process workers,
// each its own libp2p host on 127.0.0.1: the engine of `gridmind train
// local`. No ledger is involved; it is the quickest way to watch the
// training engine work on real networking.
package trainlocal

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/train"
)

// Options configure a local job.
type Options struct {
	Workers    int
	Rounds     int
	InnerSteps int
	Model      string // "mlp" or "transformer"
	BatchSize  int    // 0: the model's default
	Data       string // a text file or folder; "" uses the embedded corpus
	Combiner   string // "mean", "median", "trimmed-mean:0.2"
	Seed       int64
	// SaveModel, if set, receives the final model's checkpoint.
	SaveModel string
	Out       io.Writer
	Logger    *slog.Logger
}

// Result summarizes a finished job.
type Result struct {
	StartLoss  float64
	Losses     []float64 // evaluation loss after each round
	ThetaHash  string
	BytesSent  int64 // all workers
	Tokens     int64
	Wall       time.Duration
	Params     int
	Identical  bool // every worker ended with the same global state hash
	WorkerHash []string
}

// Validate checks the options and names the first bad one.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "train", format, args...)
	}
	switch {
	case o.Workers < 1 || o.Workers > 64:
		return bad("--workers %d: want 1..64", o.Workers)
	case o.Rounds < 1 || o.Rounds > 100000:
		return bad("--rounds %d: want 1..100000", o.Rounds)
	case o.InnerSteps < 1 || o.InnerSteps > 100000:
		return bad("--inner-steps %d: want 1..100000", o.InnerSteps)
	case o.Model != gomlx.MLP && o.Model != gomlx.Transformer:
		return bad("--model %q: want mlp or transformer", o.Model)
	case o.BatchSize < 0 || o.BatchSize > corpus.MaxBatchSize:
		return bad("--batch %d: want 1..%d", o.BatchSize, corpus.MaxBatchSize)
	}
	if o.Combiner != "" {
		if _, err := train.ParseCombiner(o.Combiner); err != nil {
			return bad("--combine %q: %v", o.Combiner, err)
		}
	}
	return nil
}

// Run trains the job to the end, printing one line per round.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var data *corpus.Corpus
	var err error
	if o.Data == "" {
		data, err = corpus.Default()
	} else {
		data, err = corpus.Load(o.Data)
	}
	if err != nil {
		return nil, err
	}
	cfg := gomlx.DefaultConfig(o.Model)
	cfg.Seed = o.Seed
	if o.BatchSize > 0 {
		cfg.BatchSize = o.BatchSize
	}
	var combiner train.Combiner
	if o.Combiner != "" {
		combiner, _ = train.ParseCombiner(o.Combiner)
	}
	job := fmt.Sprintf("local-%d", o.Seed)

	// One libp2p host per worker, all joined to the first.
	keys := make([]gridmind.NodeID, o.Workers)
	hosts := make([]*p2p.Host, o.Workers)
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	for i := range hosts {
		key := node.KeyFromSeedString(fmt.Sprintf("train-local/%d/%d", o.Seed, i))
		keys[i] = gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
		var boot []string
		if i > 0 {
			boot = hosts[0].Addrs()[:1]
		}
		h, err := p2p.New(ctx, p2p.Config{Key: key, LoopbackOnly: true, Bootstrap: boot, Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		hosts[i] = h
		if i > 0 {
			if err := h.Bootstrap(ctx); err != nil {
				return nil, err
			}
		}
	}
	fmt.Fprintf(o.Out, "training %s (%s) on %d workers, each a libp2p host on 127.0.0.1; corpus %s (%d training tokens)\n", o.Model, job, o.Workers, data.Name(), data.TrainTokens())
	models := make([]*gomlx.Model, o.Workers)
	defer func() {
		for _, m := range models {
			if m != nil {
				m.Close()
			}
		}
	}()
	for i := range models {
		if models[i], err = gomlx.New(cfg, o.Logger); err != nil {
			return nil, err
		}
	}
	evalSet, err := data.EvalBatches(cfg.Context, 64, 4)
	if err != nil {
		return nil, err
	}
	res := &Result{Params: models[0].NumParams()}
	if res.StartLoss, err = models[0].Evaluate(ctx, evalSet); err != nil {
		return nil, err
	}
	initial, err := diloco.InitialState(models[0], keys)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "%d parameters, H=%d inner steps per round, batch %d × %d characters; eval loss before training %.3f\n", res.Params, o.InnerSteps, cfg.BatchSize, cfg.Context, res.StartLoss)
	fmt.Fprintln(o.Out, "ROUND  EVAL LOSS  TOKENS/S  BYTES SENT (ALL)  ROUND TIME")
	start := time.Now()
	var mu sync.Mutex
	roundBytes := map[uint64]int64{}
	reported := map[uint64]int{}
	summaries := make([]diloco.Summary, o.Workers)
	errs := make([]error, o.Workers)
	var wg sync.WaitGroup
	for i := range models {
		transport, err := diloco.NewP2PTransport(hosts[i], job, o.Logger)
		if err != nil {
			return nil, err
		}
		defer transport.Close()
		w, err := diloco.NewWorker(diloco.Config{
			Job: job, Key: node.KeyFromSeedString(fmt.Sprintf("train-local/%d/%d", o.Seed, i)),
			Trainer: models[i], InnerSteps: o.InnerSteps, Rounds: uint64(o.Rounds),
			Transport: transport, Workers: keys, Initial: initial,
			Protocol: train.Config{Combiner: combiner},
			Batches: func(round uint64) gridmind.BatchSource {
				b, err := corpus.NewBatches(data.Shard(job, int(round), i, o.Workers), cfg.Context, cfg.BatchSize, o.Seed^int64(round)<<20^int64(i))
				if err != nil {
					o.Logger.Error("batches", "err", err)
					return nil
				}
				return b
			},
			EvalBatches: evalSet, EvalEvery: 1,
			Progress: func(p diloco.Progress) {
				mu.Lock()
				defer mu.Unlock()
				roundBytes[p.Round] += p.RoundBytes
				res.Tokens += p.Tokens
				reported[p.Round]++
				// Print a round once every participant has reported it.
				if reported[p.Round] == p.Participants {
					res.Losses = append(res.Losses, p.EvalLoss)
					fmt.Fprintf(o.Out, "%5d  %9.3f  %8.0f  %16s  %s\n", p.Round, p.EvalLoss, p.TokensPerSec*float64(p.Participants), humanBytes(roundBytes[p.Round]), p.RoundTime.Round(time.Millisecond))
				}
			},
			Logger: o.Logger,
		})
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			summaries[i], errs[i] = w.Run(ctx)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res.Wall = time.Since(start)
	res.Identical = true
	for i, s := range summaries {
		res.BytesSent += s.BytesSent()
		res.WorkerHash = append(res.WorkerHash, s.StateHash.String())
		if s.StateHash != summaries[0].StateHash {
			res.Identical = false
		}
		if i == 0 && s.State != nil {
			res.ThetaHash = s.State.ThetaHash().String()
		}
	}
	fmt.Fprintf(o.Out, "done in %s: eval loss %.3f → %.3f, %s sent by all workers, global state identical on every worker: %v\n",
		res.Wall.Round(100*time.Millisecond), res.StartLoss, res.Losses[len(res.Losses)-1], humanBytes(res.BytesSent), res.Identical)
	if o.SaveModel != "" && summaries[0].State != nil {
		if err := models[0].SetParams(summaries[0].State.Theta); err != nil {
			return nil, err
		}
		f, err := os.Create(o.SaveModel)
		if err != nil {
			return nil, err
		}
		if err := models[0].Save(f); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Out, "model %s saved to %s\n", res.ThetaHash, o.SaveModel)
	}
	return res, nil
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
