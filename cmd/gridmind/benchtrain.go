package main

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/bench/trainbench"
	"github.com/gridmind/gridmind/train"
)

// trainFull is the sweep of the issue at the MLP's default size; --full
// applies it to every flag not given explicitly.
var trainFull = map[string]string{
	"workers": "4,8", "inner-steps": "1,10,50,250,500", "total-steps": "4000",
	"context": "32", "batch": "32", "embed": "16", "hidden": "256", "throughput-params": "4194304",
}

func newBenchTrainCmd(g *globals) *cobra.Command {
	var (
		workers, inner                                           []int
		total, contextLen, batch, embed, hidden, block, tpParams int
		evalBatches, seed                                        int
		seeds                                                    []int
		lrGrid, syncLRGrid                                       []float64
		full, skipLibp2p                                         bool
		outerLR, outerMomentum                                   float64
		combine                                                  string
		codecNames                                               []string
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "DiLoCo (int8, int4 or top-k) for several H against synchronous training; all-reduce throughput",
		Long: `Train the built-in MLP on the embedded corpus with K workers in this process:
once with synchronous data-parallel training (one AdamW over the K workers'
batches every step, which is what averaging their gradients does; its bytes
are what a ring all-reduce of float32 gradients sends) and once
with DiLoCo (int8 pseudo-gradients, or int4 with --codec int4, or the
K largest of every block at BITS bits with --codec topk:K:BITS; outer
Nesterov) for every H, all with
the same total number of inner steps. Reports the final held-out loss
against the synchronous run and the bytes each worker sent; then the
all-reduce throughput in memory, over loopback libp2p and over raw TCP.

--seeds runs everything once per seed and reports mean and spread;
--lr-grid gives the synchronous baseline's AdamW and DiLoCo's inner AdamW
the same learning-rate candidates, each configuration keeping the rate
with the lowest mean loss over the seeds on a validation set (held-out
windows between the reported ones, no text shared with them).

The defaults (K 4 and 8, H 1 to 500, 4,000 steps) train a small MLP (20k
parameters) and finish in about 6 minutes on 2 shared cores; --full runs the
same sweep at the MLP's default size (224k parameters), about 25 minutes.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if full {
				// Value.Set, unlike Flags().Set, leaves the flag unchanged, so
				// the command line printed is the one typed.
				for name, v := range trainFull {
					if f := cmd.Flags().Lookup(name); !f.Changed {
						if err := f.Value.Set(v); err != nil {
							return err
						}
					}
				}
			}
			if err := checkRanges(cmd,
				bounds{"workers", 1, 256, workers}, bounds{"inner-steps", 1, 1_000_000, inner}, bounds{"total-steps", 1, 100_000_000, []int{total}},
				bounds{"context", 2, 1024, []int{contextLen}}, bounds{"batch", 1, 4096, []int{batch}}, bounds{"embed", 1, 4096, []int{embed}},
				bounds{"hidden", 1, 65536, []int{hidden}}, bounds{"block-size", 1, 1 << 20, []int{block}}, bounds{"eval-batches", 1, 256, []int{evalBatches}},
				bounds{"throughput-params", 0, 1 << 28, []int{tpParams}}, bounds{"seeds", 1, 1 << 30, seeds},
			); err != nil {
				return err
			}
			if cmd.Flags().Changed("seed") {
				if cmd.Flags().Changed("seeds") {
					return invalid(cmd, "--seed and --seeds: give one (--seed S is --seeds S)")
				}
				if seed < 1 || seed > 1<<30 {
					return invalid(cmd, "--seed %d: want 1..%d", seed, 1<<30)
				}
				seeds = []int{seed}
			}
			for _, lr := range lrGrid {
				if !(lr > 0 && lr < 10) {
					return invalid(cmd, "--lr-grid %v: want learning rates in (0, 10)", lr)
				}
			}
			for _, lr := range syncLRGrid {
				if !(lr > 0 && lr < 10) {
					return invalid(cmd, "--sync-lr-grid %v: want learning rates in (0, 10)", lr)
				}
			}
			if k := slices.Max(workers); total < k {
				return invalid(cmd, "--total-steps %d: want at least one step per worker (K up to %d)", total, k)
			}
			if outerLR <= 0 || outerLR > 10 || outerMomentum < 0 || outerMomentum >= 1 {
				return invalid(cmd, "--outer-lr %v / --outer-momentum %v: want 0 < lr ≤ 10 and 0 ≤ momentum < 1", outerLR, outerMomentum)
			}
			combiner, err := train.ParseCombiner(combine)
			if err != nil {
				return invalid(cmd, "--combine %q: %v", combine, err)
			}
			var codecs []train.Codec
			for _, name := range codecNames {
				codec, err := train.ParseCodec(name)
				if err != nil || !codec.Quantizes() {
					return invalid(cmd, "--codec %q: want int8, int4 or topk:K:BITS (K of every 256 values: %v; BITS 1-4)", name, train.TopKCounts)
				}
				codecs = append(codecs, codec)
			}
			if len(codecs) == 0 {
				return invalid(cmd, "--codec: want at least one codec")
			}
			throughputParams := tpParams
			if throughputParams == 0 {
				throughputParams = -1 // trainbench.Run reads 0 as its default; the flag's 0 means none
			}
			s := startBench(cmd, "Training communication (gridmind bench train)")
			c, err := corpus.Default()
			if err != nil {
				return err
			}
			cfg := gomlx.Config{Kind: gomlx.MLP, Context: contextLen, BatchSize: batch, EmbedDim: embed, Hidden: hidden}
			eval, valid, err := heldOutSplit(c, contextLen, evalBatches)
			if err != nil {
				return invalid(cmd, "--context %d, --eval-batches %d: %v", contextLen, evalBatches, err)
			}
			batches := func(seed int64, workers, worker int, round uint64) (*corpus.Batches, error) {
				// Seed 1 keeps the batches every earlier run used.
				return corpus.NewBatches(c.Shard("bench", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker)+(seed-1)*1_000_003)
			}
			// Shards keep their size from round to round, so checking round
			// 0 here leaves a later failure to a broken invariant only.
			for _, k := range workers {
				for w := range k {
					if _, err := batches(1, k, w, 0); err != nil {
						return invalid(cmd, "--context %d, --batch %d with %d workers: %v", contextLen, batch, k, err)
					}
				}
			}
			seedList := make([]int64, len(seeds))
			for i, v := range seeds {
				seedList[i] = int64(v)
			}
			log := benchLogger(cmd, g)
			trainerLog := slog.New(slog.DiscardHandler) // one compile line per worker and configuration otherwise
			began := time.Now()
			rep, err := trainbench.Run(cmd.Context(), trainbench.Options{
				NewTrainer: func(seed int64, lr float64) (gridmind.Trainer, error) {
					c := cfg
					c.Seed, c.LearningRate = seed, lr
					return gomlx.New(c, trainerLog)
				},
				NewSyncTrainer: func(k int, seed int64, lr float64) (gridmind.Trainer, error) {
					big := cfg
					big.Seed, big.LearningRate, big.BatchSize = seed, lr, cfg.BatchSize*k
					return gomlx.New(big, trainerLog)
				},
				Batches: func(seed int64, workers, worker int, round uint64) gridmind.BatchSource {
					src, err := batches(seed, workers, worker, round)
					if err != nil {
						panic(fmt.Sprintf("bench train: batches of worker %d/%d, round %d: %v", worker, workers, round, err))
					}
					return src
				},
				EvalBatches: eval, ValidBatches: valid, Seeds: seedList, LearningRates: lrGrid, BaselineLearningRates: syncLRGrid,
				Workers: workers, InnerSteps: inner, TotalSteps: total,
				BlockSize: block, Codecs: codecs, ThroughputParams: throughputParams, SkipLibp2p: skipLibp2p, Logger: log,
				Outer: train.Nesterov{LR: float32(outerLR), Momentum: float32(outerMomentum)}, Combiner: combiner,
			}, s.say)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Model: MLP, context %d, embed %d, hidden %d, batch %d, AdamW (default learning rate %g, gomlx simplego backend, CPU); data: embedded corpus; eval on %d×64 held-out windows, learning rates chosen on %d×64 others between them; training part took %s.\n\n",
				contextLen, embed, hidden, batch, gomlx.DefaultConfig(gomlx.MLP).LearningRate, evalBatches, evalBatches, time.Since(began).Round(time.Second))
			fmt.Fprint(s.out, rep.Markdown())
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&workers, "workers", []int{4, 8}, "K values (workers in this process)")
	f.IntSliceVar(&inner, "inner-steps", []int{1, 10, 50, 250, 500}, "DiLoCo H values (inner steps per round)")
	f.IntVar(&total, "total-steps", 4000, "inner steps per configuration summed over the K workers")
	f.IntVar(&contextLen, "context", 16, "characters the MLP reads")
	f.IntVar(&batch, "batch", 16, "windows per inner step")
	f.IntVar(&embed, "embed", 8, "embedding width per character")
	f.IntVar(&hidden, "hidden", 64, "width of each of the two hidden layers")
	f.IntVar(&block, "block-size", 256, "values per quantization block (one float32 scale each)")
	f.StringSliceVar(&codecNames, "codec", []string{"int8"}, "DiLoCo's codecs for pseudo-gradients and combined parts, each against the same baseline: int8, int4 or topk:K:BITS (e.g. topk:4:2: 4 of every 256 values at 2 bits)")
	f.IntSliceVar(&seeds, "seeds", []int{1}, "seeds of the weights and of the batches' order, each a full run (1: the runs recorded before this flag)")
	f.IntVar(&seed, "seed", 1, "one seed (the same as --seeds S)")
	_ = f.MarkDeprecated("seed", "use --seeds")
	f.Float64SliceVar(&lrGrid, "lr-grid", nil, "AdamW learning rates to search, the same for sync-dp and DiLoCo's inner optimizer (default: the model's own, 5e-3)")
	f.Float64SliceVar(&syncLRGrid, "sync-lr-grid", nil, "sync-dp's rates instead of --lr-grid's, for more seeds at rates a search chose (default: --lr-grid)")
	f.IntVar(&evalBatches, "eval-batches", 8, "held-out batches of 64 windows for the final loss")
	f.IntVar(&tpParams, "throughput-params", 1<<20, "float32 values in the all-reduce throughput test (0: skip it)")
	f.BoolVar(&skipLibp2p, "skip-libp2p", false, "measure all-reduce throughput without loopback libp2p")
	f.Float64Var(&outerLR, "outer-lr", 0.7, "DiLoCo outer Nesterov learning rate")
	f.Float64Var(&outerMomentum, "outer-momentum", 0.9, "DiLoCo outer Nesterov momentum (0: plain averaging when --outer-lr 1)")
	f.StringVar(&combine, "combine", "mean", "combine rule: mean, median or trimmed-mean:FRACTION")
	f.BoolVar(&full, "full", false, "the sweep at the MLP's default size (about 25 min on 2 cores): "+fullSummary())
	return cmd
}

func fullSummary() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(trainFull)) {
		parts = append(parts, "--"+k+"="+trainFull[k])
	}
	return strings.Join(parts, " ")
}

// heldOutSplit gives n fixed batches of 64 windows from the corpus'
// evaluation split to report (the same windows as c.EvalBatches, so
// earlier runs compare) and n more to choose learning rates on: the
// windows half-way between them, which share no text with them.
func heldOutSplit(c *corpus.Corpus, context, n int) (eval, valid []gridmind.Batch, err error) {
	const size = 64
	if spacing := (c.EvalTokens() - context) / (2 * n * size); spacing < context+1 {
		return nil, nil, fmt.Errorf("the evaluation split (%d characters) is too short for %d windows of %d apart from %d others", c.EvalTokens(), n*size, context+1, n*size)
	}
	all, err := c.EvalBatches(context, size, 2*n)
	if err != nil {
		return nil, nil, err
	}
	eval, valid = make([]gridmind.Batch, n), make([]gridmind.Batch, n)
	for w := range 2 * n * size {
		in, tg := all[w/size].Inputs[w%size], all[w/size].Targets[w%size]
		dst := &eval[w/2/size]
		if w%2 == 1 {
			dst = &valid[w/2/size]
		}
		dst.Inputs, dst.Targets = append(dst.Inputs, in), append(dst.Targets, tg)
	}
	return eval, valid, nil
}
