package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind/internal/bench/inferbench"
)

func newBenchInferCmd(g *globals) *cobra.Command {
	o := inferbench.MemoryOptions{}
	var latencies []time.Duration
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Edge inference fail-over: p50/p99 and failed requests with 20% of replicas killed mid-run",
		Long: `Serve a model from --replicas nodes with injected round-trip times on an
in-memory network and send streaming requests at --rate (Poisson arrivals):
once without failures, then the same requests with the busiest --kill share
of replicas killed after --kill-at of them. Every answer is checked against
the expected text. Goal: ` + inferbench.Goal + `.`,
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
				opts.Warmup = -1 // RunMemory reads 0 as its default; the flag's 0 means none
			}
			opts.Latencies, opts.Logger = latencies, benchLogger(cmd, g)
			s := startBench(cmd, "Edge inference (gridmind bench infer)")
			rep, err := inferbench.RunMemory(cmd.Context(), opts, func(p inferbench.Progress) {
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

func writeInferReport(out io.Writer, rep inferbench.MemoryReport) {
	o := rep.Options
	fmt.Fprintf(out, "%d replicas with round-trip times %v (cycled), %d workers each, %d tokens per answer at %v per token; %d measured requests per run (after %d warm-up) at %.0f/s; %d pair(s).\n\n",
		o.Replicas, o.Latencies, o.Workers, o.MaxTokens, o.TokenDelay, o.Requests, max(o.Warmup, 0), o.Rate, o.Pairs)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintln(out, "| run | requests | failed | p50 ms | p90 ms | p99 ms | max ms | hedges | fail-overs | resumes | killed (RTT) | streams cut | timer lateness p99 / max ms |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
	for _, r := range []inferbench.RunStats{rep.Baseline, rep.WithFailures} {
		killed := "–"
		if len(r.KilledRTT) > 0 {
			killed = fmt.Sprintf("%d %v", len(r.KilledRTT), r.KilledRTT)
		}
		fmt.Fprintf(out, "| %s | %d | %d | %s | %s | %s | %s | %d | %d | %d | %s | %d | %s / %s |\n", r.Name, r.Requests, r.Failed,
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Hedges, r.Failovers, r.Resumes, killed, r.StreamsCut, ms(r.SchedP99), ms(r.SchedMax))
	}
	for _, r := range []inferbench.RunStats{rep.Baseline, rep.WithFailures} {
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
	fmt.Fprintf(out, "\n\np99 with failures / without: %.2f (per pair %s). Goal (%s): %s.\n", rep.P99Ratio, fmtRatios(rep.PairRatios), inferbench.Goal, verdict)
}

func fmtRatios(rs []float64) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.2f", r))
	}
	return strings.Join(parts, ", ")
}
