package chain

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/mempool"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/ledger"
)

// BenchOptions configure RunBench.
type BenchOptions struct {
	Validators int // 1 (default) or more, all in this process
	Transfers  int // transfers to commit under load (default 20,000)
	Accounts   int // sending accounts (default 500)
	Submitters int // goroutines submitting (default 4)
	// Window bounds the transfers submitted but not yet committed
	// (default 8,000 for one validator, 2,500 for more): the load keeps
	// the mempools busy without growing them without end, so the numbers
	// are a steady state, not a backlog.
	Window int
	// IdleSamples is how many single transfers are timed one at a time on
	// an idle chain after the load (default 20).
	IdleSamples   int
	TimeoutCommit time.Duration // default 100 ms
	Dir           string        // scratch directory (default: a temporary one, removed after)
	Logger        *slog.Logger
}

// BenchProgress is reported while RunBench runs.
type BenchProgress struct {
	Phase     string        `json:"phase"` // "starting", "signing", "load", "idle", "done"
	Submitted int           `json:"submitted"`
	Committed int           `json:"committed"`
	Total     int           `json:"total"`
	Elapsed   time.Duration `json:"elapsed"`
}

// BenchReport is what RunBench measured.
type BenchReport struct {
	Date       time.Time `json:"date"`
	Validators int       `json:"validators"`
	Mode       string    `json:"mode"` // how the validators ran
	GoVersion  string    `json:"go_version"`
	CPUs       int       `json:"cpus"`
	Transfers  int       `json:"transfers"`
	Accounts   int       `json:"accounts"`
	Committed  int       `json:"committed"`
	// Duration runs from the first submission to the last commit.
	Duration      time.Duration `json:"duration_ns"`
	TPS           float64       `json:"committed_per_second"`
	Blocks        int           `json:"blocks"`
	MaxBlockTxs   int           `json:"max_block_txs"`
	TimeoutCommit time.Duration `json:"timeout_commit_ns"`
	// Submit-to-commit latency under load (the submitting validator's
	// commit) and, for single transfers on an idle chain, one at a time.
	LatencyP50     time.Duration `json:"latency_p50_ns"`
	LatencyP95     time.Duration `json:"latency_p95_ns"`
	LatencyP99     time.Duration `json:"latency_p99_ns"`
	LatencyMax     time.Duration `json:"latency_max_ns"`
	IdleLatencyP50 time.Duration `json:"idle_latency_p50_ns"`
	IdleLatencyMax time.Duration `json:"idle_latency_max_ns"`
	// CPUPerTx is the process CPU time (all validators, the submitters,
	// everything) spent during the load per committed transfer; on a
	// shared machine it says more than the rate: 1/CPUPerTx is the rate
	// one free core would sustain if the work spread perfectly.
	CPUPerTx time.Duration `json:"cpu_per_tx_ns"`
	LoadAvg  string        `json:"loadavg,omitempty"` // /proc/loadavg at the end of the load
}

// String is a short human summary.
func (r *BenchReport) String() string {
	return fmt.Sprintf("%d validator(s) %s: %d transfers committed in %s = %.0f tx/s; %d blocks (max %d txs); latency under load p50 %s p95 %s p99 %s max %s; idle p50 %s max %s; CPU %s per tx; loadavg %s",
		r.Validators, r.Mode, r.Committed, r.Duration.Round(time.Millisecond), r.TPS, r.Blocks, r.MaxBlockTxs,
		r.LatencyP50.Round(time.Millisecond), r.LatencyP95.Round(time.Millisecond), r.LatencyP99.Round(time.Millisecond), r.LatencyMax.Round(time.Millisecond),
		r.IdleLatencyP50.Round(time.Millisecond), r.IdleLatencyMax.Round(time.Millisecond), r.CPUPerTx.Round(time.Microsecond), r.LoadAvg)
}

// RunBench starts a fresh chain of opts.Validators validators in this
// process, funds opts.Accounts accounts, pre-signs opts.Transfers
// transfers and submits them as fast as the first validator's mempool
// takes them. It measures committed transfers per second and
// submit-to-commit latency, then single-transfer latency on the idle
// chain. The chain is thrown away afterwards. progress may be nil.
func RunBench(ctx context.Context, opts BenchOptions, progress func(BenchProgress)) (*BenchReport, error) {
	const op = "chain.bench"
	if opts.Validators <= 0 {
		opts.Validators = 1
	}
	if opts.Transfers <= 0 {
		opts.Transfers = 20_000
	}
	if opts.Accounts <= 1 {
		opts.Accounts = 500
	}
	if opts.Submitters <= 0 {
		opts.Submitters = 4
	}
	if opts.Window <= 0 {
		// One validator keeps up with a deep queue; several on one
		// machine starve their consensus if the mempools run far ahead.
		opts.Window = 8_000
		if opts.Validators > 1 {
			opts.Window = 2_500
		}
	}
	if opts.IdleSamples <= 0 {
		opts.IdleSamples = 20
	}
	if opts.TimeoutCommit <= 0 {
		opts.TimeoutCommit = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if progress == nil {
		progress = func(BenchProgress) {}
	}
	began := time.Now()
	report := func(phase string, sub, com int) {
		progress(BenchProgress{Phase: phase, Submitted: sub, Committed: com, Total: opts.Transfers, Elapsed: time.Since(began)})
	}
	report("starting", 0, 0)

	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "gridmind-bench-")
		if err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "%w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	keys := make([]ed25519.PrivateKey, opts.Accounts+1) // the last one sends the idle samples
	accounts := make([]ledger.GenesisAccount, len(keys))
	for i := range keys {
		seed := sha256.Sum256(fmt.Appendf(nil, "gridmind-bench/%d", i))
		keys[i] = ed25519.NewKeyFromSeed(seed[:])
		accounts[i] = ledger.GenesisAccount{Address: gridmind.NodeIDFromPublicKey(keys[i].Public().(ed25519.PublicKey)), Balance: 1_000_000 * gridmind.UnitsPerGRID}
	}
	ports, err := netutil.FreePorts(2 * opts.Validators)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", err)
	}
	settings := DefaultNodeSettings()
	settings.TimeoutCommit = Duration(opts.TimeoutCommit)
	settings.MempoolSize = max(50_000, 2*opts.Transfers)
	gopts := GenesisOptions{ChainID: "gridmind-bench", Dir: dir, Accounts: accounts, Settings: settings}
	for i := 0; i < opts.Validators; i++ {
		gopts.Validators = append(gopts.Validators, ValidatorSpec{P2PPort: ports[2*i], RPCPort: ports[2*i+1]})
	}
	netw, err := InitGenesis(gopts)
	if err != nil {
		return nil, err
	}
	nodes := make([]*Node, 0, opts.Validators)
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	for _, v := range netw.Validators {
		n, err := StartNode(ctx, NodeConfig{Home: v.Home, Logger: opts.Logger})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	head := nodes[0]
	if _, err := head.Client().WaitHeight(ctx, 2); err != nil {
		return nil, err
	}

	// Pre-sign everything so the measurement is the chain, not the signer.
	report("signing", 0, 0)
	perAccount := (opts.Transfers + opts.Accounts - 1) / opts.Accounts
	type signed struct {
		raw  []byte
		hash ledger.Hash
	}
	txs := make([]signed, 0, opts.Transfers)
	index := make(map[ledger.Hash]int, opts.Transfers)
	for round := 0; round < perAccount && len(txs) < opts.Transfers; round++ {
		for a := 0; a < opts.Accounts && len(txs) < opts.Transfers; a++ {
			to := accounts[(a+1)%opts.Accounts].Address
			raw, err := ledger.NewTx(keys[a], netw.ChainID, uint64(round), &ledger.Transfer{To: to, Amount: 1})
			if err != nil {
				return nil, err
			}
			h := ledger.TxHash(raw)
			index[h] = len(txs)
			txs = append(txs, signed{raw: raw, hash: h})
		}
	}

	submitted := make([]int64, len(txs)) // unix nanos
	committed := make([]int64, len(txs))
	var nCommitted, nSubmitted atomic.Int64
	var blocksMu sync.Mutex
	var blockSizes []int
	allDone := make(chan struct{})
	window := make(chan struct{}, opts.Window)
	var idleMu sync.Mutex
	idleWait := map[ledger.Hash]chan int64{}
	hook := func(height int64, hashes []ledger.Hash) {
		now := time.Now().UnixNano()
		n := 0
		for _, h := range hashes {
			if i, ok := index[h]; ok {
				committed[i] = now
				n++
				<-window
			} else {
				idleMu.Lock()
				if ch := idleWait[h]; ch != nil {
					ch <- now
				}
				idleMu.Unlock()
			}
		}
		if n > 0 {
			blocksMu.Lock()
			blockSizes = append(blockSizes, n)
			blocksMu.Unlock()
			if nCommitted.Add(int64(n)) == int64(len(txs)) {
				close(allDone)
			}
		}
	}
	head.app.commitHook.Store(&hook)

	// Load: each submitter owns a slice of the accounts and sends their
	// transfers in nonce order (the mempool needs that order).
	report("load", 0, 0)
	cpuBefore := processCPU()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	errs := make(chan error, opts.Submitters)
	mp := head.cmt.Mempool()
	for s := 0; s < opts.Submitters; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			for i := s; i < len(txs); i++ {
				if (i%opts.Accounts)%opts.Submitters != s {
					continue
				}
				select {
				case window <- struct{}{}:
				case <-loadCtx.Done():
					return
				}
				if err := submitOne(loadCtx, mp, txs[i].raw, &submitted[i]); err != nil {
					errs <- err
					return
				}
				nSubmitted.Add(1)
			}
		}(s)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(time.Duration(len(txs))*time.Millisecond + 2*time.Minute)
	defer deadline.Stop()
wait:
	for {
		select {
		case <-allDone:
			break wait
		case err := <-errs:
			stopLoad()
			return nil, gridmind.E(gridmind.KindInternal, op, "submit: %w", err)
		case <-ctx.Done():
			return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", ctx.Err())
		case <-deadline.C:
			return nil, gridmind.E(gridmind.KindUnavailable, op, "only %d of %d transfers committed in time", nCommitted.Load(), len(txs))
		case <-tick.C:
			report("load", int(nSubmitted.Load()), int(nCommitted.Load()))
		}
	}
	wg.Wait()
	cpuUsed := processCPU() - cpuBefore
	report("load", len(txs), len(txs))

	r := &BenchReport{
		Date: time.Now().UTC(), Validators: opts.Validators, Mode: "in one process",
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Transfers: len(txs), Accounts: opts.Accounts,
		Committed: len(txs), TimeoutCommit: opts.TimeoutCommit,
		CPUPerTx: cpuUsed / time.Duration(len(txs)), LoadAvg: loadAvg(),
	}
	first, last := slices.Min(submitted), slices.Max(committed)
	r.Duration = time.Duration(last - first)
	r.TPS = float64(len(txs)) / r.Duration.Seconds()
	lat := make([]time.Duration, len(txs))
	for i := range txs {
		lat[i] = time.Duration(committed[i] - submitted[i])
	}
	slices.Sort(lat)
	r.LatencyP50, r.LatencyP95, r.LatencyP99, r.LatencyMax = percentile(lat, 50), percentile(lat, 95), percentile(lat, 99), lat[len(lat)-1]
	r.Blocks = len(blockSizes)
	r.MaxBlockTxs = slices.Max(blockSizes)

	// Idle: one transfer at a time, each waiting for its commit.
	report("idle", len(txs), len(txs))
	idleKey := keys[opts.Accounts]
	var idle []time.Duration
	for i := 0; i < opts.IdleSamples; i++ {
		raw, err := ledger.NewTx(idleKey, netw.ChainID, uint64(i), &ledger.Transfer{To: accounts[0].Address, Amount: 1})
		if err != nil {
			return nil, err
		}
		h := ledger.TxHash(raw)
		ch := make(chan int64, 1)
		idleMu.Lock()
		idleWait[h] = ch
		idleMu.Unlock()
		var at int64
		if err := submitOne(ctx, mp, raw, &at); err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "idle submit: %w", err)
		}
		select {
		case done := <-ch:
			idle = append(idle, time.Duration(done-at))
		case <-ctx.Done():
			return nil, gridmind.E(gridmind.KindUnavailable, op, "%w", ctx.Err())
		case <-time.After(30 * time.Second):
			return nil, gridmind.E(gridmind.KindUnavailable, op, "an idle transfer did not commit in 30 s")
		}
	}
	slices.Sort(idle)
	r.IdleLatencyP50, r.IdleLatencyMax = percentile(idle, 50), idle[len(idle)-1]
	report("done", len(txs), len(txs))
	return r, nil
}

// submitOne puts raw into the mempool the way an RPC broadcast_tx_sync
// does (without the HTTP), waiting for CheckTx's verdict; a full mempool is
// retried shortly after. It records the submission time in at.
func submitOne(ctx context.Context, mp mempool.Mempool, raw []byte, at *int64) error {
	backoff := time.NewTicker(5 * time.Millisecond)
	defer backoff.Stop()
	for {
		*at = time.Now().UnixNano()
		verdict := make(chan *abci.ResponseCheckTx, 1)
		err := mp.CheckTx(raw, func(r *abci.ResponseCheckTx) { verdict <- r }, mempool.TxInfo{})
		if err == nil {
			select {
			case r := <-verdict:
				if r.Code != 0 {
					return fmt.Errorf("transfer refused: %s: %s", ledger.Code(r.Code), r.Log)
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var full mempool.ErrMempoolIsFull
		if !errors.As(err, &full) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-backoff.C:
		}
	}
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted) - 1) * p / 100
	return sorted[i]
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg reads the machine's load averages (Linux), to say how shared the
// machine was while measuring.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
