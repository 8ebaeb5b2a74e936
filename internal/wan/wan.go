// Package wan measures DiLoCo over emulated wide-area links: K workers in
// this process, each behind a ShapedTransport with its own
// bandwidth, latency, jitter and loss, on the protocol's internet timing.
// For each link configuration it reports the share of wall time the
// workers spent computing, the bytes each sent per round, round times, and
// the final loss against the unlimited run of the same invocation.
// With Options.Netns, each worker is instead a process in its own network
// namespace, on real libp2p, with the kernel shaping bandwidth (netns.go).
// `gridmind bench wan` runs it.
package wan

import (
	"context"
	"crypto/ed25519"
	"errors"
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

// Config is one link setting: every worker gets Links[i % len(Links)].
type Config struct {
	Name  string
	Links []Link
}

// Options configure Run.
type Options struct {
	NewTrainer  func() (gridmind.Trainer, error)
	Batches     func(workers, worker int, round uint64) gridmind.BatchSource
	EvalBatches []gridmind.Batch
	Workers     int
	InnerSteps  int
	Rounds      int
	Configs     []Config // an unlimited run is added first
	Codec       train.Codec
	// Outer is the outer optimizer (zero: train.DefaultOuter).
	Outer  train.Nesterov
	Seed   int64
	Logger *slog.Logger
	// Timing is the protocol's timing (default train.DefaultTiming, the
	// internet's); SendTimeout and StallTimeout are the worker's (default
	// diloco's: StallTimeout follows from Timing and SendTimeout).
	Timing       train.Timing
	SendTimeout  time.Duration
	StallTimeout time.Duration
	// Overlap runs the workers with diloco's Config.Overlap: each trains
	// the next round while the current one's all-reduce runs.
	Overlap bool
	// MaxInnerSteps makes the inner steps elastic (diloco's
	// Config.MaxInnerSteps); 0 keeps every round at InnerSteps.
	MaxInnerSteps int
	// DeviceSteps, if set, paces worker i's trainer like a dedicated
	// device whose inner step takes DeviceSteps[i % len] (device.go).
	DeviceSteps []time.Duration
	// Netns, if set, runs every worker as a separate process in its own
	// network namespace (netns.go); otherwise all run in this process.
	Netns *Processes
}

// deviceStep is worker i's device pace (0: unpaced).
func (o Options) deviceStep(i int) time.Duration {
	if len(o.DeviceSteps) == 0 {
		return 0
	}
	return o.DeviceSteps[i%len(o.DeviceSteps)]
}

func (o Options) timing() train.Timing {
	if o.Timing == (train.Timing{}) {
		return train.DefaultTiming()
	}
	return o.Timing
}

// linger is how long a finished worker keeps serving its peers: diloco's
// default 2 s, plus twice the time the state takes over the setting's
// slowest link. With 2 s alone, a worker left out of the last round
// behind a slow link found its peers gone before its fetch of the final
// state was through, and could only wait out its stall timeout.
func linger(c Config, stateBytes int) time.Duration {
	var worst time.Duration
	for _, l := range c.Links {
		worst = max(worst, transferTime(l, stateBytes))
	}
	return 2*time.Second + 2*worst
}

// transferTime is how long n bytes take over l to a peer on the same kind
// of link, as ShapedNetwork.delay counts it.
func transferTime(l Link, n int) time.Duration {
	d := 2 * (l.Latency + l.Jitter)
	for _, bits := range []float64{l.UpBits, l.DownBits} {
		if bits > 0 {
			d += time.Duration(float64(8*n) / bits * float64(time.Second))
		}
	}
	packets := n/packetBytes + 1
	rto := max(200*time.Millisecond, 4*l.Latency)
	loss := 1 - (1-l.Loss)*(1-l.Loss)
	return d + time.Duration(float64(packets)*loss*float64(rto))
}

func (o Options) sendTimeout() time.Duration {
	if o.SendTimeout <= 0 {
		return diloco.DefaultSendTimeout
	}
	return o.SendTimeout
}

// stallTimeout is how long a worker waits on a job that makes no progress
// before it fails naming its quietest peers.
func (o Options) stallTimeout() time.Duration {
	if o.StallTimeout <= 0 {
		return diloco.DefaultStallTimeout(o.timing(), o.sendTimeout())
	}
	return o.StallTimeout
}

// behindGrace is how long a worker may still run once a majority of the
// job has finished on one state: a round and a bit more, a state fetch and
// a change of leader, twice over. Past it, the worker was left behind (say
// it was left out of the last round and its peers left before it could
// fetch their state) and would only wait out its stall timeout.
func (o Options) behindGrace(longestRound time.Duration) time.Duration {
	return 2 * (longestRound + o.sendTimeout() + o.timing().WithDefaults().LeaderTimeout())
}

func leftBehind(after time.Duration, state train.Hash) string {
	return fmt.Sprintf("not finished %s after a majority of the workers finished on state %s: left behind, stopped",
		after.Round(time.Second/10), state.Short())
}

// holding counts the workers that finished on state.
func holding(finals map[int]train.Hash, state train.Hash) int {
	n := 0
	for _, h := range finals {
		if h == state {
			n++
		}
	}
	return n
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Row is one configuration's result.
type Row struct {
	Config        string
	Link          string
	ComputeShare  float64       // Σ inner-step time / Σ round time, over all workers and rounds
	BytesPerRound int64         // per worker
	RoundP50      time.Duration // over every worker's reports
	RoundMax      time.Duration
	FinalLoss     float64
	VsUnlimited   float64       // (loss − unlimited loss) / unlimited loss
	Excluded      int           // rounds some worker was left out of
	EarlyStarts   int           // trainings begun before the previous round's announcement (overlap)
	StepsPerRound float64       // inner steps per worker-round (above H with elastic steps)
	LateSteps     float64       // with DeviceSteps: the share of steps the machine computed slower than their device's pace
	Wall          time.Duration // from the start to the last round completed (the lingering after it left out)
	Failure       string        // why the setting failed; the other fields are then what was measured before
}

// Report is every row.
type Report struct {
	Date                   time.Time
	Workers, H, Rounds     int
	Params                 int
	Codec                  string
	Outer                  string // the outer optimizer
	Rows                   []Row
	Combine, ScreenSetting string
	Netns                  bool // each worker a process in its own network namespace
	InternetTiming         bool // the protocol's default timing (train.DefaultTiming)
	DeviceSteps            []time.Duration
}

// withDefaults fills o's logger and codec and returns progress, or a
// function that drops the lines if it is nil.
func (o *Options) withDefaults(progress func(string)) func(string) {
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	if o.Codec == 0 {
		o.Codec = train.CodecInt8
	}
	if progress == nil {
		return func(string) {}
	}
	return progress
}

// Run measures each configuration.
func Run(ctx context.Context, o Options, progress func(string)) (Report, error) {
	progress = o.withDefaults(progress)
	if o.Workers < 1 || o.InnerSteps < 1 || o.Rounds < 1 {
		return Report{}, fmt.Errorf("wan: %d workers, H %d, %d rounds: all must be positive", o.Workers, o.InnerSteps, o.Rounds)
	}
	rep := Report{Date: time.Now().UTC(), Workers: o.Workers, H: o.InnerSteps, Rounds: o.Rounds, Codec: o.Codec.String(), Outer: outerText(o.Outer),
		Combine: train.CenteredClip{}.String(), ScreenSetting: train.DefaultScreen().String(), Netns: o.Netns != nil,
		InternetTiming: o.timing() == train.DefaultTiming(), DeviceSteps: o.DeviceSteps}
	configs := append([]Config{{Name: "unlimited", Links: []Link{{}}}}, o.Configs...)
	var base float64
	var failures []error
	for i, c := range configs {
		run := runOne
		if o.Netns != nil {
			run = runNetns
		}
		row, params, err := run(ctx, o, c)
		if err != nil {
			err = fmt.Errorf("wan %s: %w", c.Name, err)
			if i == 0 || ctx.Err() != nil {
				return rep, err // no baseline, or asked to stop
			}
			// One setting that fails does not cost the others their rows.
			row.Config, row.Link, row.Failure = c.Name, linkText(c.Links), err.Error()
			rep.Rows = append(rep.Rows, row)
			failures = append(failures, err)
			progress(err.Error())
			continue
		}
		rep.Params = params
		if i == 0 {
			base = row.FinalLoss
		}
		row.VsUnlimited = (row.FinalLoss - base) / base
		rep.Rows = append(rep.Rows, row)
		progress(fmt.Sprintf("%s: %.1f%% computing, %s per round per worker, rounds p50 %s max %s, loss %.4f (%+.2f%%)",
			c.Name, 100*row.ComputeShare, human(row.BytesPerRound), row.RoundP50.Round(time.Millisecond), row.RoundMax.Round(time.Millisecond),
			row.FinalLoss, 100*row.VsUnlimited))
	}
	return rep, errors.Join(failures...)
}

// workerKeys are the job's identities, the same for every configuration.
func workerKeys(seed int64, k int) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	return dilocotest.Keys(rand.New(rand.NewSource(seed*7919+11)), k)
}

func runOne(ctx context.Context, o Options, c Config) (Row, int, error) {
	k := o.Workers
	keys, ids := workerKeys(o.Seed, k)
	trainers, closeAll, err := dilocotest.Trainers(k, o.NewTrainer)
	defer closeAll()
	if err != nil {
		return Row{}, 0, err
	}
	initial, err := diloco.InitialState(trainers[0], ids)
	if err != nil {
		return Row{}, 0, err
	}
	var pace paceCount
	for i := range trainers {
		trainers[i] = paced(trainers[i], o.deviceStep(i), &pace)
	}
	mem := dilocotest.NewMemNetwork[diloco.Handler]()
	shaped := NewShapedNetwork(o.Seed)
	proto := train.Config{Codec: o.Codec, Outer: o.Outer, Combiner: train.CenteredClip{}, Screen: train.DefaultScreen(), Timing: o.timing()}
	var mu sync.Mutex
	var computing, total time.Duration
	var lastRound time.Time
	var bytes int64
	var steps int
	var rounds []time.Duration
	workers := make([]*diloco.Worker, k)
	for i := range workers {
		worker := i
		cfg := diloco.Config{
			Job: "wan", Key: keys[i], Trainer: trainers[i], Workers: ids, Initial: initial,
			Batches:    func(round uint64) gridmind.BatchSource { return o.Batches(k, worker, round) },
			InnerSteps: o.InnerSteps, MaxInnerSteps: o.MaxInnerSteps, Rounds: uint64(o.Rounds), Overlap: o.Overlap,
			Transport: shaped.Wrap(mem.Join(ids[i]), c.Links[i%len(c.Links)]), Protocol: proto,
			SendTimeout: o.sendTimeout(), StallTimeout: o.stallTimeout(), Linger: linger(c, 8*len(initial.Theta)),
			Logger: o.Logger,
			Progress: func(p diloco.Progress) {
				mu.Lock()
				defer mu.Unlock()
				computing += p.TrainTime
				total += p.RoundTime
				steps += p.Steps
				bytes += p.RoundBytes
				rounds = append(rounds, p.RoundTime)
				lastRound = time.Now()
			},
			// Every worker evaluates the final state: a worker left out of
			// the last round ends without an evaluation, and the loss is
			// taken from one that holds the majority's state (finalLoss).
			EvalBatches: o.EvalBatches,
		}
		if workers[i], err = diloco.NewWorker(cfg); err != nil {
			return Row{}, 0, err
		}
	}
	start := time.Now()
	summaries, errs := waitWorkers(ctx, o, workers, func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Max(append([]time.Duration{0}, rounds...))
	})
	mu.Lock()
	row := Row{Config: c.Name, Link: linkText(c.Links), Wall: wall(start, lastRound)}
	mu.Unlock()
	describe := func(i int) string {
		return fmt.Sprintf("worker %d (%s, link %s)", i, ids[i].Short(), c.Links[i%len(c.Links)])
	}
	var failures []string
	finals := map[int]train.Hash{}
	for i, s := range summaries {
		if errs[i] != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", describe(i), errs[i]))
		} else {
			finals[i] = s.StateHash
		}
		row.Excluded += s.Excluded
		row.EarlyStarts += s.EarlyStarts
	}
	failures = append(failures, forks(finals, k, describe)...)
	losses := map[int]float64{}
	for i, s := range summaries {
		losses[i] = s.EvalLoss
	}
	row.FinalLoss = finalLoss(finals, losses, k)
	fillRow(&row, computing, total, bytes, rounds, k*o.Rounds, steps, &pace)
	if len(failures) > 0 {
		return row, 0, errors.New(strings.Join(failures, "; "))
	}
	return row, len(initial.Theta), nil
}

// finalLoss is the evaluated loss of the state a majority of the k workers
// finished on (every such worker holds the same weights); NaN if no
// majority, or none of them evaluated it.
func finalLoss(finals map[int]train.Hash, losses map[int]float64, k int) float64 {
	for i := range k {
		h, ok := finals[i]
		if l, evaluated := losses[i]; ok && evaluated && !math.IsNaN(l) && 2*holding(finals, h) > k {
			return l
		}
	}
	return math.NaN()
}

// forks names the workers that finished on a state that no majority of
// the job's k workers holds. A worker cut off from the others does not
// stall: it leads rounds of its own and finishes alone, on a model nobody
// else has; the run must not count that as the job finishing.
func forks(finals map[int]train.Hash, k int, describe func(int) string) []string {
	holders := map[train.Hash][]int{}
	for i, h := range finals {
		holders[h] = append(holders[h], i)
	}
	var majority train.Hash
	found := false
	for h, ws := range holders {
		if 2*len(ws) > k {
			majority, found = h, true
		}
	}
	var out []string
	for i := range k {
		h, ok := finals[i]
		if !ok || (found && h == majority) {
			continue
		}
		if found {
			out = append(out, fmt.Sprintf("%s finished on state %s, which %d of %d workers hold; %d hold %s: its link to the others failed and it trained on alone",
				describe(i), h.Short(), len(holders[h]), k, len(holders[majority]), majority.Short()))
		} else {
			out = append(out, fmt.Sprintf("%s finished on state %s, which %d of %d workers hold: no state has a majority", describe(i), h.Short(), len(holders[h]), k))
		}
	}
	return out
}

// waitWorkers runs the workers to their end. Once a majority has finished
// on one state, a worker still running past behindGrace is stopped and its
// error says it was left behind, rather than wait out its stall timeout.
func waitWorkers(ctx context.Context, o Options, workers []*diloco.Worker, longestRound func() time.Duration) ([]diloco.Summary, []error) {
	k := len(workers)
	type result struct {
		worker  int
		summary diloco.Summary
		err     error
	}
	results := make(chan result, k)
	cancels := make([]context.CancelFunc, k)
	for i, w := range workers {
		wctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		go func() { // ends with Run; cancels[i] or ctx ends Run
			s, err := w.Run(wctx)
			results <- result{i, s, err}
		}()
	}
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	summaries := make([]diloco.Summary, k)
	errs := make([]error, k)
	finished := make([]bool, k)
	stopped := make([]string, k)
	finals := map[int]train.Hash{}
	var majorityAt time.Time
	var majorityState train.Hash
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for running := k; running > 0; {
		select {
		case r := <-results:
			running--
			finished[r.worker] = true
			summaries[r.worker], errs[r.worker] = r.summary, r.err
			if stopped[r.worker] != "" {
				errs[r.worker] = errors.New(stopped[r.worker])
			} else if r.err == nil {
				finals[r.worker] = r.summary.StateHash
				if majorityAt.IsZero() && holding(finals, r.summary.StateHash)*2 > k {
					majorityAt, majorityState = time.Now(), r.summary.StateHash
				}
			}
		case now := <-tick.C:
			if majorityAt.IsZero() || now.Sub(majorityAt) <= o.behindGrace(longestRound()) {
				continue
			}
			for i := range workers {
				if !finished[i] && stopped[i] == "" {
					stopped[i] = leftBehind(now.Sub(majorityAt), majorityState)
					cancels[i]()
				}
			}
		}
	}
	return summaries, errs
}

// wall is the time from start to the last round completed, or to now if none was.
func wall(start, lastRound time.Time) time.Duration {
	if lastRound.IsZero() {
		return time.Since(start)
	}
	return lastRound.Sub(start)
}

// fillRow sets the shares, round times and steps from the workers' reports
// (steps: the inner steps of all of rounds; pace: the device pacing's count).
func fillRow(row *Row, computing, total time.Duration, bytes int64, rounds []time.Duration, workerRounds, steps int, pace *paceCount) {
	row.StepsPerRound = float64(steps) / float64(max(1, len(rounds)))
	row.LateSteps = pace.share()
	if total > 0 {
		row.ComputeShare = float64(computing) / float64(total)
	}
	if workerRounds > 0 {
		row.BytesPerRound = bytes / int64(workerRounds)
	}
	if len(rounds) > 0 {
		sorted := slices.Clone(rounds)
		slices.Sort(sorted)
		row.RoundP50, row.RoundMax = sorted[len(sorted)/2], sorted[len(sorted)-1]
	}
}

func linkText(links []Link) string {
	var parts []string
	for _, l := range links {
		parts = append(parts, l.String())
	}
	return strings.Join(slices.Compact(parts), " / ")
}

// outerText names the outer optimizer o (zero: the default).
func outerText(o train.Nesterov) string {
	if o == (train.Nesterov{}) {
		o = train.DefaultOuter()
	}
	return fmt.Sprintf("Nesterov lr %g momentum %g", o.LR, o.Momentum)
}

// Markdown renders the report.
func (r Report) Markdown() string {
	var b strings.Builder
	where := "all workers in one process on an in-memory network, the whole link emulated in user space"
	if r.Netns {
		where = "each worker a process in its own network namespace on libp2p over TCP, bandwidth shaped by the kernel's tbf, latency, jitter and loss in user space"
	}
	timing := "the protocol's internet timing"
	if !r.InternetTiming {
		timing = "shortened protocol deadlines"
	}
	if len(r.DeviceSteps) > 0 {
		var paces []string
		for _, d := range r.DeviceSteps {
			paces = append(paces, d.String())
		}
		where += "; each worker paced as a dedicated device at " + strings.Join(paces, " / ") + " an inner step (worker i the i-th, in turn)"
	}
	fmt.Fprintf(&b, "Measured %s; %d parameters; K=%d, H=%d, %d rounds, %s, outer %s, %s, screen %s; %s; %s.\n\n",
		r.Date.Format("2006-01-02"), r.Params, r.Workers, r.H, r.Rounds, r.Codec, r.Outer, r.Combine, r.ScreenSetting, timing, where)
	b.WriteString("| links | each worker | computing | steps/round | sent/round/worker | round p50 | round max | final loss | vs unlimited | rounds left out | early starts | wall |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var failed []string
	for _, row := range r.Rows {
		if row.Failure != "" {
			fmt.Fprintf(&b, "| %s | %s | failed (below) | | | | | | | %d | %d | %s |\n", row.Config, row.Link, row.Excluded, row.EarlyStarts, row.Wall.Round(time.Second/10))
			failed = append(failed, fmt.Sprintf("- %s failed: %s\n", row.Config, row.Failure))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f%% | %.1f | %s | %s | %s | %.4f | %+.2f%% | %d | %d | %s |\n", row.Config, row.Link, 100*row.ComputeShare, row.StepsPerRound,
			human(row.BytesPerRound), row.RoundP50.Round(time.Millisecond), row.RoundMax.Round(time.Millisecond),
			row.FinalLoss, 100*row.VsUnlimited, row.Excluded, row.EarlyStarts, row.Wall.Round(time.Second/10))
	}
	var late []string
	for _, row := range r.Rows {
		if row.LateSteps > 0.01 {
			late = append(late, fmt.Sprintf("- %s: %.1f%% of the inner steps took longer than their device's pace (this machine could not keep it; those workers ran slower than paced)\n", row.Config, 100*row.LateSteps))
		}
	}
	if len(late) > 0 {
		b.WriteString("\n" + strings.Join(late, ""))
	}
	if len(failed) > 0 {
		b.WriteString("\n" + strings.Join(failed, ""))
	}
	return b.String()
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
