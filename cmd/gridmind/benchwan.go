package main

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/netns"
	"github.com/gridmind/gridmind/internal/wan"
	"github.com/gridmind/gridmind/train"
)

// wanModel is the model and data of `bench wan`, shared by the parent and,
// with --netns, by each worker's process (`bench wan node`), which must
// build the same trainer and batches from the same flags.
type wanModel struct {
	contextLen, batch, embed, hidden, evalBatches int
}

func (m *wanModel) flags(f *pflag.FlagSet) {
	f.IntVar(&m.contextLen, "context", 32, "characters the MLP reads")
	f.IntVar(&m.batch, "batch", 32, "windows per inner step")
	f.IntVar(&m.embed, "embed", 16, "embedding width per character")
	f.IntVar(&m.hidden, "hidden", 256, "width of each of the two hidden layers (the default size, 224k parameters)")
	f.IntVar(&m.evalBatches, "eval-batches", 8, "held-out batches of 64 windows for the final loss")
}

func (m *wanModel) args() []string {
	return []string{fmt.Sprintf("--context=%d", m.contextLen), fmt.Sprintf("--batch=%d", m.batch), fmt.Sprintf("--embed=%d", m.embed),
		fmt.Sprintf("--hidden=%d", m.hidden), fmt.Sprintf("--eval-batches=%d", m.evalBatches)}
}

// options checks the flags and fills the trainer, batches and evaluation set of o.
func (m *wanModel) options(cmd *cobra.Command, workers int, o *wan.Options) error {
	if err := checkRanges(cmd,
		bounds{"context", 2, 1024, []int{m.contextLen}}, bounds{"batch", 1, 4096, []int{m.batch}}, bounds{"embed", 1, 4096, []int{m.embed}},
		bounds{"hidden", 1, 65536, []int{m.hidden}}, bounds{"eval-batches", 1, 256, []int{m.evalBatches}},
	); err != nil {
		return err
	}
	c, err := corpus.Default()
	if err != nil {
		return err
	}
	eval, err := c.EvalBatches(m.contextLen, 64, m.evalBatches)
	if err != nil {
		return invalid(cmd, "%v", err)
	}
	for w := range workers {
		if _, err := corpus.NewBatches(c.Shard("wan", 0, w, workers), m.contextLen, m.batch, 1); err != nil {
			return invalid(cmd, "--context %d, --batch %d with %d workers: %v", m.contextLen, m.batch, workers, err)
		}
	}
	cfg := gomlx.Config{Kind: gomlx.MLP, Seed: 1, Context: m.contextLen, BatchSize: m.batch, EmbedDim: m.embed, Hidden: m.hidden}
	trainerLog := slog.New(slog.DiscardHandler)
	contextLen, batch := m.contextLen, m.batch
	o.NewTrainer = func() (gridmind.Trainer, error) { return gomlx.New(cfg, trainerLog) }
	o.Batches = func(workers, worker int, round uint64) gridmind.BatchSource {
		b, err := corpus.NewBatches(c.Shard("wan", int(round), worker, workers), contextLen, batch, int64(round)*7919+int64(worker))
		if err != nil { // checked above for every worker; a shard of a later round is as large
			panic(fmt.Sprintf("bench wan: batches of worker %d/%d: %v", worker, workers, err))
		}
		return b
	}
	o.EvalBatches = eval
	return nil
}

func newBenchWANCmd(g *globals) *cobra.Command {
	var (
		links                  []string
		workers, inner, rounds int
		seed, allReduce        int
		useNetns, overlap      bool
		elastic                bool
		devices                []string
		codecName              string
		outerLR, outerMomentum float64
		m                      wanModel
	)
	cmd := &cobra.Command{
		Use:   "wan",
		Short: "DiLoCo over emulated internet links: share of time computing, bytes and round time per link setting",
		Long: `Train the built-in MLP with K workers, once with unlimited links and once
per --links setting, each worker behind an emulated link: its uplink and
downlink bandwidth, one-way latency to the core, jitter, and packet loss
(each lost packet costs a retransmission timeout; streams are reliable).
The protocol runs on its internet timing. Reports the share of wall time
the workers spent in their inner steps, the bytes each sent per round,
round times and the final loss against the unlimited run. With --overlap
(the default) each worker trains round r+1 while round r's all-reduce runs,
from its own estimate of the next weights; --overlap=false trains, then
communicates, as a worker did before. With --elastic a worker that ends
its H inner steps while the round's last participant still trains goes on
for about that long (at most half as many steps again) instead of idling;
the table's steps/round column shows how many it ran.

With --device-step each worker's inner step takes at least that long, as
on a dedicated device of that speed: here the workers share the machine's
cores, so without it one that ends early hands its cores to the others and
their speeds are scheduling noise. Pick a pace longer than a step takes
with all workers computing at once (the report says if the machine could
not keep it); several paces make a mixed fleet.

A setting is a name (` + strings.Join(linkNamesSorted(), ", ") + `) or
up=20M,down=100M,rtt=100ms,jitter=10ms,loss=0.01; several settings
separated by '/' go to the workers in turn (a mixed fleet), e.g.
--links lab/home-slow.

By default the K workers run in this process on an in-memory network, and
the whole link is emulated in user space: it shapes each message, not
packets on a wire, so it models queueing on one's own links but not
congestion inside the internet.

With --netns (root, iproute2), each worker is a separate process in its
own network namespace, on real libp2p over TCP across a bridge; the
kernel's tbf shapes its bandwidth on its veth pair (packets, TCP's own
congestion control), and latency, jitter and loss stay in user space (the
kernel here has no netem). A worker that cannot make progress fails the
run with an error naming it and its link; one cut off from the others that
trains on alone fails it too. Namespaces are named gm-wan-<pid>-* and
removed at the end.

With --netns --allreduce N, no model trains: each setting measures the
all-reduce alone (workers whose trainer does nothing exchange an N-value
vector in the job's codec, screened and combined as in a job) against
plain libp2p streams sending the same bytes per worker in the same two
phases, on the same shaped links, and reports the ratio of their rates.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRanges(cmd,
				bounds{"workers", 1, 64, []int{workers}}, bounds{"inner-steps", 1, 100_000, []int{inner}}, bounds{"rounds", 1, 10_000, []int{rounds}},
			); err != nil {
				return err
			}
			codec, err := train.ParseCodec(codecName)
			if err != nil || !codec.Quantizes() {
				return invalid(cmd, "--codec %q: want int8, int4 or topk:K:BITS (K of every 256 values: %v; BITS 1-4)", codecName, train.TopKCounts)
			}
			if outerLR <= 0 || outerLR > 10 || outerMomentum < 0 || outerMomentum >= 1 {
				return invalid(cmd, "--outer-lr %v / --outer-momentum %v: want 0 < lr ≤ 10 and 0 ≤ momentum < 1", outerLR, outerMomentum)
			}
			var paces []time.Duration
			for _, d := range devices {
				step, err := time.ParseDuration(d)
				if err != nil || step <= 0 || step > time.Minute {
					return invalid(cmd, "--device-step %q: want a duration such as 60ms (0 < step ≤ 1m)", d)
				}
				paces = append(paces, step)
			}
			var configs []wan.Config
			for _, setting := range links {
				c := wan.Config{Name: setting}
				for _, part := range strings.Split(setting, "/") {
					l, err := wan.ParseLink(part)
					if err != nil {
						return invalid(cmd, "--links: %v", err)
					}
					c.Links = append(c.Links, l)
				}
				configs = append(configs, c)
			}
			o := wan.Options{Workers: workers, InnerSteps: inner, Rounds: rounds, Configs: configs, Seed: int64(seed), Overlap: overlap, Logger: benchLogger(cmd, g),
				MaxInnerSteps: diloco.MaxInnerStepsFor(elastic, inner), DeviceSteps: paces,
				Codec: codec, Outer: train.Nesterov{LR: float32(outerLR), Momentum: float32(outerMomentum)}}
			if err := m.options(cmd, workers, &o); err != nil {
				return err
			}
			mode := "all workers in this process, sharing its cores"
			if useNetns {
				if err := netns.Available(); err != nil {
					return gridmind.E(gridmind.KindUnavailable, cmd.CommandPath(), "--netns: %v", err)
				}
				self, err := os.Executable()
				if err != nil {
					return err
				}
				argv := append([]string{self, "bench", "wan", "node"}, m.args()...)
				if cmd.Flags().Changed("log-level") {
					argv = append(argv, "--log-level="+g.logLevel)
				}
				o.Netns = &wan.Processes{Command: argv}
				if cmd.Flags().Changed("log-level") {
					o.Netns.Stderr = cmd.ErrOrStderr()
				}
				mode = "each worker a process in its own network namespace, all sharing this machine's cores"
			}
			if allReduce > 0 {
				if !useNetns {
					return invalid(cmd, "--allreduce %d: needs --netns (the all-reduce is measured over real libp2p between namespaces)", allReduce)
				}
				if allReduce < workers || allReduce > 1<<28 {
					return invalid(cmd, "--allreduce %d: want %d (--workers) to %d values", allReduce, workers, 1<<28)
				}
				s := startBench(cmd, "The all-reduce against plain libp2p streams on emulated links (gridmind bench wan --netns --allreduce)")
				rows, err := wan.RunThroughput(cmd.Context(), o, allReduce, rounds, s.say)
				if len(rows) == 0 {
					return err
				}
				fmt.Fprint(s.out, wan.ThroughputMarkdown(rows, workers))
				s.finish()
				return err
			}
			s := startBench(cmd, "Training over emulated internet links (gridmind bench wan)")
			began := time.Now()
			rep, err := wan.Run(cmd.Context(), o, s.say)
			if len(rep.Rows) == 0 {
				return err
			}
			// A failed setting still leaves the others' rows (and its own
			// failure under the table); the exit status says it failed.
			overlapped := "off: each round trains, then communicates"
			if overlap {
				overlapped = "on: round r+1 trains while round r communicates"
			}
			steps := "off: H steps a round"
			if elastic {
				steps = fmt.Sprintf("on: %d to %d steps a round", inner, diloco.ElasticMax(inner))
			}
			fmt.Fprintf(s.out, "Model: MLP, context %d, embed %d, hidden %d, batch %d (gomlx simplego, CPU, %s); overlap %s; elastic steps %s; training part took %s.\n\n",
				m.contextLen, m.embed, m.hidden, m.batch, mode, overlapped, steps, time.Since(began).Round(time.Second))
			fmt.Fprint(s.out, rep.Markdown())
			s.finish()
			return err
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&links, "links", []string{"lab", "dc-100ms", "home", "home-slow"}, "link settings to compare with unlimited (see above)")
	f.IntVar(&workers, "workers", 4, "K, workers")
	f.IntVar(&inner, "inner-steps", 50, "H, inner steps per round")
	f.IntVar(&rounds, "rounds", 4, "outer rounds per setting")
	f.IntVar(&seed, "seed", 1, "seed of keys, jitter and loss")
	f.BoolVar(&useNetns, "netns", false, "run each worker as a process in its own network namespace, bandwidth shaped by the kernel (root)")
	f.BoolVar(&overlap, "overlap", true, "train round r+1 while round r's all-reduce runs (--overlap=false: train, then communicate)")
	f.BoolVar(&elastic, "elastic", false, "elastic inner steps: a worker that would wait for the round's slowest trains on, up to 1.5×H steps")
	f.StringSliceVar(&devices, "device-step", nil, "pace each worker like a dedicated device whose inner step takes this long (e.g. 60ms; several, comma-separated, go to the workers in turn: a mixed fleet)")
	f.StringVar(&codecName, "codec", "int8", "the job's codec for pseudo-gradients: int8, int4 or topk:K:BITS")
	def := train.DefaultOuter()
	f.Float64Var(&outerLR, "outer-lr", shortest(def.LR), "outer Nesterov learning rate")
	f.Float64Var(&outerMomentum, "outer-momentum", shortest(def.Momentum), "outer Nesterov momentum")
	f.IntVar(&allReduce, "allreduce", 0, "with --netns: measure the all-reduce of this many values against plain streams instead of training (0: train)")
	m.flags(f)
	cmd.AddCommand(newBenchWANNodeCmd(g))
	return cmd
}

// newBenchWANNodeCmd is one worker's process of `bench wan --netns`; the
// parent starts it inside the worker's namespace and talks to it on
// stdin and file descriptor 3.
func newBenchWANNodeCmd(g *globals) *cobra.Command {
	var m wanModel
	cmd := &cobra.Command{
		Use:    "node",
		Short:  "One worker of bench wan --netns (started by it)",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := wan.Options{Logger: benchLogger(cmd, g)}
			// The batches take the worker count as an argument; the
			// check of every worker's shard is the parent's.
			if err := m.options(cmd, 0, &o); err != nil {
				return err
			}
			return wan.RunNode(cmd.Context(), o, cmd.InOrStdin())
		},
	}
	m.flags(cmd.Flags())
	return cmd
}

// shortest is v as the float64 its shortest decimal form names (0.9, not
// 0.8999999761581421), for flag defaults and messages.
func shortest(v float32) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', -1, 32), 64)
	return f
}

func linkNamesSorted() []string {
	var names []string
	for n := range wan.Links {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
