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
		full, skipLibp2p                                         bool
		outerLR, outerMomentum                                   float64
		combine, codecName                                       string
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
				bounds{"throughput-params", 0, 1 << 28, []int{tpParams}}, bounds{"seed", 1, 1 << 30, []int{seed}},
			); err != nil {
				return err
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
			codec, err := train.ParseCodec(codecName)
			if err != nil || !codec.Quantizes() {
				return invalid(cmd, "--codec %q: want int8, int4 or topk:K:BITS (K of every 256 values: %v; BITS 1-4)", codecName, train.TopKCounts)
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
			cfg := gomlx.Config{Kind: gomlx.MLP, Seed: int64(seed), Context: contextLen, BatchSize: batch, EmbedDim: embed, Hidden: hidden}
			eval, err := c.EvalBatches(contextLen, 64, evalBatches)
			if err != nil {
				return invalid(cmd, "%v", err)
			}
			batches := func(workers, worker int, round uint64) (*corpus.Batches, error) {
				// Seed 1 keeps the batches every earlier run used.
				return corpus.NewBatches(c.Shard("bench", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker)+int64(seed-1)*1_000_003)
			}
			// Shards keep their size from round to round, so checking round
			// 0 here leaves a later failure to a broken invariant only.
			for _, k := range workers {
				for w := range k {
					if _, err := batches(k, w, 0); err != nil {
						return invalid(cmd, "--context %d, --batch %d with %d workers: %v", contextLen, batch, k, err)
					}
				}
			}
			log := benchLogger(cmd, g)
			trainerLog := slog.New(slog.DiscardHandler) // one compile line per worker and configuration otherwise
			began := time.Now()
			rep, err := trainbench.Run(cmd.Context(), trainbench.Options{
				NewTrainer: func() (gridmind.Trainer, error) { return gomlx.New(cfg, trainerLog) },
				NewSyncTrainer: func(k int) (gridmind.Trainer, error) {
					big := cfg
					big.BatchSize = cfg.BatchSize * k
					return gomlx.New(big, trainerLog)
				},
				Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
					src, err := batches(workers, worker, round)
					if err != nil {
						panic(fmt.Sprintf("bench train: batches of worker %d/%d, round %d: %v", worker, workers, round, err))
					}
					return src
				},
				EvalBatches: eval, Workers: workers, InnerSteps: inner, TotalSteps: total,
				BlockSize: block, Codec: codec, ThroughputParams: throughputParams, SkipLibp2p: skipLibp2p, Logger: log,
				Outer: train.Nesterov{LR: float32(outerLR), Momentum: float32(outerMomentum)}, Combiner: combiner,
			}, s.say)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Model: MLP, context %d, embed %d, hidden %d, batch %d, AdamW defaults (gomlx simplego backend, CPU); data: embedded corpus; eval on %d×64 held-out windows; training part took %s.\n\n",
				contextLen, embed, hidden, batch, evalBatches, time.Since(began).Round(time.Second))
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
	f.StringVar(&codecName, "codec", "int8", "DiLoCo's codec for pseudo-gradients and combined parts: int8, int4 or topk:K:BITS (e.g. topk:4:2: 4 of every 256 values at 2 bits)")
	f.IntVar(&seed, "seed", 1, "seed of the weights and of the batches' order (1: the runs recorded before this flag)")
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
