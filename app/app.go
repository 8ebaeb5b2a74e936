package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/node"
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
}

// App is a running node process.
type App struct {
	Node    *node.Node
	API     *api.Server
	APIAddr string

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
	n, err := node.New(ctx, node.Options{Key: o.Key, Config: o.Config, Logger: o.Logger, ThroughputGFLOPS: o.ThroughputGFLOPS, Energy: em})
	if err != nil {
		return nil, err
	}
	a := &App{Node: n, done: make(chan error, 1)}
	if o.Config.HTTP != "" {
		a.API = api.New(n)
		addr, err := a.API.Start(o.Config.HTTP)
		if err != nil {
			n.Close()
			return nil, err
		}
		a.APIAddr = addr
	}
	runCtx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	go func() { a.done <- n.Run(runCtx) }()
	return a, nil
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
		errs = append(errs, a.Node.Close())
	})
	return errors.Join(errs...)
}
