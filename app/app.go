package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/serve"
	"github.com/gridmind/gridmind/train"
)

// Options start one node.
type Options struct {
	Home   string // where its key, config and data live ("" for in-memory use with Key+Config)
	Key    ed25519.PrivateKey
	Config node.Config
	Logger *slog.Logger
	// ThroughputGFLOPS overrides the built-in benchmark (tests, demo).
	ThroughputGFLOPS float64
	// EnergyClock, if set, is the time the energy model reads its traces at.
	EnergyClock func() time.Time
	// NoPowerMeter uses the configured watts instead of RAPL/NVML readings
	// (many nodes in one process share one CPU's meter).
	NoPowerMeter bool
	// TrainTiming overrides the DiLoCo round deadlines (zero: defaults).
	TrainTiming train.Timing
	// OnModel is told about each job's final model on the workers that
	// trained it, after the model was added to the node's model store.
	OnModel func(job ledger.JobID, hash string)
	// Seed seeds the inference router's tie-breaking.
	Seed int64
	// API configures the HTTP server's doors (timeouts, body bound, extra
	// host names). Its Token, if empty, is read from <home>/api.token
	// (created if missing) or, for a node without a home, made up at
	// random; App.APIToken says which.
	API api.Options
}

// App is a running node process.
type App struct {
	Node    *node.Node
	API     *api.Server
	APIAddr string
	// APIToken is the bearer token spending and state-changing API routes need.
	APIToken string

	// Ledger access: an embedded validator and/or a client of validators.
	Validator *chain.Node
	Chain     *chain.Client
	Wallet    *chain.Wallet

	// Market roles.
	Provider  *jobs.Provider
	Requester *jobs.Requester

	// Edge inference: models served here, the model store, the
	// forwarding client and the receipts awaiting payment.
	Local   *serve.Local
	Models  *ModelStore
	Infer   *serve.Client
	Batcher *serve.Batcher

	registered chan struct{}

	paidMu sync.Mutex
	paid   map[string]bool // inference receipts already paid (server/request)

	spend *spendLimiter // caps inference bought from other nodes

	inferAudit inferAudits // inference audits (inferaudit.go)

	dash dashboardCache // the dashboard's ledger view at the last height

	ctx    context.Context // the app's lifetime
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Load reads a home's key and config into Options.
func Load(home string, log *slog.Logger) (Options, error) {
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return Options{}, err
	}
	key, err := node.LoadKey(home)
	if err != nil {
		return Options{}, err
	}
	return Options{Home: home, Key: key, Config: cfg, Logger: log}, nil
}

// Start brings a node up and runs it in the background until Close or ctx ends.
func Start(ctx context.Context, o Options) (*App, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	em, err := node.NewEnergyMonitor(o.Config.Energy.Profile(), !o.NoPowerMeter, o.EnergyClock)
	if err != nil {
		return nil, err
	}
	a := &App{done: make(chan error, 1), registered: make(chan struct{})}
	serving := func() []gridmind.ServedModel {
		if a.Local == nil {
			return nil
		}
		return a.Local.Served()
	}
	rpc := func() string { // set before the node runs, by startChain
		if a.Validator == nil {
			return ""
		}
		return a.Validator.RPCAddr()
	}
	n, err := node.New(ctx, node.Options{Key: o.Key, Config: o.Config, Logger: o.Logger, ThroughputGFLOPS: o.ThroughputGFLOPS, Energy: em, Serving: serving, RPC: rpc})
	if err != nil {
		return nil, err
	}
	a.Node = n
	runCtx, cancel := context.WithCancel(ctx)
	a.ctx, a.cancel = runCtx, cancel
	if err := a.startChain(runCtx, o); err != nil {
		cancel()
		n.Close()
		return nil, err
	}
	if a.Chain == nil {
		msg := "no ledger configured: this node cannot pay, be paid, post or take jobs; join a network's ledger with `gridmind node --rpc http://HOST:PORT` (or chain.rpc in config.yaml, or `gridmind init --join ADDR --rpc URL`)"
		o.Logger.Warn("WARNING: " + msg)
		n.Warn(msg)
	}
	if err := a.startServing(runCtx, o); err != nil {
		a.Close()
		return nil, err
	}
	if a.Chain != nil {
		if err := a.startJobs(runCtx, o); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.spend = newSpendLimiter(o.Config.Inference.WithDefaults(), time.Now)
	if o.Config.HTTP != "" {
		if a.APIToken, err = apiToken(o); err != nil {
			a.Close()
			return nil, err
		}
		ao := o.API
		ao.Token = a.APIToken
		a.API = api.New(n, ao)
		a.addRoutes()
		addr, err := a.API.Start(o.Config.HTTP)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.APIAddr = addr
	}
	go func() { a.done <- n.Run(runCtx) }()
	if a.Chain != nil && a.Validator == nil {
		go a.checkLedger(runCtx, o)
	}
	if a.Chain != nil && o.Config.Provider.Enabled {
		go a.registerProvider(runCtx, o)
		if every := o.Config.Provider.AttestEvery.Std(); every > 0 {
			go a.attestUptime(runCtx, every, o.Config.Heartbeat.Std(), 10)
		}
	}
	return a, nil
}

// checkLedger warns, in the log and in status, when none of the configured
// validators answers within 10 s of start.
func (a *App) checkLedger(ctx context.Context, o Options) {
	err := waitLedger(ctx, 10*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		_, err := a.Chain.Status(ctx)
		return err
	})
	if err != nil && ctx.Err() == nil {
		msg := fmt.Sprintf("no ledger reachable at %s (%v): payments and jobs fail until a validator answers; check chain.rpc in config.yaml or pass --rpc http://HOST:PORT", strings.Join(o.Config.Chain.RPC, ", "), err)
		o.Logger.Warn("WARNING: " + msg)
		a.Node.Warn(msg)
	}
}

// waitLedger asks status every so often until it answers or window ends,
// and returns its last error (nil once it answered). A validator started
// beside the node (devnet up starts every process at once) refuses
// connections for its first second or two: one refused dial is no reason
// for a warning that status then shows for the node's whole life.
func waitLedger(ctx context.Context, window, every time.Duration, status func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := status(wctx)
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// apiToken is the configured token, else the home's (created on first
// start, so homes made before tokens existed get one), else a random one:
// a node without a home still never serves its spending routes openly.
func apiToken(o Options) (string, error) {
	if o.API.Token != "" {
		return o.API.Token, nil
	}
	if o.Home != "" {
		token, created, err := node.EnsureAPIToken(o.Home)
		if err != nil {
			return "", err
		}
		if created {
			o.Logger.Info("created the API token", "file", filepath.Join(o.Home, node.APITokenFile))
		}
		return token, nil
	}
	return node.NewAPIToken()
}

// Wait blocks until the node stops and returns why.
func (a *App) Wait() error { return <-a.done }

// Close stops everything the app started.
func (a *App) Close() error {
	var errs []error
	a.once.Do(func() {
		a.cancel()
		if a.API != nil {
			errs = append(errs, a.API.Close())
		}
		if a.Provider != nil {
			a.Provider.Wait()
		}
		errs = append(errs, a.Node.Close())
		if a.Validator != nil {
			errs = append(errs, a.Validator.Stop())
		}
	})
	return errors.Join(errs...)
}
