package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/train"
)

// Options configure a demo run; zero fields take the defaults in Defaults.
type Options struct {
	Nodes       int    // provider nodes
	Workers     int    // active training workers (one more is placed on standby)
	Rounds      int    // DiLoCo outer rounds
	InnerSteps  int    // H, inner steps per round
	Model       string // "mlp" or "transformer"
	Seed        int64
	NoCrash     bool // do not kill a worker mid-run
	NoCheat     bool // plant no cheater (see audit.go)
	KeepRunning bool // leave the network up until ctx ends
	// EnergyTime is the moment of the real traces the network lives in
	// (the demo's "now" for solar and carbon); zero takes Defaults'.
	EnergyTime time.Time
	Prompts    []string
	// ResultsDir receives report.json and report.md; "" takes
	// ./results/demo-<time>; "-" writes nothing.
	ResultsDir string
	Out        io.Writer
	Logger     *slog.Logger
}

// Defaults are the demo's settings: sized to finish in well under three
// minutes on a 2-core machine.
func Defaults() Options {
	return Options{
		Nodes: 8, Workers: 4, Rounds: 10, InnerSteps: 40, Model: "mlp", Seed: 1,
		EnergyTime: time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC),
		Prompts:    []string{"func (s *Server) ", "package main\n\nimport ", "// Copyright 2009 The Go Authors"},
	}
}

func (o *Options) fill() error {
	d := Defaults()
	if o.Nodes == 0 {
		o.Nodes = d.Nodes
	}
	if o.Workers == 0 {
		o.Workers = min(d.Workers, o.Nodes-1)
	}
	if o.Rounds == 0 {
		o.Rounds = d.Rounds
	}
	if o.InnerSteps == 0 {
		o.InnerSteps = d.InnerSteps
	}
	if o.Model == "" {
		o.Model = d.Model
	}
	if o.EnergyTime.IsZero() {
		o.EnergyTime = d.EnergyTime
	}
	if o.Prompts == nil {
		o.Prompts = d.Prompts
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if _, ok := o.Out.(*ui.Term); !ok {
		// Redraws and escape codes only on a terminal; a pipe or a log
		// file gets plain lines.
		o.Out = ui.NewTerm(o.Out)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "demo", format, args...)
	}
	switch {
	case o.Nodes < 2 || o.Nodes > 32:
		return bad("--nodes %d: want 2..32", o.Nodes)
	case o.Workers < 1 || o.Workers >= o.Nodes:
		return bad("--workers %d: want 1..%d (one provider stays on standby)", o.Workers, o.Nodes-1)
	case o.Rounds < 2 || o.Rounds > 1000:
		return bad("--rounds %d: want 2..1000", o.Rounds)
	case o.InnerSteps < 1 || o.InnerSteps > 10000:
		return bad("--inner-steps %d: want 1..10000", o.InnerSteps)
	case o.Model != "mlp" && o.Model != "transformer":
		return bad("--model %q: want mlp or transformer", o.Model)
	case !o.NoCrash && o.Rounds < 3:
		return bad("--rounds %d: a crash needs at least 3 rounds (or --no-crash)", o.Rounds)
	}
	return nil
}

// Profiles gives the demo's providers a mix of energy setups around the
// world: consecutive nodes walk through the eight grid zones, and cycle
// through rooftop solar, solar with a battery, grid only and a microgrid.
func Profiles(n int) []energy.Profile {
	presets := energy.Presets(32)
	kinds := []int{1, 2, 0, 3}
	out := make([]energy.Profile, n)
	for i := range out {
		out[i] = presets[i%8+8*kinds[i%len(kinds)]]
	}
	return out
}

// Run tells the whole story and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Options: ReportOptions{Nodes: o.Nodes, Workers: o.Workers, Rounds: o.Rounds, InnerSteps: o.InnerSteps, Model: o.Model, Seed: o.Seed, Crash: !o.NoCrash, EnergyTime: o.EnergyTime}}
	out := o.Out
	energyStart := time.Now()
	energyClock := func() time.Time { return o.EnergyTime.Add(time.Since(energyStart)) }

	// 1. The network.
	section(out, "1", "a local gridmind network")
	fmt.Fprintf(out, "  1 CometBFT validator, 1 requester and %d providers: libp2p hosts on 127.0.0.1 (TCP, Noise, yamux, DHT, GossipSub)\n", o.Nodes)
	fmt.Fprintf(out, "  energy: real traces at %s (Electricity Maps carbon, measured PV)\n", o.EnergyTime.Format("2006-01-02 15:04 MST"))
	model := gomlx.DefaultConfig(o.Model)
	model.BatchSize = 32 // two cores shared by every worker: small steps keep rounds short
	model.Seed = o.Seed
	startLoss, perBatch, err := untrainedLoss(ctx, model, 4)
	if err != nil {
		return nil, err
	}
	rep.StartLoss = startLoss
	firstWait := firstReadyWait(perBatch, o.InnerSteps, o.Workers)
	fmt.Fprintf(out, "  this machine evaluates a batch in %s; round 0's leader waits at least %s for the others (protocol waits scale with the speed)\n",
		perBatch.Round(100*time.Microsecond), firstWait.Round(100*time.Millisecond))
	net, err := localnet.Start(ctx, localnet.Options{
		Providers: o.Nodes, Seed: o.Seed, Logger: o.Logger, Profiles: Profiles(o.Nodes),
		EnergyClock: energyClock, HTTP: o.KeepRunning,
		// The cheater trains half the inner steps, so a leader must wait
		// about its own training time for the honest workers' "ready":
		// ReadySlack 1.5 of it (the default 0.25, capped at 10 s, left
		// them out of every round on a loaded machine). A lost worker
		// costs that wait once: seconds on an idle machine, where rounds
		// take seconds; the caps only bound a pathological machine.
		TrainTiming: train.Timing{ReadySlack: 1.5, MinReadyWait: firstWait, MaxReadyWait: 5 * time.Minute, MaxExchangeWait: 2 * time.Minute},
		// A lease needs more stake than one round pays (20 GRID here).
		ProviderStake: 40 * gridmind.UnitsPerGRID,
		// The dispute window: a round's auditors must re-run it and file
		// their proof before it settles.
		SettleDelayBlocks: auditWindow(firstWait),
	})
	if err != nil {
		return nil, err
	}
	defer net.Close()
	bar := ui.NewProgress(out, "peers and offers", 1)
	if err := net.WaitReady(ctx, func(have, want int) { bar.Resize(want); bar.Set(have) }); err != nil {
		return nil, err
	}
	bar.Done(fmt.Sprintf("every node sees every other; %d offers on the ledger (%.1fs)", o.Nodes, time.Since(start).Seconds()))
	names := map[gridmind.NodeID]string{net.Requester.Node.ID(): "requester", net.Validator.Node.ID(): "validator"}
	for i, p := range net.Providers {
		names[p.Node.ID()] = fmt.Sprintf("p%d", i)
	}
	rep.Nodes = describeProviders(ctx, net, names, energyClock())
	printProviders(out, rep.Nodes)

	// 2. The job.
	section(out, "2", "the requester posts a training job")
	spec := gridmind.JobSpec{
		Name: "demo-charlm", Model: o.Model, Workers: o.Workers, Rounds: o.Rounds, InnerSteps: o.InnerSteps,
		Budget: gridmind.Amount(o.Rounds) * 20 * gridmind.UnitsPerGRID, MaxPricePerUnit: 1000, GreenPreference: 60, Seed: o.Seed,
	}
	dog := newWatchdog(time.Now(), o.InnerSteps, stallFloor, stallFactor)
	progress := newTrainProgress(out, o.Rounds, dog, time.Now)
	defer progress.done()
	story := newStory(out, o, net, names, rep, progress)
	rep.Audit.RatePPM = auditRatePPM
	for _, p := range net.Providers {
		p.Provider.SetAuditRate(auditRatePPM)
		p.Provider.OnAudit(story.audit)
		p.Provider.OnInnerStep(progress.innerStep)
	}
	// ReportTimeout: a loaded machine spreads the workers' reports of a
	// round (each evaluates first); only a participant that never reports
	// costs the wait.
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{
		Model: model, Standby: 1, EvalBatches: 4, ReportTimeout: time.Minute, ExpectedDuration: 2 * time.Hour,
		Events: story.event,
	})
	if err != nil {
		return nil, err
	}
	rep.Job = string(run.ID)
	story.started(run)

	// 3–5. Training, the crash, settlement: driven by the job's events.
	tick := time.NewTicker(time.Second)
	results, err := waitWithWatchdog(ctx, run.Wait, dog.stalled, tick.C)
	tick.Stop()
	progress.done()
	if err != nil {
		return nil, err
	}
	story.finish(results)
	story.settleAudit(ctx, run.ID, results)

	// 6. Inference at the edge.
	section(out, "6", "the trained model is served at the edge")
	if err := serveAndAsk(ctx, o, net, names, results, rep); err != nil {
		return nil, err
	}

	// 7. The report.
	if err := finalReport(ctx, o, net, names, rep, start); err != nil {
		return nil, err
	}
	if o.KeepRunning {
		keepRunning(ctx, out, net, rep)
	}
	return rep, nil
}

// waitWithWatchdog waits for the job, but gives up with stalled's error
// once it returns one, checked at each tick: a demo must never hang
// silently.
func waitWithWatchdog(ctx context.Context, wait func(context.Context) ([]jobs.RoundResult, error), stalled func(time.Time) error, ticks <-chan time.Time) ([]jobs.RoundResult, error) {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-wctx.Done():
				return
			case now := <-ticks:
				if err := stalled(now); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	results, err := wait(wctx)
	cancel(nil)
	<-watching
	if cause := context.Cause(wctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		return nil, cause
	}
	return results, err
}

func section(out io.Writer, n, title string) {
	fmt.Fprintf(out, "\n▶ %s. %s\n", n, title)
}

// keepRunning prints how to poke at the live network and waits for Ctrl-C.
func keepRunning(ctx context.Context, out io.Writer, net *localnet.Net, rep *Report) {
	api := net.Requester.APIAddr
	fmt.Fprintf(out, "\nThe network stays up. Watch it in a browser: http://%s/\n", api)
	fmt.Fprintf(out, "  (to post or cancel jobs there, paste the token in %s)\n", filepath.Join(net.Dir, "requester", node.APITokenFile))
	fmt.Fprintf(out, "In another terminal try:\n")
	fmt.Fprintf(out, "  gridmind peers   --api %s\n", api)
	fmt.Fprintf(out, "  gridmind status  --api %s\n", api)
	fmt.Fprintf(out, "  gridmind wallet balance --rpc %s %s\n", net.RPC(), net.Requester.Node.ID())
	fmt.Fprintf(out, "  gridmind jobs list --api %s\n", api)
	fmt.Fprintf(out, "  gridmind jobs explain --api %s %s\n", api, rep.Job)
	if rep.ModelHash != "" {
		fmt.Fprintf(out, "  gridmind infer --api %s --model %s \"func main() {\"\n", api, rep.ModelHash)
	}
	fmt.Fprintf(out, "Ctrl-C stops every node.\n")
	<-ctx.Done()
}

// writeResults writes report.json and report.md and returns the folder.
func writeResults(o Options, rep *Report) (string, error) {
	if o.ResultsDir == "-" {
		return "", nil
	}
	dir := o.ResultsDir
	if dir == "" {
		dir = filepath.Join("results", "demo-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	js, err := rep.JSON()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), js, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return "", err
	}
	abs, _ := filepath.Abs(dir)
	return abs, nil
}

// syncBytesPerWorker is what fully synchronous data-parallel training
// would send per worker for the same steps: a ring all-reduce of the
// float32 gradient (2(K−1)/K of its size) after every inner step.
func syncBytesPerWorker(params, workers, steps int) float64 {
	return float64(steps) * 2 * float64(workers-1) / float64(workers) * 4 * float64(params)
}

var errNoModel = errors.New("demo: no trained model to serve")

// untrainedLoss evaluates θ_0 (the model every worker starts from, fixed
// by the seed) on the held-out batches the workers evaluate on. It also
// times one batch's evaluation, compiled: a probe of this machine's speed
// now, load included.
func untrainedLoss(ctx context.Context, cfg gomlx.Config, batches int) (loss float64, perBatch time.Duration, err error) {
	c, err := corpus.Default()
	if err != nil {
		return 0, 0, err
	}
	m, err := gomlx.New(cfg)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	eval, err := c.EvalBatches(m.Config().Context, m.Config().BatchSize, batches)
	if err != nil {
		return 0, 0, err
	}
	if loss, err = m.Evaluate(ctx, eval); err != nil { // compiles the graph
		return 0, 0, err
	}
	start := time.Now()
	if _, err := m.Evaluate(ctx, eval); err != nil {
		return 0, 0, err
	}
	return loss, time.Since(start) / time.Duration(len(eval)), nil
}

// firstReadyWait is the least a round's leader waits for the others'
// "ready" after the first. It matters in round 0, where a leader still
// training has no training time of its own to scale the wait by, and the
// cheater (which trains half the inner steps) is ready H/2 steps early:
// four times that head start, a training step counted as three
// evaluation batches (forward and backward) with the workers sharing the
// CPUs; the margin covers the workers' uneven start (compiling the
// training graph), which twice the head start did not at load 15-30.
// Clamped to [2 s, 1 min]: an idle machine keeps the protocol's default.
func firstReadyWait(perBatch time.Duration, innerSteps, workers int) time.Duration {
	headStart := time.Duration(innerSteps/2*3*workers) * perBatch
	return min(max(4*headStart, 2*time.Second), time.Minute)
}
