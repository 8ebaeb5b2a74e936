package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/sysproc"
)

// memoryGoalMiB is issue 14's goal for an idle provider's resident set.
const memoryGoalMiB = 50

// memoryCuts says what this build does to keep an idle node small; the
// report prints it so that a figure in docs/BENCHMARKS.md names the code
// it was measured on.
var memoryCuts = []string{
	"the embedded training corpus (4.4 MB decoded, ~13 MB while decoding) is decoded on a provider's first job, not at start (corpus.Default)",
	"a node process runs the garbage collector at GOGC=50 unless GOGC is set, so an idle heap of ~3.7 MB live grows to ~6 MB between collections rather than ~8 MB (node.TuneRuntime)",
	"a node process records no heap profile samples unless GODEBUG sets memprofilerate: it serves no profiles (node.TuneRuntime)",
	"a started node unmaps the binary's read-only pages that start-up mapped; what it runs later maps back on use (node.ReleaseStartupPages; GRIDMIND_KEEP_STARTUP_PAGES=1 keeps them)",
}

type memoryBenchOptions struct {
	minutes    float64
	sample     time.Duration
	nodes      int
	validators int
	basePort   int
	httpPort   int
	chainPort  int
	dir        string
	env        []string
	compareEnv []string
}

// arms is how many devnets run: this build's, and a second one with
// --compare-env if given.
func (o memoryBenchOptions) arms() int {
	if len(o.compareEnv) > 0 {
		return 2
	}
	return 1
}

func (o memoryBenchOptions) check() error {
	const op = "bench.memory"
	switch {
	case !(o.minutes > 0 && o.minutes <= 24*60):
		return gridmind.E(gridmind.KindInvalid, op, "--minutes %g: want more than 0 and at most 1440", o.minutes)
	case o.sample < time.Second:
		return gridmind.E(gridmind.KindInvalid, op, "--sample %s: want at least 1s", o.sample)
	case o.validators < 1 || o.validators > maxDevnetValidators:
		return gridmind.E(gridmind.KindInvalid, op, "--validators %d: want 1..%d", o.validators, maxDevnetValidators)
	case o.nodes <= o.validators || o.nodes > 50:
		return gridmind.E(gridmind.KindInvalid, op, "--nodes %d: want %d..50 (the validators plus at least one provider)", o.nodes, o.validators+1)
	}
	for flag, list := range map[string][]string{"--env": o.env, "--compare-env": o.compareEnv} {
		for _, kv := range list {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return gridmind.E(gridmind.KindInvalid, op, "%s %q: want KEY=VALUE", flag, kv)
			}
		}
	}
	// The compared devnet takes the ports after this build's.
	return checkDevnetPorts(o.arms()*o.nodes, o.arms()*o.validators, o.basePort, o.httpPort, o.chainPort)
}

func newBenchMemoryCmd(g *globals) *cobra.Command {
	var o memoryBenchOptions
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Idle memory (RSS and Go heap) of provider and validator processes in a local devnet",
		Long: `Start a devnet (--nodes node processes on 127.0.0.1, the first --validators
of them running the ledger's validators, the others providers) in a
temporary folder, wait until the network has formed and the chain commits,
leave it idle for --minutes, then read each process's memory: VmRSS,
RssAnon and RssFile from /proc/PID/status, PSS from /proc/PID/smaps_rollup,
and the Go heap from its /metrics. The report gives every process and the
median provider against the goal of ` + strconv.Itoa(memoryGoalMiB) + ` MiB RSS.

RssFile is the part of the gridmind binary the kernel has mapped into the
process; those pages are shared by all the processes (PSS divides them).
--env KEY=VALUE (repeatable) adds to the nodes' environment.
--compare-env KEY=VALUE (repeatable) runs a second devnet at the same time
with that environment instead, on the ports after the first one's, and
reports the two side by side (e.g. --compare-env GOGC=100 for Go's default
garbage collector target). Linux only.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			return runMemoryBench(cmd, o)
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.minutes, "minutes", 10, "idle time before the measurement (minutes; 1 for a quick check)")
	f.DurationVar(&o.sample, "sample", time.Minute, "print the median provider's memory this often while idle")
	f.IntVar(&o.nodes, "nodes", 5, "node processes")
	f.IntVar(&o.validators, "validators", 1, "how many of the nodes run a ledger validator (the rest are providers)")
	f.IntVar(&o.basePort, "base-port", 29100, "libp2p port of node 0 (node i uses base+i)")
	f.IntVar(&o.httpPort, "http-port", 29200, "HTTP API port of node 0 (node i uses this+i)")
	f.IntVar(&o.chainPort, "chain-port", 29300, "CometBFT ports: validator i listens on this+2i and this+2i+1")
	f.StringVar(&o.dir, "dir", "", "devnet folder (default: a temporary folder, removed afterwards)")
	f.StringArrayVar(&o.env, "env", nil, "KEY=VALUE added to the nodes' environment (repeatable)")
	f.StringArrayVar(&o.compareEnv, "compare-env", nil, "KEY=VALUE of a second devnet run alongside for comparison (repeatable)")
	return cmd
}

// memoryArm is one devnet of the benchmark.
type memoryArm struct {
	name          string
	env           []string
	nodes         []*devnetNode
	network       *chain.Network
	before, after []processMemory
}

func runMemoryBench(cmd *cobra.Command, o memoryBenchOptions) error {
	const op = "bench.memory"
	ctx := cmd.Context()
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "gridmind-membench-")
		if err != nil {
			return gridmind.E(gridmind.KindInternal, op, "%w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	s := startBench(cmd, "Memory of idle nodes (gridmind bench memory)")
	arms := []*memoryArm{{name: "this build", env: o.env}}
	if len(o.compareEnv) > 0 {
		arms = append(arms, &memoryArm{name: "with " + strings.Join(o.compareEnv, " "), env: append(slices.Clone(o.env), o.compareEnv...)})
	}
	funds, _ := gridmind.ParseAmount("1000000")
	for k, arm := range arms {
		armDir := filepath.Join(dir, fmt.Sprintf("devnet%d", k))
		var err error
		if arm.nodes, err = devnetLayout(armDir, o.nodes, o.basePort+k*o.nodes, o.httpPort+k*o.nodes); err != nil {
			return err
		}
		arm.network, _, err = devnetChain(armDir, arm.nodes, devnetChainOptions{
			ChainID: fmt.Sprintf("gridmind-membench-%d", k), Validators: o.validators, BasePort: o.chainPort + 2*k*o.validators, Funds: funds,
		})
		if err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return gridmind.E(gridmind.KindInternal, op, "%w", err)
	}
	exited := make(chan *devnetNode, o.arms()*o.nodes)
	for _, arm := range arms {
		defer stopDevnet(arm.nodes)
		for i, n := range arm.nodes {
			if err := startMemoryBenchNode(exe, n, arm.env, i, exited); err != nil {
				return err
			}
		}
		s.say(fmt.Sprintf("%s: started %d nodes (%d validator(s)) in %s", arm.name, o.nodes, o.validators, filepath.Dir(arm.nodes[0].Home)))
	}
	for _, arm := range arms {
		if err := waitDevnetFormed(ctx, arm.nodes, arm.network, 3*time.Minute, exited); err != nil {
			return err
		}
		arm.before = readMemory(ctx, arm.nodes)
	}
	idle := time.Duration(o.minutes * float64(time.Minute))
	s.say(fmt.Sprintf("networks formed, chains committing; idle for %s", idle))
	deadline := time.NewTimer(idle)
	defer deadline.Stop()
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-exited:
			return gridmind.E(gridmind.KindUnavailable, op, "a node exited while idle; see %s", filepath.Join(n.Home, "node.log"))
		case <-tick.C:
			for _, arm := range arms {
				p, v := summarizeMemory(arm.nodes, readMemory(ctx, arm.nodes))
				s.say(fmt.Sprintf("%s: median provider RSS %.1f MiB (Go heap in use %.1f MiB); validator RSS %.1f MiB", arm.name, mib(p.RSS), mib(p.HeapInuse), mib(v.RSS)))
			}
		case <-deadline.C:
			waiting = false
		}
	}
	for _, arm := range arms {
		arm.after = readMemory(ctx, arm.nodes)
	}
	writeMemoryReport(s.out, arms, idle)
	s.finish()
	return nil
}

func startMemoryBenchNode(exe string, n *devnetNode, env []string, i int, exited chan<- *devnetNode) error {
	f, err := os.OpenFile(filepath.Join(n.Home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return gridmind.E(gridmind.KindInternal, "bench.memory", "%w", err)
	}
	n.log = f
	// The node's default logging, so that it runs the code a user's does.
	c := exec.Command(exe, "node", "--home", n.Home)
	c.Stdout, c.Stderr = f, f
	c.Env = append(os.Environ(), env...)
	// The nodes die with the bench even if it is killed without cleaning up.
	c.SysProcAttr = sysproc.ChildAttr()
	if err := c.Start(); err != nil {
		return gridmind.E(gridmind.KindUnavailable, "bench.memory", "starting node %d: %w", i, err)
	}
	n.cmd = c
	n.done = make(chan struct{})
	go func() {
		_ = c.Wait()
		close(n.done)
		exited <- n
	}()
	return nil
}

// waitDevnetFormed waits until node 0 sees every other node, every API
// answers and the chain has committed a block.
func waitDevnetFormed(ctx context.Context, nodes []*devnetNode, network *chain.Network, limit time.Duration, exited <-chan *devnetNode) error {
	const op = "bench.memory"
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := chain.NewClient(network.RPCAddrs(), chain.ClientOptions{Logger: slog.New(slog.DiscardHandler), PollInterval: 250 * time.Millisecond})
	if err != nil {
		return err
	}
	if _, err := c.WaitHeight(ctx, 1); err != nil {
		return gridmind.E(gridmind.KindUnavailable, op, "the chain did not commit within %s: %w", limit, err)
	}
	for {
		formed := true
		for i, n := range nodes {
			peers, err := api.NewClient(n.HTTP).Peers(ctx)
			if err != nil || (i == 0 && len(peers) < len(nodes)-1) {
				formed = false
				break
			}
		}
		if formed {
			return nil
		}
		select {
		case <-ctx.Done():
			return gridmind.E(gridmind.KindUnavailable, op, "the network did not form within %s (see the node.log files)", limit)
		case n := <-exited:
			return gridmind.E(gridmind.KindUnavailable, op, "a node exited; see %s", filepath.Join(n.Home, "node.log"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// processMemory is one node process's memory, in bytes.
type processMemory struct {
	RSS, Anon, File, PSS float64 // from /proc
	HeapInuse, HeapAlloc float64 // Go heap spans in use; live and not yet swept objects
	GoSys                float64 // all memory the Go runtime holds from the OS
	Goroutines           float64
	CPUSeconds, GCs      float64 // counters since the process started
	MinorFaults          float64 // page faults served without I/O since the process started (/proc/PID/stat)
	Err                  error
}

func readMemory(ctx context.Context, nodes []*devnetNode) []processMemory {
	out := make([]processMemory, len(nodes))
	for i, n := range nodes {
		m := &out[i]
		if n.cmd == nil || n.cmd.Process == nil {
			m.Err = fmt.Errorf("not running")
			continue
		}
		pid := n.cmd.Process.Pid
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			m.Err = err
			continue
		}
		kib := procKiB(string(status))
		m.RSS, m.Anon, m.File = kib["VmRSS"]*1024, kib["RssAnon"]*1024, (kib["RssFile"]+kib["RssShmem"])*1024
		if rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
			m.PSS = procKiB(string(rollup))["Pss"] * 1024
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			m.MinorFaults = procMinorFaults(string(stat))
		}
		metrics, err := scrapeMetrics(ctx, n.HTTP)
		if err != nil {
			m.Err = err
			continue
		}
		m.HeapInuse, m.HeapAlloc, m.GoSys = metrics["go_memstats_heap_inuse_bytes"], metrics["go_memstats_heap_alloc_bytes"], metrics["go_memstats_sys_bytes"]
		m.Goroutines, m.CPUSeconds, m.GCs = metrics["go_goroutines"], metrics["process_cpu_seconds_total"], metrics["go_gc_duration_seconds_count"]
	}
	return out
}

// procMinorFaults is minflt, the 10th field of /proc/PID/stat (counted
// after the command name, which may hold spaces and parentheses).
func procMinorFaults(stat string) float64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:]) // from field 3, the state
	if len(f) < 8 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[7], 64)
	return v
}

// procKiB reads the "Key:   123 kB" lines of a /proc file.
func procKiB(text string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		key, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[key] = v
		}
	}
	return out
}

func scrapeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the unlabelled samples of a Prometheus text exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}

// summarizeMemory is the median provider (by RSS) and the median validator.
func summarizeMemory(nodes []*devnetNode, ms []processMemory) (provider, validator processMemory) {
	var ps, vs []processMemory
	for i, n := range nodes {
		if ms[i].Err != nil {
			continue
		}
		if n.Validator {
			vs = append(vs, ms[i])
		} else {
			ps = append(ps, ms[i])
		}
	}
	return medianMemory(ps), medianMemory(vs)
}

// medianMemory is the process with the median RSS (the lower middle one
// of an even count, so that every figure is one real process's).
func medianMemory(ms []processMemory) processMemory {
	if len(ms) == 0 {
		return processMemory{}
	}
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b processMemory) int { return cmp.Compare(a.RSS, b.RSS) })
	return sorted[(len(sorted)-1)/2]
}

func mib(bytes float64) float64 { return bytes / (1 << 20) }

func writeMemoryReport(w io.Writer, arms []*memoryArm, idle time.Duration) {
	fmt.Fprintf(w, "Memory of each node process after %s idle, in MiB. RSS = anon + file; file is the pages of the gridmind binary mapped into the process, shared by all the processes (PSS divides them among them). CPU s, GCs and minor faults (pages mapped again from the page cache, or first touched) count the idle time only.\n", idle)
	var providers []processMemory
	for _, arm := range arms {
		fmt.Fprintf(w, "\n%s (env: %s):\n\n", arm.name, orNone(arm.env))
		fmt.Fprintln(w, "| node | role | RSS | anon | file | PSS | Go heap in use | Go heap alloc | Go sys | goroutines | CPU s | GCs | minor faults |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for i, n := range arm.nodes {
			role := "provider"
			if n.Validator {
				role = "validator"
			}
			m := arm.after[i]
			if m.Err != nil {
				fmt.Fprintf(w, "| %d | %s | not read: %v |\n", i, role, m.Err)
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %.1f | %.0f | %.0f |\n", i, role,
				mib(m.RSS), mib(m.Anon), mib(m.File), mib(m.PSS), mib(m.HeapInuse), mib(m.HeapAlloc), mib(m.GoSys), m.Goroutines,
				m.CPUSeconds-arm.before[i].CPUSeconds, m.GCs-arm.before[i].GCs, m.MinorFaults-arm.before[i].MinorFaults)
		}
		p, v := summarizeMemory(arm.nodes, arm.after)
		providers = append(providers, p)
		fmt.Fprintf(w, "\nIdle provider (median of %d): RSS %.1f MiB (anon %.1f, file %.1f), Go heap in use %.1f MiB.\n", countRole(arm.nodes, false), mib(p.RSS), mib(p.Anon), mib(p.File), mib(p.HeapInuse))
		fmt.Fprintf(w, "Idle validator (median of %d): RSS %.1f MiB (anon %.1f, file %.1f), Go heap in use %.1f MiB.\n", countRole(arm.nodes, true), mib(v.RSS), mib(v.Anon), mib(v.File), mib(v.HeapInuse))
	}
	p := providers[0]
	verdict := "met"
	if mib(p.RSS) > memoryGoalMiB {
		verdict = fmt.Sprintf("missed by %.1f MiB", mib(p.RSS)-memoryGoalMiB)
	}
	fmt.Fprintf(w, "\nGoal ≤ %d MiB RSS for an idle provider (this build): %s.\n", memoryGoalMiB, verdict)
	if len(arms) > 1 && providers[1].RSS > 0 {
		q := providers[1]
		fmt.Fprintf(w, "This build / %s, median idle provider: RSS %.2f×, anon %.2f×, Go heap in use %.2f×.\n", arms[1].name, p.RSS/q.RSS, p.Anon/q.Anon, p.HeapInuse/q.HeapInuse)
	}
	fmt.Fprintln(w, "\nCuts in this build:")
	for _, c := range memoryCuts {
		fmt.Fprintf(w, "- %s\n", c)
	}
}

func orNone(env []string) string {
	if len(env) == 0 {
		return "as inherited"
	}
	return strings.Join(env, " ")
}

func countRole(nodes []*devnetNode, validator bool) int {
	n := 0
	for _, d := range nodes {
		if d.Validator == validator {
			n++
		}
	}
	return n
}
