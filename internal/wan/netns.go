package wan

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/netns"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/train"
)

// This file runs a configuration with every worker a separate process in
// its own network namespace (package netns), talking real libp2p over TCP
// across a bridge. The kernel's tbf shapes each worker's bandwidth on its
// veth pair; latency, jitter and loss, which the kernel here cannot add
// (no netem), stay in user space: each process wraps its transport in a
// ShapedTransport that knows every worker's latency, jitter and loss
// but no bandwidth.
//
// The parent (Run with Options.Netns) builds the network, starts the
// children and sends each its spec as JSON on stdin; each child (RunNode)
// connects to its peers, reports "ready" on file descriptor 3 and waits
// for "go", so all start training together; then it reports each round and
// its end on fd 3. A child whose stdin closes stops: the parent's death
// ends every child.

// Processes runs each worker as a process of this program in a namespace.
type Processes struct {
	// Command starts one node: a program that reads its spec on stdin and
	// calls RunNode (a hidden subcommand, or a test binary with an env
	// variable). Env is added to this process's environment.
	Command []string
	Env     []string
	// StartTimeout bounds the time from starting the processes to every
	// node connected and ready (default 60s).
	StartTimeout time.Duration
	// OnStart, if set, is called once every node is connected and ready,
	// just before they start training, from Run's goroutine; tests use it
	// to inspect the links or cut one (Network.Reshape) under a running job.
	OnStart func(n *netns.Network)
	// Stderr, if set, receives the children's logs as they come.
	Stderr io.Writer
}

// nodePort is every node's libp2p port: each has its own namespace, so
// they never clash.
const nodePort = 4201

// exitGrace is how long a node that reported its result may take to exit.
const exitGrace = 10 * time.Second

// eventsFD is the child's descriptor for its reports; stdout and stderr
// stay free for logs and anything a library prints.
const eventsFD = 3

type nodeSpec struct {
	Job          string
	Index        int
	Key          ed25519.PrivateKey
	IDs          []gridmind.NodeID
	Addrs        []string // full multiaddrs, by worker
	Links        []Link   // the user-space part of each worker's link
	Initial      []byte   // the encoded round-0 state
	InnerSteps   int
	Rounds       int
	Codec        string
	Outer        train.Nesterov
	Timing       train.Timing
	SendTimeout  time.Duration
	StallTimeout time.Duration
	Linger       time.Duration
	Evaluate     bool
	Overlap      bool
	MaxSteps     int           // diloco's MaxInnerSteps
	DeviceStep   time.Duration // the device's pace (device.go); 0: unpaced
	Seed         int64
	// Mode is "" for a job, or a throughput run's (throughput.go):
	// modeAllReduce exchanges a Params-long vector with no training,
	// modeStreams sends PartBytes-long parts in the all-reduce's pattern.
	Mode      string
	Params    int
	PartBytes int
}

type nodeEvent struct {
	Event     string // ready, round, done
	Round     uint64
	Train     time.Duration
	RoundTime time.Duration
	Bytes     int64
	Excluded  int
	Early     int      // Summary.EarlyStarts
	Steps     int      // inner steps run in the round
	Late      int64    // done: steps computed slower than the device's pace
	Paced     int64    // done: steps paced
	EvalLoss  *float64 // nil when not evaluated
	StateHash train.Hash
	AllReduce time.Duration
	Error     string
}

// nodeLinks splits each worker's link of c into the part user space
// emulates and the kernel's shape, and describes worker i for errors.
func nodeLinks(c Config, ids []gridmind.NodeID) ([]Link, []netns.Shape, func(int) string) {
	links := make([]Link, len(ids))
	shapes := make([]netns.Shape, len(ids))
	for i := range links {
		l := c.Links[i%len(c.Links)]
		links[i], shapes[i] = userLink(l), netns.Shape{UpBits: l.UpBits, DownBits: l.DownBits}
	}
	describe := func(i int) string {
		return fmt.Sprintf("worker %d (%s, link %s)", i, ids[i].Short(), c.Links[i%len(c.Links)])
	}
	return links, shapes, describe
}

// userLink is the part of l the kernel cannot shape here.
func userLink(l Link) Link { l.UpBits, l.DownBits = 0, 0; return l }

func runNetns(ctx context.Context, o Options, c Config) (Row, int, error) {
	k := o.Workers
	keys, ids := workerKeys(o.Seed, k)
	t, err := o.NewTrainer()
	if err != nil {
		return Row{}, 0, err
	}
	initial, err := diloco.InitialState(t, ids)
	_ = t.Close()
	if err != nil {
		return Row{}, 0, err
	}
	initBytes, err := initial.MarshalBinary()
	if err != nil {
		return Row{}, 0, err
	}
	links, shapes, describe := nodeLinks(c, ids)
	stall := o.stallTimeout()
	cl, err := launch(ctx, o, shapes, ids, describe, func(i int, addrs []string) nodeSpec {
		return nodeSpec{
			Job: "wan", Index: i, Key: keys[i], IDs: ids, Addrs: addrs, Links: links, Initial: initBytes,
			InnerSteps: o.InnerSteps, Rounds: o.Rounds, Codec: o.Codec.String(), Outer: o.Outer, Timing: o.timing(),
			SendTimeout: o.sendTimeout(), StallTimeout: stall, Linger: linger(c, len(initBytes)), Evaluate: true, Overlap: o.Overlap, MaxSteps: o.MaxInnerSteps, DeviceStep: o.deviceStep(i), Seed: o.Seed,
		}
	})
	if err != nil {
		return Row{}, 0, err
	}
	defer cl.close()
	children, events, start := cl.children, cl.events, cl.start

	// Collect the reports. A child that reports nothing for longer than
	// its own stall bound allows, plus the longest round seen, is killed:
	// the protocol's StallTimeout should end it first, this makes sure.
	var (
		computing, total time.Duration
		bytes            int64
		steps            int
		pace             paceCount
		rounds           []time.Duration
		longest          time.Duration
		lastRound        time.Time
		row              = Row{Config: c.Name, Link: linkText(c.Links)}
		failures         []string
		losses           = map[int]float64{}
	)
	lastHeard := make([]time.Time, k)
	for i := range lastHeard {
		lastHeard[i] = start
	}
	done := make([]bool, k)
	reported := make([]bool, k)
	finals := map[int]train.Hash{} // the final state of each worker that finished
	var majorityAt time.Time       // when a majority had finished on one state
	var majorityState train.Hash
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for running := k; running > 0; {
		select {
		case e := <-events:
			i := e.worker
			lastHeard[i] = time.Now()
			switch {
			case e.exited:
				done[i] = true
				running--
				if !reported[i] && !children[i].killed {
					failures = append(failures, fmt.Sprintf("%s exited without a result: %v: %s", describe(i), e.err, children[i].tail()))
				}
			case e.Event == "round":
				computing += e.Train
				total += e.RoundTime
				steps += e.Steps
				bytes += e.Bytes
				longest = max(longest, e.RoundTime)
				rounds = append(rounds, e.RoundTime)
				lastRound = time.Now()
			case e.Event == "done":
				reported[i] = true
				row.Excluded += e.Excluded
				row.EarlyStarts += e.Early
				pace.late.Add(e.Late)
				pace.steps.Add(e.Paced)
				if e.EvalLoss != nil {
					losses[i] = *e.EvalLoss
				}
				if e.Error != "" {
					failures = append(failures, fmt.Sprintf("%s: %s", describe(i), e.Error))
				} else {
					finals[i] = e.StateHash
					if majorityAt.IsZero() && holding(finals, e.StateHash)*2 > k {
						majorityAt, majorityState = time.Now(), e.StateHash
					}
				}
			}
		case now := <-tick.C:
			silent := 2*stall + 2*o.sendTimeout() + longest
			for i, ch := range children {
				switch {
				case done[i] || ch.killed:
				case reported[i] && now.Sub(lastHeard[i]) > exitGrace:
					// Its result is in; only closing its host is slow.
					o.Logger.Warn("node slow to exit after its result: killed", "worker", i)
					ch.kill()
				case !reported[i] && !majorityAt.IsZero() && now.Sub(majorityAt) > o.behindGrace(longest):
					failures = append(failures, describe(i)+": "+leftBehind(now.Sub(majorityAt), majorityState))
					ch.kill()
				case now.Sub(lastHeard[i]) > silent:
					failures = append(failures, fmt.Sprintf("%s reported nothing for %s (its stall bound is %s): killed", describe(i), silent.Round(time.Second), stall))
					ch.kill()
				}
			}
		case <-ctx.Done():
			return Row{}, 0, ctx.Err()
		}
	}
	row.Wall = wall(start, lastRound)
	failures = append(failures, forks(finals, k, describe)...)
	row.FinalLoss = finalLoss(finals, losses, k)
	fillRow(&row, computing, total, bytes, rounds, k*o.Rounds, steps, &pace)
	if len(failures) > 0 {
		slices.Sort(failures)
		return row, 0, errors.New(strings.Join(failures, "; "))
	}
	return row, len(initial.Theta), nil
}

// cluster is the namespaces and node processes of one netns run.
type cluster struct {
	network  *netns.Network
	children []*child
	events   chan childEvent
	start    time.Time // when every node was told to go
	cancel   context.CancelFunc
	readers  sync.WaitGroup
	log      *slog.Logger
}

// launch builds a namespace per node shaped as shapes says, starts each
// node's process with the spec spec(i, addrs) makes, waits until every
// node is connected and ready, and tells them all to go. The caller
// reads cl.events and must call cl.close.
func launch(ctx context.Context, o Options, shapes []netns.Shape, ids []gridmind.NodeID, describe func(int) string, spec func(i int, addrs []string) nodeSpec) (cl *cluster, err error) {
	p := o.Netns
	if len(p.Command) == 0 {
		return nil, errors.New("netns: no command to start a node")
	}
	startTimeout := p.StartTimeout
	if startTimeout <= 0 {
		startTimeout = time.Minute
	}
	k := len(shapes)
	network, err := netns.New(ctx, shapes)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	cl = &cluster{network: network, children: make([]*child, k), events: make(chan childEvent, 16*k), cancel: cancel, log: o.Logger}
	defer func() {
		if err != nil {
			cl.close()
		}
	}()
	addrs := make([]string, k)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", network.Addr(i), nodePort, ids[i])
	}
	for i := range cl.children {
		ch, err := startChild(runCtx, network, i, p, spec(i, addrs), cl.events, &cl.readers)
		if ch != nil {
			cl.children[i] = ch // started: close must stop it
		}
		if err != nil {
			return cl, fmt.Errorf("%s: %w", describe(i), err)
		}
	}
	// Every node connects and joins the job's topic before anyone starts.
	ready := make([]bool, k)
	startBy := time.NewTimer(startTimeout)
	defer startBy.Stop()
	for waiting := k; waiting > 0; {
		select {
		case e := <-cl.events:
			switch {
			case e.exited:
				return cl, fmt.Errorf("%s exited before it was ready: %v: %s", describe(e.worker), e.err, cl.children[e.worker].tail())
			case e.Event == "ready" && !ready[e.worker]:
				ready[e.worker] = true
				waiting--
			}
		case <-startBy.C:
			var late []string
			for i, r := range ready {
				if !r {
					late = append(late, describe(i)+": "+cl.children[i].tail())
				}
			}
			return cl, fmt.Errorf("not connected to their peers after %s: %s", startTimeout, strings.Join(late, "; "))
		case <-ctx.Done():
			return cl, ctx.Err()
		}
	}
	if p.OnStart != nil {
		p.OnStart(network)
	}
	cl.start = time.Now()
	for i, ch := range cl.children {
		if err := json.NewEncoder(ch.stdin).Encode("go"); err != nil {
			return cl, fmt.Errorf("%s: %w", describe(i), err)
		}
	}
	return cl, nil
}

// close stops every node, waits for their processes and removes the
// namespaces.
func (cl *cluster) close() {
	cl.cancel()
	for _, ch := range cl.children {
		if ch != nil {
			_ = ch.stdin.Close()
			<-ch.exited
		}
	}
	cl.readers.Wait()
	if err := cl.network.Close(); err != nil {
		cl.log.Warn("namespaces not removed", "err", err)
	}
}

// child is one node's process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailWriter
	exited chan struct{}
	killed bool
}

type childEvent struct {
	nodeEvent
	worker int
	exited bool
	err    error
}

func startChild(ctx context.Context, network *netns.Network, i int, p *Processes, spec nodeSpec, events chan<- childEvent, readers *sync.WaitGroup) (*child, error) {
	cmd := network.Command(ctx, i, p.Command[0], p.Command[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	ch := &child{cmd: cmd, stderr: &tailWriter{limit: 4 << 10, also: p.Stderr}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = ch.stderr, ch.stderr
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{reportW} // fd 3 in the child
	if ch.stdin, err = cmd.StdinPipe(); err != nil {
		_ = reportR.Close()
		_ = reportW.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = reportR.Close()
		_ = reportW.Close()
		return nil, err
	}
	_ = reportW.Close() // the child holds its copy; EOF comes when it exits
	readers.Add(1)
	go func() { // owned by runNetns: it ends when the child exits, which ctx's end forces
		defer readers.Done()
		defer reportR.Close()
		deliver := func(e childEvent) {
			select {
			case events <- e:
			case <-ctx.Done(): // runNetns has stopped reading
			}
		}
		dec := json.NewDecoder(bufio.NewReader(reportR))
		for {
			var e nodeEvent
			if err := dec.Decode(&e); err != nil {
				break
			}
			deliver(childEvent{nodeEvent: e, worker: i})
		}
		err := cmd.Wait()
		close(ch.exited)
		deliver(childEvent{worker: i, exited: true, err: err})
	}()
	if err := json.NewEncoder(ch.stdin).Encode(spec); err != nil {
		return ch, err
	}
	return ch, nil
}

func (c *child) kill() {
	c.killed = true
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
}

func (c *child) tail() string {
	s := strings.TrimSpace(c.stderr.String())
	if s == "" {
		return "(no output)"
	}
	return "output ends: " + s
}

// tailWriter keeps the last limit bytes written, for error messages.
type tailWriter struct {
	mu    sync.Mutex
	buf   []byte
	limit int
	also  io.Writer
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.also != nil {
		_, _ = w.also.Write(b)
	}
	w.buf = append(w.buf, b...)
	if len(w.buf) > w.limit {
		w.buf = w.buf[len(w.buf)-w.limit:]
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// RunNode is one worker of a netns run, in its own process: it reads its
// spec on in, connects to its peers, reports on file descriptor 3, trains
// when told, and returns the worker's error. o supplies the trainer, the
// batches, the evaluation set and the logger, as for the in-process run.
func RunNode(ctx context.Context, o Options, in io.Reader) error {
	reports := os.NewFile(eventsFD, "reports")
	if _, err := reports.Stat(); err != nil {
		return fmt.Errorf("wan node: no report descriptor (fd 3): only bench wan --netns starts nodes: %w", err)
	}
	defer reports.Close()
	if o.Logger == nil {
		o.Logger = discardLogger()
	}
	var mu sync.Mutex
	enc := json.NewEncoder(reports)
	report := func(e nodeEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(e)
	}
	var once sync.Once
	var pace paceCount
	finish := func(summary *diloco.Summary, err error) {
		once.Do(func() {
			done := nodeEvent{Event: "done", Late: pace.late.Load(), Paced: pace.steps.Load()}
			if summary != nil {
				done.Excluded, done.Early, done.StateHash = summary.Excluded, summary.EarlyStarts, summary.StateHash
				if !math.IsNaN(summary.EvalLoss) {
					loss := summary.EvalLoss
					done.EvalLoss = &loss
				}
			}
			if err != nil {
				done.Error = err.Error()
			}
			report(done)
		})
	}
	err := runNode(ctx, o, json.NewDecoder(in), report, finish, &pace)
	finish(nil, err)
	return err
}

// runNode calls finish as soon as the worker's Run returns, before the
// host closes (closing connections to a blackholed peer may take a while).
func runNode(ctx context.Context, o Options, in *json.Decoder, report func(nodeEvent), finish func(*diloco.Summary, error), pace *paceCount) error {
	var spec nodeSpec
	if err := in.Decode(&spec); err != nil {
		return fmt.Errorf("wan node: reading the spec: %w", err)
	}
	k := len(spec.IDs)
	switch {
	case k == 0 || len(spec.Addrs) != k || len(spec.Links) != k:
		return fmt.Errorf("wan node: %d workers, %d addresses, %d links", k, len(spec.Addrs), len(spec.Links))
	case spec.Index < 0 || spec.Index >= k:
		return fmt.Errorf("wan node: index %d of %d workers", spec.Index, k)
	case len(spec.Key) != ed25519.PrivateKeySize:
		return errors.New("wan node: no key")
	}
	codec, err := train.ParseCodec(spec.Codec)
	if err != nil {
		return fmt.Errorf("wan node: %w", err)
	}
	switch spec.Mode {
	case "", modeAllReduce:
	case modeStreams:
		if spec.PartBytes < PatternHeader || spec.PartBytes > 1<<30 {
			return fmt.Errorf("wan node: parts of %d bytes: want %d..%d", spec.PartBytes, PatternHeader, 1<<30)
		}
	default:
		return fmt.Errorf("wan node: mode %q unknown", spec.Mode)
	}
	var trainer gridmind.Trainer
	var initial *train.GlobalState
	if spec.Mode == "" {
		if trainer, err = o.NewTrainer(); err != nil {
			return err
		}
		defer trainer.Close()
		if initial, err = train.UnmarshalGlobalState(spec.Initial, trainer.NumParams()); err != nil {
			return fmt.Errorf("wan node: initial state: %w", err)
		}
		trainer = paced(trainer, spec.DeviceStep, pace)
	}
	self := spec.Index
	listen := strings.Split(spec.Addrs[self], "/p2p/")[0]
	host, err := p2p.New(ctx, p2p.Config{Key: spec.Key, ListenAddrs: []string{listen}, Logger: o.Logger})
	if err != nil {
		return err
	}
	defer host.Close()
	// Each pair dials once: the later worker dials the earlier, retrying
	// while the earlier one may not be listening yet.
	for j := range self {
		if err := connect(ctx, host, spec.Addrs[j]); err != nil {
			return fmt.Errorf("wan node: worker %d (%s) cannot reach worker %d (%s): %w", self, spec.IDs[self].Short(), j, spec.IDs[j].Short(), err)
		}
	}
	transport, err := diloco.NewP2PTransport(host, spec.Job, o.Logger)
	if err != nil {
		return err
	}
	defer transport.Close()
	if err := waitFor(ctx, func() bool { return len(transport.Topic().Peers()) >= k-1 }); err != nil {
		return fmt.Errorf("wan node: worker %d saw %d of %d peers on the job's topic: %w", self, len(transport.Topic().Peers()), k-1, err)
	}
	shaped := NewShapedNetwork(spec.Seed*7919 + int64(self))
	for j, id := range spec.IDs {
		if j != self {
			shaped.SetLink(id, spec.Links[j])
		}
	}
	var streams diloco.Transport
	var counter *PatternCounter
	if spec.Mode == modeStreams {
		// Its handler must be in place before any peer sends.
		streams, counter = shaped.Wrap(transport, spec.Links[self]), NewPatternCounter()
		if err := streams.Serve(ctx, counter); err != nil {
			return err
		}
	}
	report(nodeEvent{Event: "ready"})
	var start string
	if err := in.Decode(&start); err != nil || start != "go" {
		return fmt.Errorf("wan node: waiting for the start: %q, %v", start, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends when stdin closes: the parent is done or gone
		var discard any
		for in.Decode(&discard) == nil {
		}
		cancel()
	}()

	switch spec.Mode {
	case modeStreams:
		err := runStreams(ctx, spec, streams, counter, report)
		finish(nil, err)
		return err
	case modeAllReduce:
		w, err := allReduceWorker(spec, codec, shaped.Wrap(transport, spec.Links[self]), report)
		if err != nil {
			return err
		}
		summary, err := w.Run(ctx)
		finish(&summary, err)
		return err
	}
	cfg := diloco.Config{
		Job: spec.Job, Key: spec.Key, Trainer: trainer, Workers: spec.IDs, Initial: initial,
		Batches:    func(round uint64) gridmind.BatchSource { return o.Batches(k, self, round) },
		InnerSteps: spec.InnerSteps, MaxInnerSteps: spec.MaxSteps, Rounds: uint64(spec.Rounds), Overlap: spec.Overlap,
		Transport:   shaped.Wrap(transport, spec.Links[self]),
		Protocol:    train.Config{Codec: codec, Outer: spec.Outer, Combiner: train.CenteredClip{}, Screen: train.DefaultScreen(), Timing: spec.Timing},
		SendTimeout: spec.SendTimeout, StallTimeout: spec.StallTimeout, Linger: spec.Linger,
		Logger: o.Logger,
		Progress: func(p diloco.Progress) {
			report(nodeEvent{Event: "round", Round: p.Round, Train: p.TrainTime, RoundTime: p.RoundTime, Bytes: p.RoundBytes, Steps: p.Steps})
		},
	}
	if spec.Evaluate {
		cfg.EvalBatches = o.EvalBatches
	}
	w, err := diloco.NewWorker(cfg)
	if err != nil {
		return err
	}
	summary, err := w.Run(ctx)
	finish(&summary, err)
	return err
}

func connect(ctx context.Context, h *p2p.Host, addr string) error {
	var last error
	err := waitFor(ctx, func() bool {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		last = h.Connect(dctx, addr)
		return last == nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// waitFor polls cond until it holds or a minute passes (or ctx ends).
func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
