package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/wan"
)

func newBenchWANCmd(g *globals) *cobra.Command {
	var (
		links                                   []string
		workers, inner, rounds, contextLen      int
		batch, embed, hidden, evalBatches, seed int
	)
	cmd := &cobra.Command{
		Use:   "wan",
		Short: "DiLoCo over emulated internet links: share of time computing, bytes and round time per link setting",
		Long: `Train the built-in MLP with K workers in this process, once with unlimited
links and once per --links setting, each worker behind an emulated link:
its uplink and downlink bandwidth, one-way latency to the core, jitter, and
packet loss (each lost packet costs a retransmission timeout; streams are
reliable). The protocol runs on its internet timing. Reports the share of
wall time the workers spent in their inner steps, the bytes each sent per
round, round times and the final loss against the unlimited run.

A setting is a name (` + strings.Join(linkNamesSorted(), ", ") + `) or
up=20M,down=100M,rtt=100ms,jitter=10ms,loss=0.01; several settings
separated by '/' go to the workers in turn (a mixed fleet), e.g.
--links lab/home-slow.

The emulation is in user space (the kernel here has no netem): it shapes
each message, not packets on a wire, so it models queueing on one's own
links but not congestion inside the internet.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRanges(cmd,
				bounds{"workers", 1, 64, []int{workers}}, bounds{"inner-steps", 1, 100_000, []int{inner}}, bounds{"rounds", 1, 10_000, []int{rounds}},
				bounds{"context", 2, 1024, []int{contextLen}}, bounds{"batch", 1, 4096, []int{batch}}, bounds{"embed", 1, 4096, []int{embed}},
				bounds{"hidden", 1, 65536, []int{hidden}}, bounds{"eval-batches", 1, 256, []int{evalBatches}},
			); err != nil {
				return err
			}
			var configs []wan.Config
			for _, setting := range links {
				c := wan.Config{Name: setting}
				for _, part := range strings.Split(setting, "/") {
					l, err := diloco.ParseLink(part)
					if err != nil {
						return invalid(cmd, "--links: %v", err)
					}
					c.Links = append(c.Links, l)
				}
				configs = append(configs, c)
			}
			c, err := corpus.Default()
			if err != nil {
				return err
			}
			eval, err := c.EvalBatches(contextLen, 64, evalBatches)
			if err != nil {
				return invalid(cmd, "%v", err)
			}
			for w := range workers {
				if _, err := corpus.NewBatches(c.Shard("wan", 0, w, workers), contextLen, batch, 1); err != nil {
					return invalid(cmd, "--context %d, --batch %d with %d workers: %v", contextLen, batch, workers, err)
				}
			}
			cfg := gomlx.Config{Kind: gomlx.MLP, Seed: 1, Context: contextLen, BatchSize: batch, EmbedDim: embed, Hidden: hidden}
			trainerLog := slog.New(slog.DiscardHandler)
			s := startBench(cmd, "Training over emulated internet links (gridmind bench wan)")
			began := time.Now()
			rep, err := wan.Run(cmd.Context(), wan.Options{
				NewTrainer: func() (gridmind.Trainer, error) { return gomlx.New(cfg, trainerLog) },
				Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
					b, err := corpus.NewBatches(c.Shard("wan", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker))
					if err != nil {
						panic(fmt.Sprintf("bench wan: batches of worker %d/%d: %v", worker, workers, err))
					}
					return b
				},
				EvalBatches: eval, Workers: workers, InnerSteps: inner, Rounds: rounds, Configs: configs, Seed: int64(seed),
				Logger: benchLogger(cmd, g),
			}, s.say)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Model: MLP, context %d, embed %d, hidden %d, batch %d (gomlx simplego, CPU, all workers sharing this machine's cores); training part took %s.\n\n",
				contextLen, embed, hidden, batch, time.Since(began).Round(time.Second))
			fmt.Fprint(s.out, rep.Markdown())
			s.finish()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&links, "links", []string{"lab", "dc-100ms", "home", "home-slow"}, "link settings to compare with unlimited (see above)")
	f.IntVar(&workers, "workers", 4, "K, workers in this process")
	f.IntVar(&inner, "inner-steps", 50, "H, inner steps per round")
	f.IntVar(&rounds, "rounds", 4, "outer rounds per setting")
	f.IntVar(&contextLen, "context", 32, "characters the MLP reads")
	f.IntVar(&batch, "batch", 32, "windows per inner step")
	f.IntVar(&embed, "embed", 16, "embedding width per character")
	f.IntVar(&hidden, "hidden", 256, "width of each of the two hidden layers (the default size, 224k parameters)")
	f.IntVar(&evalBatches, "eval-batches", 8, "held-out batches of 64 windows for the final loss")
	f.IntVar(&seed, "seed", 1, "seed of keys, jitter and loss")
	return cmd
}

func linkNamesSorted() []string {
	var names []string
	for n := range diloco.Links {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
