package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/byzantine"
	"github.com/gridmind/gridmind/internal/dilocotest"
)

func newBenchByzantineCmd(g *globals) *cobra.Command {
	var (
		setups, attacks, rules                  string
		seeds                                   []int
		rounds, inner, contextLen, batch, embed int
		hidden, evalBatches                     int
		toy                                     bool
	)
	cmd := &cobra.Command{
		Use:   "byzantine",
		Short: "DiLoCo under attack: each attack × each combine rule, loss against the clean run",
		Long: `Train the built-in MLP on the embedded corpus with K workers in this
process, some of them adversaries, once per attack, combine rule and seed,
and once clean with the same rule and seed. Attacks through the pseudo-
gradient: sign-flip, sign-flip-x10, noise (10× the honest update's size),
free-rider (Δ = 0, claims the work); through the round protocol:
forged-reduced (results for parts it does not reduce), equivocation (two
results for its part), part-mismatch (parts that are not the committed
pseudo-gradient). Reports the final held-out loss, its ratio to the clean
run, the rounds until every attacker was out for good, and rounds in which
an honest worker was left out or rejected.

The goal for the job defaults (centered clipping behind the screen): no
attack moves the loss more than 5% from clean, every attacker is out within
2 rounds, no honest worker is hurt. --toy runs the same matrix on the
bigram toy model in seconds.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRanges(cmd,
				bounds{"rounds", 2, 10_000, []int{rounds}}, bounds{"inner-steps", 1, 100_000, []int{inner}},
				bounds{"context", 2, 1024, []int{contextLen}}, bounds{"batch", 1, 4096, []int{batch}}, bounds{"embed", 1, 4096, []int{embed}},
				bounds{"hidden", 1, 65536, []int{hidden}}, bounds{"eval-batches", 1, 256, []int{evalBatches}},
				bounds{"seeds", 0, 1 << 30, seeds},
			); err != nil {
				return err
			}
			setupList, err := parseSetups(setups)
			if err != nil {
				return invalid(cmd, "--setups %q: %v", setups, err)
			}
			attackList, err := byzantine.ParseAttacks(attacks)
			if err != nil {
				return invalid(cmd, "--attacks: %v", err)
			}
			ruleList, err := pickRules(rules)
			if err != nil {
				return invalid(cmd, "--rules: %v", err)
			}
			if len(seeds) == 0 {
				return invalid(cmd, "--seeds: give at least one")
			}
			opts := byzantine.Options{Setups: setupList, Attacks: attackList, Rules: ruleList, Rounds: rounds, InnerSteps: inner,
				Logger: benchLogger(cmd, g)}
			for _, s := range seeds {
				opts.Seeds = append(opts.Seeds, int64(s))
			}
			model := ""
			if toy {
				data := dilocotest.NewToyData(24, 7, 3)
				opts.NewTrainer = func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(24, 1, 0.05) }
				opts.Batches = func(workers, worker int, round uint64) gridmind.BatchSource {
					return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
				}
				opts.EvalBatches = data.EvalBatches(4, 256)
				model = "bigram toy model over a 24-symbol Markov chain"
			} else {
				c, err := corpus.Default()
				if err != nil {
					return err
				}
				eval, err := c.EvalBatches(contextLen, 64, evalBatches)
				if err != nil {
					return invalid(cmd, "%v", err)
				}
				cfg := gomlx.Config{Kind: gomlx.MLP, Seed: 1, Context: contextLen, BatchSize: batch, EmbedDim: embed, Hidden: hidden}
				trainerLog := slog.New(slog.DiscardHandler)
				opts.NewTrainer = func() (gridmind.Trainer, error) { return gomlx.New(cfg, trainerLog) }
				opts.Batches = func(workers, worker int, round uint64) gridmind.BatchSource {
					b, err := corpus.NewBatches(c.Shard("byzantine", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker))
					if err != nil {
						panic(fmt.Sprintf("bench byzantine: batches of worker %d/%d: %v", worker, workers, err))
					}
					return b
				}
				opts.EvalBatches = eval
				model = fmt.Sprintf("MLP, context %d, embed %d, hidden %d, batch %d (gomlx simplego, CPU); data: embedded corpus; eval on %d×64 held-out windows",
					contextLen, embed, hidden, batch, evalBatches)
				for _, s := range setupList {
					for w := range s[0] {
						if _, err := corpus.NewBatches(c.Shard("byzantine", 0, w, s[0]), contextLen, batch, 1); err != nil {
							return invalid(cmd, "--context %d, --batch %d with %d workers: %v", contextLen, batch, s[0], err)
						}
					}
				}
			}
			s := startBench(cmd, "Training under attack (gridmind bench byzantine)")
			began := time.Now()
			rep, err := byzantine.Run(cmd.Context(), opts, s.say)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Model: %s; the job's codec (int8); training part took %s.\n\n", model, time.Since(began).Round(time.Second))
			fmt.Fprint(s.out, rep.Markdown())
			fmt.Fprint(s.out, "\n"+summarizeByzantine(rep))
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&setups, "setups", "5:1,10:2", "workers:attackers pairs")
	f.StringVar(&attacks, "attacks", "all", "attacks to run, comma-separated, or all: "+strings.Join(attackNames(), ", "))
	f.StringVar(&rules, "rules", "all", "combine rules, comma-separated, or all: "+strings.Join(ruleNames(), ", "))
	f.IntSliceVar(&seeds, "seeds", []int{1, 2}, "seeds (each changes keys, attackers and data order)")
	f.IntVar(&rounds, "rounds", 8, "outer rounds per job")
	f.IntVar(&inner, "inner-steps", 20, "H, inner steps per round")
	f.IntVar(&contextLen, "context", 16, "characters the MLP reads")
	f.IntVar(&batch, "batch", 16, "windows per inner step")
	f.IntVar(&embed, "embed", 8, "embedding width per character")
	f.IntVar(&hidden, "hidden", 64, "width of each of the two hidden layers")
	f.IntVar(&evalBatches, "eval-batches", 8, "held-out batches of 64 windows for the final loss")
	f.BoolVar(&toy, "toy", false, "use the bigram toy model instead of the MLP (seconds instead of minutes)")
	return cmd
}

func attackNames() []string {
	var out []string
	for _, a := range byzantine.Attacks {
		out = append(out, string(a))
	}
	return out
}

// ruleKeys names DefaultRules for the --rules flag, in order.
var ruleKeys = []string{"default", "mean", "median", "trimmed-mean", "mean-no-screen"}

func ruleNames() []string { return ruleKeys }

func pickRules(s string) ([]byzantine.Rule, error) {
	all := byzantine.DefaultRules()
	if s == "all" || s == "" {
		return all, nil
	}
	var out []byzantine.Rule
	for _, name := range strings.Split(s, ",") {
		i := indexOf(ruleKeys, strings.TrimSpace(name))
		if i < 0 {
			return nil, fmt.Errorf("rule %q unknown (want %s)", name, strings.Join(ruleKeys, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func parseSetups(s string) ([][2]int, error) {
	var out [][2]int
	for _, pair := range strings.Split(s, ",") {
		k, b, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			return nil, fmt.Errorf("%q: want workers:attackers, like 5:1", pair)
		}
		workers, err1 := strconv.Atoi(k)
		attackers, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || workers < 3 || workers > 64 || attackers < 1 || 2*attackers >= workers {
			return nil, fmt.Errorf("%q: want 3 to 64 workers and at least one attacker, fewer than half", pair)
		}
		out = append(out, [2]int{workers, attackers})
	}
	return out, nil
}

// summarizeByzantine states, per setup and rule, the worst loss ratio, the
// slowest exclusion and honest harm, and whether the goal holds.
func summarizeByzantine(rep byzantine.Report) string {
	type key struct {
		k, bad int
		rule   string
	}
	type agg struct {
		worst     float64
		worstWhat string
		slowest   int
		never     int
		rejected  int
		leftOut   int
		cleanOut  int
	}
	aggs := map[key]*agg{}
	var order []key
	for _, r := range rep.Rows {
		k := key{r.Workers, r.Attackers, r.Rule}
		a := aggs[k]
		if a == nil {
			a = &agg{}
			aggs[k] = a
			order = append(order, k)
		}
		if r.Ratio > a.worst {
			a.worst, a.worstWhat = r.Ratio, fmt.Sprintf("%s, seed %d", r.Attack, r.Seed)
		}
		if r.ExcludedAfter < 0 {
			a.never++
		} else {
			a.slowest = max(a.slowest, r.ExcludedAfter)
		}
		a.rejected += r.HonestRejected
		a.leftOut += r.HonestLeftOut
		a.cleanOut += r.CleanLeftOut
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].k < order[j].k })
	var b strings.Builder
	b.WriteString("| K | attackers | rule | worst ratio (attack) | attackers out within | never out | honest rejected | honest left out (clean runs) | goal (≤ 1.05, ≤ 2 rounds, no honest rejected) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range order {
		a := aggs[k]
		goal := "met"
		if a.worst > 1.05 || a.never > 0 || a.slowest > 2 || a.rejected > 0 {
			goal = "not met"
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %.3f (%s) | %d rounds | %d runs | %d | %d (%d) | %s |\n", k.k, k.bad, k.rule, a.worst, a.worstWhat, a.slowest, a.never, a.rejected, a.leftOut, a.cleanOut, goal)
	}
	return b.String()
}
