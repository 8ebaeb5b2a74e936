// Package localnet starts a complete gridmind network in one process:
// a CometBFT validator node, provider nodes with real energy profiles and
// a requester node, all libp2p hosts on 127.0.0.1. The demo, its
// end-to-end test and the job tests build on it.
package localnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/internal/netutil"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/train"
)

// Options shape a local network.
type Options struct {
	Providers int
	Seed      int64
	// Dir holds the chain and node homes; "" makes a temporary one that
	// Close removes.
	Dir    string
	Logger *slog.Logger
	// Profiles are the providers' energy setups; nil takes energy.Presets.
	Profiles []energy.Profile
	// Prices per provider in µGRID per work unit; nil spreads them.
	Prices []gridmind.Amount
	// EnergyClock is the time the energy model reads its traces at.
	EnergyClock    func() time.Time
	TrainTiming    train.Timing
	OnModel        func(job ledger.JobID, hash string)
	HTTP           bool // give every node an HTTP API on 127.0.0.1
	RequesterFunds gridmind.Amount
	ProviderFunds  gridmind.Amount
	ProviderStake  gridmind.Amount
	Heartbeat      time.Duration
	// SettleDelayBlocks, if positive, replaces the ledger's dispute window
	// (blocks between a round's receipt and its settlement): auditors must
	// re-run a round and file their proof inside it.
	SettleDelayBlocks int64
}

// Net is a running local network.
type Net struct {
	Dir       string
	ChainID   string
	Validator *app.App
	Requester *app.App
	Providers []*app.App
	Profiles  []energy.Profile
	Keys      []ed25519.PrivateKey // providers' keys, by index

	opts    Options
	tempDir bool
	rpc     string
}

// KeyFor is the deterministic key of a named role in a seeded network.
func KeyFor(seed int64, role string) ed25519.PrivateKey {
	return node.KeyFromSeedString(fmt.Sprintf("localnet/%d/%s", seed, role))
}

// Start brings the network up. On error everything started is stopped.
//
// The validator's ports are picked free and then bound by CometBFT; in
// between, another process (a parallel test package, an outgoing
// connection's source port) can take one. That start fails with "address
// in use" before anything is stored, so it is tried again on new ports.
func Start(ctx context.Context, o Options) (*Net, error) {
	const attempts = 4
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for i := 1; ; i++ {
		n, err := start(ctx, o)
		if err == nil || i == attempts || !addrInUse(err) || ctx.Err() != nil {
			return n, err
		}
		o.Logger.Warn("a validator port was taken before the validator bound it; trying new ports", "attempt", i, "err", err)
		if o.Dir != "" {
			// InitGenesis refuses a directory that holds a chain, so the
			// one there was made by this failed attempt.
			if err := os.RemoveAll(filepath.Join(o.Dir, "chain")); err != nil {
				return nil, err
			}
		}
	}
}

func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func start(ctx context.Context, o Options) (_ *Net, err error) {
	if o.Providers < 1 {
		return nil, gridmind.E(gridmind.KindInvalid, "localnet", "need at least one provider")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.RequesterFunds == 0 {
		o.RequesterFunds = 1000 * gridmind.UnitsPerGRID
	}
	if o.ProviderFunds == 0 {
		o.ProviderFunds = 100 * gridmind.UnitsPerGRID
	}
	if o.ProviderStake == 0 {
		o.ProviderStake = 10 * gridmind.UnitsPerGRID
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = time.Second
	}
	if o.Profiles == nil {
		o.Profiles = energy.Presets(o.Providers)
	}
	if len(o.Profiles) < o.Providers {
		return nil, gridmind.E(gridmind.KindInvalid, "localnet", "%d profiles for %d providers", len(o.Profiles), o.Providers)
	}
	n := &Net{Dir: o.Dir, opts: o, ChainID: fmt.Sprintf("gridmind-local-%d", o.Seed), Profiles: o.Profiles[:o.Providers]}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "gridmind-localnet-"); err != nil {
			return nil, err
		}
		n.tempDir = true
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	for i := 0; i < o.Providers; i++ {
		n.Keys = append(n.Keys, KeyFor(o.Seed, fmt.Sprintf("provider-%d", i)))
	}
	valKey := KeyFor(o.Seed, "validator")
	reqKey := KeyFor(o.Seed, "requester")
	ports, err := netutil.FreePorts(2)
	if err != nil {
		return nil, err
	}
	accounts := []ledger.GenesisAccount{{Address: idOf(reqKey), Balance: o.RequesterFunds}}
	for _, k := range n.Keys {
		accounts = append(accounts, ledger.GenesisAccount{Address: idOf(k), Balance: o.ProviderFunds})
	}
	settings := chain.DefaultNodeSettings()
	settings.TimeoutPropose = chain.Duration(time.Second)
	var params *ledger.Params
	if o.SettleDelayBlocks > 0 {
		p := ledger.DefaultParams()
		p.Slashers = []gridmind.NodeID{idOf(valKey)} // what InitGenesis does without params
		p.SettleDelayBlocks = o.SettleDelayBlocks
		p.MaxIdleBlocks = max(p.MaxIdleBlocks, 4*o.SettleDelayBlocks)
		params = &p
	}
	network, err := chain.InitGenesis(chain.GenesisOptions{
		ChainID:    n.ChainID,
		Dir:        filepath.Join(n.Dir, "chain"),
		Validators: []chain.ValidatorSpec{{Name: "validator", Key: valKey, P2PPort: ports[0], RPCPort: ports[1]}},
		Accounts:   accounts,
		Settings:   settings,
		Params:     params,
	})
	if err != nil {
		return nil, err
	}
	n.rpc = network.RPCAddrs()[0]

	// The validator node is also the network's bootstrap peer.
	valCfg := n.baseConfig(nil)
	valCfg.Chain = node.ChainConfig{Validator: true, Home: network.Homes()[0]}
	valCfg.Provider.Enabled = false
	if n.Validator, err = n.startApp(ctx, "validator", valKey, valCfg, energy.Profile{}); err != nil {
		return nil, fmt.Errorf("validator: %w", err)
	}
	boot := n.Validator.Node.Addrs()[:1]

	reqCfg := n.baseConfig(boot)
	reqCfg.Provider.Enabled = false
	if n.Requester, err = n.startApp(ctx, "requester", reqKey, reqCfg, energy.Profile{}); err != nil {
		return nil, fmt.Errorf("requester: %w", err)
	}
	for i := 0; i < o.Providers; i++ {
		if _, err := n.StartProvider(ctx, i); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *Net) baseConfig(bootstrap []string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.LoopbackOnly = true
	cfg.Bootstrap = bootstrap
	cfg.HTTP = ""
	if n.opts.HTTP {
		cfg.HTTP = "127.0.0.1:0"
	}
	cfg.Heartbeat = node.Duration(n.opts.Heartbeat)
	cfg.PeerTimeout = node.Duration(5 * n.opts.Heartbeat)
	cfg.Chain.RPC = []string{n.rpc}
	cfg.Region = "local"
	return cfg
}

// RPC is the validator's RPC address.
func (n *Net) RPC() string { return n.rpc }

// StartProvider starts (or restarts, with the same identity) provider i.
func (n *Net) StartProvider(ctx context.Context, i int) (*app.App, error) {
	prof := n.Profiles[i]
	cfg := n.baseConfig(n.Validator.Node.Addrs()[:1])
	cfg.Energy = node.EnergyConfigFrom(prof)
	if zone, ok := energy.ZoneByID(prof.Zone); ok && zone.Region != "" {
		cfg.Region = zone.Region
	}
	price := gridmind.Amount(20 + 7*(i%5))
	if i < len(n.opts.Prices) {
		price = n.opts.Prices[i]
	}
	cfg.Price = fmt.Sprintf("%du", price)
	cfg.Provider = node.ProviderConfig{Enabled: true, Stake: fmt.Sprintf("%du", n.opts.ProviderStake), AttestEvery: node.Duration(5 * n.opts.Heartbeat)}
	a, err := n.startApp(ctx, fmt.Sprintf("provider-%d", i), n.Keys[i], cfg, prof)
	if err != nil {
		return nil, fmt.Errorf("provider %d: %w", i, err)
	}
	for len(n.Providers) <= i {
		n.Providers = append(n.Providers, nil)
	}
	n.Providers[i] = a
	return a, nil
}

func (n *Net) startApp(ctx context.Context, name string, key ed25519.PrivateKey, cfg node.Config, _ energy.Profile) (*app.App, error) {
	home := filepath.Join(n.Dir, name)
	// The home holds what the node writes there (its API token with HTTP).
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	return app.Start(ctx, app.Options{
		Home:             home,
		Key:              key,
		Config:           cfg,
		Logger:           n.opts.Logger.With("node", name),
		ThroughputGFLOPS: node.MeasureThroughput(),
		EnergyClock:      n.opts.EnergyClock,
		NoPowerMeter:     true,
		TrainTiming:      n.opts.TrainTiming,
		OnModel:          n.opts.OnModel,
		Seed:             n.opts.Seed,
	})
}

// StopProvider stops provider i abruptly (its process "crashes": no
// goodbye, its host just goes away).
func (n *Net) StopProvider(i int) error {
	a := n.Providers[i]
	if a == nil {
		return nil
	}
	n.Providers[i] = nil
	return a.Close()
}

// All returns every running app: validator, requester, providers.
func (n *Net) All() []*app.App {
	out := []*app.App{n.Validator, n.Requester}
	for _, p := range n.Providers {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// WaitReady waits until every node sees every other and every provider's
// offer is on the ledger.
func (n *Net) WaitReady(ctx context.Context, progress func(have, want int)) error {
	all := n.All()
	want := len(all)*(len(all)-1) + len(n.Providers)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		have := 0
		for _, a := range all {
			have += min(a.Node.Peers().Len(), len(all)-1)
		}
		for _, p := range n.Providers {
			select {
			case <-p.Registered():
				have++
			default:
			}
		}
		if progress != nil {
			progress(have, want)
		}
		if have >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localnet: network not ready (%d of %d links and registrations): %w", have, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// Close stops every node and removes a temporary directory.
func (n *Net) Close() error {
	var errs []error
	for i := range n.Providers {
		errs = append(errs, n.StopProvider(i))
	}
	if n.Requester != nil {
		errs = append(errs, n.Requester.Close())
	}
	if n.Validator != nil {
		errs = append(errs, n.Validator.Close())
	}
	if n.tempDir {
		errs = append(errs, os.RemoveAll(n.Dir))
	}
	return errors.Join(errs...)
}

func idOf(k ed25519.PrivateKey) gridmind.NodeID {
	return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
}
