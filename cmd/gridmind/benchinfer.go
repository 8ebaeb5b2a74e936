package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/bench/inferbench"
)

func newBenchInferCmd(g *globals) *cobra.Command {
	var (
		replicas, requests, warmup, maxTokens, workers, pairs, rounds int
		rate, failAt, killFraction                                    float64
		tokenDelay                                                    time.Duration
		latencies                                                     []time.Duration
		scenarios                                                     []string
		modelKind                                                     string
		seed                                                          uint64
		inMemory                                                      bool
	)
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Edge inference fail-over over libp2p with the GoMLX model: p50/p95/p99 and failed requests, a replica killed or silent",
		Long: `Start --replicas replica processes, each serving the same GoMLX model
(built from one seed, so every replica has the same hash) over libp2p on
loopback and announcing it in the DHT, as ` + "`gridmind models serve`" + ` does;
this process's client finds them through the DHT and sends streaming
requests through serve.Client, the router with hedging and fail-over that
a node's /v1/completions uses, at --rate (Poisson arrivals). Three runs on
fresh processes, in one invocation: no failure (the baseline); the replica
with the most requests in flight killed with SIGKILL once --fail-at of
the requests were sent and a replica has one in flight (its connections
reset); and a replica frozen with SIGSTOP the same way (its connections
stay open and it answers nothing, as a hung node or a blackholed link).
--rounds repeats the three, rotating their order, and pools them. Every
answer is checked against the model's text for the same prompt and seed.
Goal: ` + inferbench.Goal + `.

--in-memory runs the older harness instead: a fake model at --token-delay
per token on an in-memory network with injected --latencies, where a
killed replica resets its streams at once.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if inferbench.IsReplica() {
				return inferbench.ServeReplica(cmd.Context()) // started by the run below
			}
			changed := cmd.Flags().Changed
			orDefault := func(name string, v *int, def int) {
				if !changed(name) {
					*v = def
				}
			}
			if inMemory {
				orDefault("replicas", &replicas, 10)
				orDefault("requests", &requests, 2000)
				orDefault("warmup", &warmup, 100)
				if !changed("rate") {
					rate = 200
				}
			}
			if err := checkRanges(cmd,
				bounds{"replicas", 2, 1000, []int{replicas}}, bounds{"requests", 1, 10_000_000, []int{requests}}, bounds{"warmup", 0, 1_000_000, []int{warmup}},
				bounds{"max-tokens", 1, 100_000, []int{maxTokens}}, bounds{"workers", 1, 10_000, []int{workers}}, bounds{"pairs", 1, 100, []int{pairs}}, bounds{"rounds", 1, 100, []int{rounds}},
			); err != nil {
				return err
			}
			switch {
			case rate <= 0 || rate > 1e6:
				return invalid(cmd, "--rate %g: want 0 < rate <= 1e6 requests per second", rate)
			case failAt <= 0 || failAt >= 1:
				return invalid(cmd, "--fail-at %g: want a share of requests in (0, 1)", failAt)
			}
			if warmup == 0 {
				warmup = -1 // the harness reads 0 as its default; the flag's 0 means none
			}
			if inMemory {
				switch {
				case killFraction <= 0 || killFraction >= 1:
					return invalid(cmd, "--kill %g: want a share of replicas in (0, 1)", killFraction)
				case tokenDelay <= 0:
					return invalid(cmd, "--token-delay %v: want a positive duration", tokenDelay)
				case len(latencies) == 0:
					return invalid(cmd, "--latencies: want at least one round-trip time")
				}
				for _, l := range latencies {
					if l < 0 || l > time.Minute {
						return invalid(cmd, "--latencies %v: want 0..1m", l)
					}
				}
			} else {
				for _, sc := range scenarios {
					if sc != inferbench.Baseline && sc != inferbench.Killed && sc != inferbench.Silent {
						return invalid(cmd, "--scenarios %q: want %s, %s or %s", sc, inferbench.Baseline, inferbench.Killed, inferbench.Silent)
					}
				}
				if modelKind != gomlx.MLP && modelKind != gomlx.Transformer {
					return invalid(cmd, "--model %q: want %s or %s", modelKind, gomlx.MLP, gomlx.Transformer)
				}
			}
			s := startBench(cmd, "Edge inference (gridmind bench infer)")
			say := func(p inferbench.Progress) {
				s.sayEvery(fmt.Sprint(p.Run, p.Done == p.Total), fmt.Sprintf("%s run: %d/%d requests answered", p.Run, p.Done, p.Total))
			}
			if inMemory {
				rep, err := inferbench.RunMemory(cmd.Context(), inferbench.MemoryOptions{Replicas: replicas, Latencies: latencies,
					Requests: requests, Warmup: warmup, Rate: rate, MaxTokens: maxTokens, TokenDelay: tokenDelay, Workers: workers,
					KillFraction: killFraction, KillAt: failAt, Pairs: pairs, Seed: seed, Logger: benchLogger(cmd, g)}, say)
				if err != nil {
					return err
				}
				writeInferReport(s.out, rep)
				s.finish()
				return nil
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			rep, err := inferbench.RunP2P(cmd.Context(), inferbench.P2POptions{Exe: exe, Args: []string{"bench", "infer"},
				Replicas: replicas, Requests: requests, Warmup: warmup, Rate: rate, MaxTokens: maxTokens, FailAt: failAt,
				Scenarios: scenarios, Rounds: rounds, Model: gomlx.Config{Kind: modelKind, Seed: 1}, Seed: seed, Logger: benchLogger(cmd, g)}, say)
			if err != nil {
				return err
			}
			writeP2PReport(s.out, rep)
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&replicas, "replicas", 4, "serving nodes (10 with --in-memory)")
	f.IntVar(&requests, "requests", 300, "measured requests per run (2000 with --in-memory)")
	f.IntVar(&warmup, "warmup", 30, "unmeasured requests before each run, so routing has measured the replicas (100 with --in-memory)")
	f.Float64Var(&rate, "rate", 3, "requests per second, Poisson arrivals, open loop (200 with --in-memory)")
	f.IntVar(&maxTokens, "max-tokens", 16, "tokens per completion")
	f.Float64Var(&failAt, "fail-at", 0.3, "share of measured requests issued before the failure")
	f.StringSliceVar(&scenarios, "scenarios", []string{inferbench.Baseline, inferbench.Killed, inferbench.Silent}, "runs, in order: baseline, killed, silent")
	f.IntVar(&rounds, "rounds", 1, "rounds of every scenario, each round's order rotated by one, pooled")
	f.StringVar(&modelKind, "model", gomlx.MLP, "the served model at its default size, weights from seed 1: mlp or transformer")
	f.Uint64Var(&seed, "seed", 1, "seed of arrivals, keys and routing")
	f.BoolVar(&inMemory, "in-memory", false, "the in-memory harness with a fake model instead of processes over libp2p")
	f.DurationSliceVar(&latencies, "latencies", []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond}, "--in-memory: round-trip time to each replica, cycled")
	f.DurationVar(&tokenDelay, "token-delay", time.Millisecond, "--in-memory: generation time per token")
	f.IntVar(&workers, "workers", 4, "--in-memory: concurrent generations per replica")
	f.Float64Var(&killFraction, "kill", 0.2, "--in-memory: share of replicas killed in the failure run")
	f.IntVar(&pairs, "pairs", 1, "--in-memory: (baseline, failures) pairs, alternating order, pooled")
	return cmd
}

func writeP2PReport(out io.Writer, rep inferbench.P2PReport) {
	o := rep.Options
	fmt.Fprintf(out, "%d replica processes over libp2p (loopback), each serving the GoMLX %s model %.12s (%d parameters) with one worker; %d tokens per answer; %d measured requests per run (after %d warm-up) at %.1f/s; failure after %.0f%% of them, at the first moment a replica has a request in flight; %d round(s) pooled.\n\n",
		o.Replicas, o.Model.Kind, rep.Model, rep.Params, o.MaxTokens, o.Requests, max(o.Warmup, 0), o.Rate, o.FailAt*100, o.Rounds)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintln(out, "| run | requests | failed | p50 ms | p95 ms | p99 ms | max ms | p99 / baseline | hedges | fail-overs | resumes | victim's requests in flight | timer lateness p99 / max ms |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rep.Runs {
		ratio, inFlight := "–", "–"
		if v, ok := rep.P99Ratio[r.Name]; ok {
			ratio = fmt.Sprintf("%.2f", v)
		}
		if len(r.Killed) > 0 {
			inFlight = fmt.Sprint(r.StreamsCut)
		}
		fmt.Fprintf(out, "| %s | %d | %d | %s | %s | %s | %s | %s | %d | %d | %d | %s | %s / %s |\n", r.Name, r.Requests, r.Failed,
			ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max), ratio, r.Hedges, r.Failovers, r.Resumes, inFlight, ms(r.SchedP99), ms(r.SchedMax))
	}
	for _, r := range rep.Runs {
		var parts []string
		for _, sm := range r.Slowest {
			parts = append(parts, fmt.Sprintf("%s (attempts %d, hedged %v, resumed %v, issued after the failure %v)", ms(sm.Latency), sm.Attempts, sm.Hedged, sm.Resumed, sm.AfterKill))
		}
		fmt.Fprintf(out, "\nSlowest, %s (ms): %s.", r.Name, strings.Join(parts, "; "))
	}
	verdict := "FAIL"
	if rep.Pass {
		verdict = "PASS"
	}
	fmt.Fprintf(out, "\n\nGoal (%s): %s.\n", inferbench.Goal, verdict)
}

// writeInferReport is the --in-memory report.
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
