package ledgerbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/internal/sysproc"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

const chainID = "gridmind-ledgerbench"

// chainNet is the running chain: validator processes, or validators in
// this process.
type chainNet struct {
	mode  string
	rpcs  []string
	homes []string
	procs []*validatorProc
	nodes []*chain.Node
}

type validatorProc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// startChain makes node homes under dir the way `gridmind chain init
// --dir` does (a node key that is also the validator key, config.yaml
// with chain.validator), a genesis funding accounts with the ledger's
// default parameters and the default node settings, and starts the
// validators; it returns once each has committed a block.
func startChain(ctx context.Context, dir string, opts Options, accounts []ledger.GenesisAccount) (_ *chainNet, err error) {
	const op = "ledgerbench.chain"
	n := &chainNet{mode: "in this process"}
	if opts.Exe != "" {
		n.mode = "separate processes"
	}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	ports, err := netutil.FreePorts(2 * opts.Validators)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	for i := range opts.Validators {
		n.rpcs = append(n.rpcs, fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]))
	}
	var specs []chain.ValidatorSpec
	for i := range opts.Validators {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg := node.DefaultConfig()
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.LoopbackOnly = true
		cfg.HTTP = ""
		cfg.Region = "bench"
		cfg.Provider.Enabled = false
		cfg.Chain = node.ChainConfig{Validator: true, RPC: n.rpcs}
		if _, err := node.Init(home, false, &cfg); err != nil {
			return nil, err
		}
		key, err := node.LoadKey(home)
		if err != nil {
			return nil, err
		}
		n.homes = append(n.homes, home)
		specs = append(specs, chain.ValidatorSpec{Name: fmt.Sprintf("node%d", i), Key: key, Home: filepath.Join(home, "chain"),
			P2PPort: ports[2*i], RPCPort: ports[2*i+1]})
	}
	if _, err := chain.InitGenesis(chain.GenesisOptions{ChainID: chainID, Dir: dir, Validators: specs, Accounts: accounts}); err != nil {
		return nil, err
	}
	exited := make(chan int, opts.Validators)
	for i, home := range n.homes {
		if opts.Exe == "" {
			v, err := chain.StartNode(ctx, chain.NodeConfig{Home: filepath.Join(home, "chain"), Logger: opts.Logger.With("validator", i), Ledger: app.LedgerOptions()})
			if err != nil {
				return nil, err
			}
			n.nodes = append(n.nodes, v)
			continue
		}
		p, err := startProc(opts.Exe, home)
		if err != nil {
			return nil, gridmind.E(gridmind.KindUnavailable, op, "starting validator %d: %w", i, err)
		}
		n.procs = append(n.procs, p)
		go func() {
			<-p.done
			exited <- i
		}()
	}
	// Every validator must be committing before the load starts.
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i, addr := range n.rpcs {
		c, err := chain.NewClient([]string{addr}, chain.ClientOptions{Logger: opts.Logger, PollInterval: 100 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		ready := make(chan error, 1)
		go func() {
			_, err := c.WaitHeight(wait, 2)
			ready <- err
		}()
		select {
		case err := <-ready:
			if err != nil {
				return nil, gridmind.E(gridmind.KindUnavailable, op, "validator %d (%s) did not commit a block: %w%s", i, addr, err, n.logHint(i))
			}
		case j := <-exited:
			cancel()
			<-ready
			return nil, gridmind.E(gridmind.KindUnavailable, op, "validator %d exited while starting%s", j, n.logHint(j))
		}
	}
	return n, nil
}

// startProc runs `exe node --home home`, its output in home/node.log. The
// child gets SIGTERM if this process dies first.
func startProc(exe, home string) (*validatorProc, error) {
	f, err := os.OpenFile(filepath.Join(home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c := exec.Command(exe, "node", "--home", home)
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = sysproc.ChildAttr()
	if err := c.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &validatorProc{cmd: c, log: f, done: make(chan struct{})}
	go func() {
		_ = c.Wait()
		close(p.done)
	}()
	return p, nil
}

func (n *chainNet) logHint(i int) string {
	if i >= len(n.procs) {
		return ""
	}
	return "; see " + filepath.Join(n.homes[i], "node.log")
}

// cpu is the CPU time the validator processes have used (0 in process).
func (n *chainNet) cpu() time.Duration {
	var total time.Duration
	for _, p := range n.procs {
		total += procCPU(p.cmd.Process.Pid)
	}
	return total
}

// stop ends the validators: SIGTERM, then SIGKILL after ten seconds.
func (n *chainNet) stop() {
	for _, v := range n.nodes {
		_ = v.Stop()
	}
	for _, p := range n.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	grace := time.NewTimer(10 * time.Second)
	defer grace.Stop()
	for _, p := range n.procs {
		select {
		case <-p.done:
		case <-grace.C:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.log.Close()
	}
	n.procs, n.nodes = nil, nil
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

// procCPU is the user+system time of process pid (Linux; 0 elsewhere).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields 14 and 15
	// (utime, stime) count from after its closing parenthesis.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0
	}
	return time.Duration(u+st) * time.Second / clockTicks
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
