package main

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/serve"
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
		evalBatches                                              int
		full, skipLibp2p                                         bool
		outerLR, outerMomentum                                   float64
		combine, codecName                                       string
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "DiLoCo (int8 or int4) for several H against synchronous training; all-reduce throughput",
		Long: `Train the built-in MLP on the embedded corpus with K workers in this process:
once with synchronous data-parallel training (one AdamW over the K workers'
batches every step, which is what averaging their gradients does; its bytes
are what a ring all-reduce of float32 gradients sends) and once
with DiLoCo (int8 pseudo-gradients, or int4 with --codec int4, outer
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
				bounds{"throughput-params", 0, 1 << 28, []int{tpParams}},
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
				return invalid(cmd, "--codec %q: want int8 or int4", codecName)
			}
			throughputParams := tpParams
			if throughputParams == 0 {
				throughputParams = -1 // RunBench reads 0 as its default; the flag's 0 means none
			}
			s := startBench(cmd, "Training communication (gridmind bench train)")
			c, err := corpus.Default()
			if err != nil {
				return err
			}
			cfg := gomlx.Config{Kind: gomlx.MLP, Seed: 1, Context: contextLen, BatchSize: batch, EmbedDim: embed, Hidden: hidden}
			eval, err := c.EvalBatches(contextLen, 64, evalBatches)
			if err != nil {
				return invalid(cmd, "%v", err)
			}
			batches := func(workers, worker int, round uint64) (*corpus.Batches, error) {
				return corpus.NewBatches(c.Shard("bench", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker))
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
			rep, err := diloco.RunBench(cmd.Context(), diloco.BenchOptions{
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
	f.StringVar(&codecName, "codec", "int8", "DiLoCo's codec for pseudo-gradients and combined parts: int8 or int4")
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

func newBenchInferCmd(g *globals) *cobra.Command {
	o := serve.BenchOptions{}
	var latencies []time.Duration
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Edge inference fail-over: p50/p99 and failed requests with 20% of replicas killed mid-run",
		Long: `Serve a model from --replicas nodes with injected round-trip times on an
in-memory network and send streaming requests at --rate (Poisson arrivals):
once without failures, then the same requests with the busiest --kill share
of replicas killed after --kill-at of them. Every answer is checked against
the expected text. Goal: ` + serve.BenchGoal + `.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRanges(cmd,
				bounds{"replicas", 2, 1000, []int{o.Replicas}}, bounds{"requests", 1, 10_000_000, []int{o.Requests}}, bounds{"warmup", 0, 1_000_000, []int{o.Warmup}},
				bounds{"max-tokens", 1, 100_000, []int{o.MaxTokens}}, bounds{"workers", 1, 10_000, []int{o.Workers}}, bounds{"pairs", 1, 100, []int{o.Pairs}},
			); err != nil {
				return err
			}
			switch {
			case o.Rate <= 0 || o.Rate > 1e6:
				return invalid(cmd, "--rate %g: want 0 < rate <= 1e6 requests per second", o.Rate)
			case o.KillFraction <= 0 || o.KillFraction >= 1:
				return invalid(cmd, "--kill %g: want a share of replicas in (0, 1)", o.KillFraction)
			case o.KillAt <= 0 || o.KillAt >= 1:
				return invalid(cmd, "--kill-at %g: want a share of requests in (0, 1)", o.KillAt)
			case o.TokenDelay <= 0:
				return invalid(cmd, "--token-delay %v: want a positive duration", o.TokenDelay)
			case len(latencies) == 0:
				return invalid(cmd, "--latencies: want at least one round-trip time")
			}
			for _, l := range latencies {
				if l < 0 || l > time.Minute {
					return invalid(cmd, "--latencies %v: want 0..1m", l)
				}
			}
			opts := o // o holds the flags, printed in the report
			if opts.Warmup == 0 {
				opts.Warmup = -1 // RunBench reads 0 as its default; the flag's 0 means none
			}
			opts.Latencies, opts.Logger = latencies, benchLogger(cmd, g)
			s := startBench(cmd, "Edge inference (gridmind bench infer)")
			rep, err := serve.RunBench(cmd.Context(), opts, func(p serve.BenchProgress) {
				s.sayEvery(fmt.Sprint(p.Run, p.Done == p.Total), fmt.Sprintf("%s run: %d/%d requests answered", p.Run, p.Done, p.Total))
			})
			if err != nil {
				return err
			}
			writeInferReport(s.out, rep)
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Replicas, "replicas", 10, "serving nodes")
	f.DurationSliceVar(&latencies, "latencies", []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond}, "round-trip time to each replica, cycled")
	f.IntVar(&o.Requests, "requests", 2000, "measured requests per run")
	f.IntVar(&o.Warmup, "warmup", 100, "unmeasured requests before each run (routing learns the RTTs)")
	f.Float64Var(&o.Rate, "rate", 200, "requests per second (Poisson arrivals, open loop)")
	f.IntVar(&o.MaxTokens, "max-tokens", 16, "tokens per completion")
	f.DurationVar(&o.TokenDelay, "token-delay", time.Millisecond, "generation time per token")
	f.IntVar(&o.Workers, "workers", 4, "concurrent generations per replica")
	f.Float64Var(&o.KillFraction, "kill", 0.2, "share of replicas killed in the failure run")
	f.Float64Var(&o.KillAt, "kill-at", 0.3, "share of measured requests issued before the kill")
	f.IntVar(&o.Pairs, "pairs", 1, "(baseline, failures) pairs, alternating order, pooled")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of arrivals, prompts, keys and routing")
	return cmd
}

func writeInferReport(out io.Writer, rep serve.BenchReport) {
	o := rep.Options
	fmt.Fprintf(out, "%d replicas with round-trip times %v (cycled), %d workers each, %d tokens per answer at %v per token; %d measured requests per run (after %d warm-up) at %.0f/s; %d pair(s).\n\n",
		o.Replicas, o.Latencies, o.Workers, o.MaxTokens, o.TokenDelay, o.Requests, max(o.Warmup, 0), o.Rate, o.Pairs)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintln(out, "| run | requests | failed | p50 ms | p90 ms | p99 ms | max ms | hedges | fail-overs | resumes | killed (RTT) | streams cut | timer lateness p99 / max ms |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, r := range []serve.BenchRun{rep.Baseline, rep.WithFailures} {
		killed := "–"
		if len(r.KilledRTT) > 0 {
			killed = fmt.Sprintf("%d %v", len(r.KilledRTT), r.KilledRTT)
		}
		fmt.Fprintf(out, "| %s | %d | %d | %s | %s | %s | %s | %d | %d | %d | %s | %d | %s / %s |\n", r.Name, r.Requests, r.Failed,
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Hedges, r.Failovers, r.Resumes, killed, r.StreamsCut, ms(r.SchedP99), ms(r.SchedMax))
	}
	for _, r := range []serve.BenchRun{rep.Baseline, rep.WithFailures} {
		rtts := slices.Sorted(maps.Keys(r.ServedByRTT))
		var parts []string
		for _, rtt := range rtts {
			parts = append(parts, fmt.Sprintf("%v: %d", rtt, r.ServedByRTT[rtt]))
		}
		fmt.Fprintf(out, "\nAnswers by replica RTT, %s: %s.", r.Name, strings.Join(parts, ", "))
	}
	verdict := "FAIL"
	if rep.Pass {
		verdict = "PASS"
	}
	fmt.Fprintf(out, "\n\np99 with failures / without: %.2f (per pair %s). Goal (%s): %s.\n", rep.P99Ratio, fmtRatios(rep.PairRatios), serve.BenchGoal, verdict)
}

func fmtRatios(rs []float64) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.2f", r))
	}
	return strings.Join(parts, ", ")
}
