package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/libs/service"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// NodeConfig starts a validator from a home directory made by InitGenesis.
type NodeConfig struct {
	Home   string
	Logger *slog.Logger
	// Optional overrides of the home's settings (zero keeps them).
	TimeoutCommit time.Duration
	// Ledger are the deterministic ledger hooks; every validator must use
	// the same ones.
	Ledger ledger.Options
	// InvariantEvery: see AppConfig (0: DefaultInvariantEvery).
	InvariantEvery int64
	// Verify: see AppConfig (nil: FastVerify).
	Verify ledger.VerifyFunc
}

// Node is a CometBFT validator running the ledger in-process.
type Node struct {
	cfg      NodeConfig
	settings NodeSettings
	cmt      *node.Node
	app      *App
	log      *slog.Logger
	client   *Client

	stopOnce sync.Once
	stopErr  error
	done     chan struct{}
}

// StartNode starts the validator in cfg.Home and returns once it is
// running (it keeps running until Stop or until ctx ends). Its RPC and p2p
// addresses come from the home's settings.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	const op = "chain.start-node"
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s, err := LoadNodeSettings(cfg.Home)
	if err != nil {
		return nil, err
	}
	if cfg.TimeoutCommit > 0 {
		s.TimeoutCommit = Duration(cfg.TimeoutCommit)
	}
	c := cometConfig(cfg.Home, s)
	if err := checkKeyFiles(c); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	nodeKey, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "node key: %w", err)
	}
	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	log := cfg.Logger.With("validator", s.Moniker)
	if cfg.Verify == nil {
		cfg.Verify = FastVerify
	}
	app, err := NewApp(AppConfig{
		DBPath: filepath.Join(cfg.Home, "data", "gridmind-ledger.db"), Logger: log,
		Ledger: cfg.Ledger, InvariantEvery: cfg.InvariantEvery, Verify: cfg.Verify,
	})
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, op, "%w", err)
	}
	// One lock per ABCI connection and none for CheckTx: the App does its
	// own locking (see clientCreator).
	cmtNode, err := node.NewNode(c, pv, nodeKey, clientCreator{app: app},
		node.DefaultGenesisDocProviderFunc(c), dbProvider,
		node.DefaultMetricsProvider(c.Instrumentation), newCometLogger(log))
	if err != nil {
		app.Close()
		return nil, gridmind.E(gridmind.KindInternal, op, "%w", err)
	}
	if err := cmtNode.Start(); err != nil {
		app.Close()
		return nil, gridmind.E(gridmind.KindUnavailable, op, "start validator %s: %w", s.Moniker, err)
	}
	n := &Node{cfg: cfg, settings: s, cmt: cmtNode, app: app, log: log, done: make(chan struct{})}
	n.client = newClient([]*backend{{addr: "local:" + s.Moniker, rpc: newLocalRPC(cmtNode)}}, ClientOptions{Logger: log})
	go func() {
		select {
		case <-ctx.Done():
			n.Stop()
		case <-n.done:
		}
	}()
	log.Info("validator started", "rpc", n.RPCAddr(), "p2p", s.P2PListen, "height", app.height)
	return n, nil
}

// cometConfig turns gridmind's settings into CometBFT's configuration.
func cometConfig(home string, s NodeSettings) *cmtcfg.Config {
	c := cmtcfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = s.Moniker
	c.P2P.ListenAddress = "tcp://" + s.P2PListen
	c.P2P.PersistentPeers = strings.Join(s.PersistentPeers, ",")
	c.P2P.PexReactor = s.Pex
	// Several validators may share one host (devnet, tests).
	c.P2P.AddrBookStrict = false
	c.P2P.AllowDuplicateIP = true
	c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	c.RPC.ListenAddress = "tcp://" + s.RPCListen
	c.Consensus.TimeoutCommit = time.Duration(s.TimeoutCommit)
	if s.TimeoutPropose > 0 {
		c.Consensus.TimeoutPropose = time.Duration(s.TimeoutPropose)
	}
	c.Consensus.CreateEmptyBlocks = s.CreateEmptyBlocks
	c.Consensus.CreateEmptyBlocksInterval = time.Duration(s.CreateEmptyBlocksInterval)
	c.Consensus.PeerGossipSleepDuration = 20 * time.Millisecond
	// Results are indexed by the application itself (query /tx).
	c.TxIndex.Indexer = "null"
	if s.MempoolSize > 0 {
		c.Mempool.Size = s.MempoolSize
		c.Mempool.CacheSize = 2 * s.MempoolSize
	}
	c.Instrumentation.Prometheus = false
	return c
}

// checkKeyFiles reads the validator key and state files first, because
// CometBFT's loader exits the process on a bad file.
func checkKeyFiles(c *cmtcfg.Config) error {
	var key privval.FilePVKey
	b, err := os.ReadFile(c.PrivValidatorKeyFile())
	if err == nil {
		err = cmtjson.Unmarshal(b, &key)
	}
	if err != nil {
		return fmt.Errorf("validator key: %w", err)
	}
	var state privval.FilePVLastSignState
	b, err = os.ReadFile(c.PrivValidatorStateFile())
	if err == nil {
		err = cmtjson.Unmarshal(b, &state)
	}
	if err != nil {
		return fmt.Errorf("validator sign state (keep it: it prevents double-signing): %w", err)
	}
	return nil
}

// Stop stops the validator and closes its database. It is safe to call
// more than once. Restarting a validator later in the same process works,
// but a peer may keep a connection the old instance accepted while
// shutting down until CometBFT's pong timeout (about 100 s) drops it; a
// validator that is stopped and restarted routinely should be a process of
// its own (the devnet, the tests).
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		defer close(n.done)
		if err := n.cmt.Stop(); err != nil && !errors.Is(err, service.ErrAlreadyStopped) {
			n.stopErr = err
		}
		n.cmt.Wait()
		if err := n.app.Close(); err != nil && n.stopErr == nil {
			n.stopErr = err
		}
		n.log.Info("validator stopped")
	})
	return n.stopErr
}

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Client returns an in-process client of this validator.
func (n *Node) Client() *Client { return n.client }

// App returns the node's ledger application.
func (n *Node) App() *App { return n.app }

// RPCAddr is the validator's CometBFT RPC address (http://host:port).
func (n *Node) RPCAddr() string { return "http://" + n.settings.RPCListen }

// Settings returns the settings the node runs with.
func (n *Node) Settings() NodeSettings { return n.settings }

// Halted returns why the ledger stopped (broken invariant), or nil.
func (n *Node) Halted() error { return n.app.Halted() }
