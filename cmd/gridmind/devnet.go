package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/sysproc"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

func newDevnetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local network of node processes on 127.0.0.1",
	}
	var (
		nodes      int
		validators int
		dir        string
		basePort   int
		httpPort   int
		chainPort  int
		chainID    string
		funds      string
	)
	up := &cobra.Command{
		Use:   "up",
		Short: "Start N node processes with a ledger chain, each with its own home, bootstrapped to the first; Ctrl-C stops them all",
		Long: `Start N node processes on 127.0.0.1, each with its own home under --dir,
bootstrapped to node 0. The first --validators nodes run the ledger's
CometBFT validators in-process (their node keys are the validator keys);
every node's config lists the validators' RPC addresses, and every node's
account is funded at genesis.

Running it again on the same folder reuses the keys and the chain (its
validator count and chain id come from the folder); Ctrl-C stops every node.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				dir = filepath.Join(g.home, "devnet")
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--dir %q: %v", dir, err)
			}
			dir = abs
			amount, err := gridmind.ParseAmount(funds)
			if err != nil {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--funds: %v", err)
			}
			// An existing chain decides the validator count unless the flag says otherwise.
			if existing, err := chain.LoadNetwork(dir); err == nil {
				if !cmd.Flags().Changed("validators") {
					validators = len(existing.Validators)
				}
				if !cmd.Flags().Changed("nodes") && nodes < validators {
					nodes = validators
				}
			}
			if nodes < 1 || nodes > 200 {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--nodes %d: want 1..200", nodes)
			}
			if validators < 1 || validators > min(nodes, maxDevnetValidators) {
				return gridmind.E(gridmind.KindInvalid, "devnet", "--validators %d: want 1..%d (at most --nodes, %d)", validators, maxDevnetValidators, nodes)
			}
			if err := checkDevnetPorts(nodes, validators, basePort, httpPort, chainPort); err != nil {
				return err
			}
			homes, err := devnetLayout(dir, nodes, basePort, httpPort)
			if err != nil {
				return err
			}
			network, created, err := devnetChain(dir, homes, devnetChainOptions{
				ChainID: chainID, ChainIDSet: cmd.Flags().Changed("chain-id"),
				Validators: validators, BasePort: chainPort, Funds: amount,
			})
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(cmd.OutOrStdout(), "created chain %s in %s (%d validator(s), %s per node)\n", network.ChainID, dir, len(network.Validators), amount)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "reusing chain %s in %s (%d validator(s))\n", network.ChainID, dir, len(network.Validators))
			}
			return runDevnet(cmd.Context(), cmd, homes, network)
		},
	}
	up.Flags().IntVar(&nodes, "nodes", 4, "number of node processes")
	up.Flags().IntVar(&validators, "validators", 1, "how many of the nodes run a ledger validator (a reused folder keeps its chain's count)")
	up.Flags().StringVar(&dir, "dir", "", "devnet folder (default <home>/devnet)")
	up.Flags().IntVar(&basePort, "base-port", 27000, "libp2p port of node 0 (node i uses base+i, TCP and UDP)")
	up.Flags().IntVar(&httpPort, "http-port", 28000, "HTTP API port of node 0 (node i uses this+i)")
	up.Flags().IntVar(&chainPort, "chain-port", 26756, "CometBFT ports: validator i listens on this+2i (p2p) and this+2i+1 (RPC)")
	up.Flags().StringVar(&chainID, "chain-id", "gridmind-devnet", "chain id of a new chain")
	up.Flags().StringVar(&funds, "funds", "1000000", "GRID each node's account gets at genesis")
	cmd.AddCommand(up)
	return cmd
}

// maxDevnetValidators bounds a local chain: every validator of a CometBFT
// chain talks to every other, and one machine runs them all.
const maxDevnetValidators = 64

// checkDevnetPorts refuses port ranges outside 1024..65535 or overlapping
// each other (libp2p TCP+UDP, HTTP, CometBFT p2p+RPC).
func checkDevnetPorts(nodes, validators, basePort, httpPort, chainPort int) error {
	ranges := []struct {
		flag       string
		start, end int // [start, end)
	}{
		{"--base-port", basePort, basePort + nodes},
		{"--http-port", httpPort, httpPort + nodes},
		{"--chain-port", chainPort, chainPort + 2*validators},
	}
	for i, r := range ranges {
		if r.start < 1024 || r.end > 65536 {
			return gridmind.E(gridmind.KindInvalid, "devnet", "%s %d: ports %d..%d fall outside 1024..65535", r.flag, r.start, r.start, r.end-1)
		}
		for _, o := range ranges[:i] {
			if r.start < o.end && o.start < r.end {
				return gridmind.E(gridmind.KindInvalid, "devnet", "%s %d..%d overlaps %s %d..%d; move one of them", r.flag, r.start, r.end-1, o.flag, o.start, o.end-1)
			}
		}
	}
	return nil
}

type devnetNode struct {
	Home      string
	ID        gridmind.NodeID
	HTTP      string
	Validator bool // runs a ledger validator in its process
	cmd       *exec.Cmd
	log       *os.File
	done      chan struct{} // closed when the process has exited
}

// devnetLayout creates (or reuses) one home per node with loopback-only
// configs that bootstrap to node 0. Existing keys are kept, so node
// identities survive restarts of the devnet.
func devnetLayout(dir string, nodes, basePort, httpPort int) ([]*devnetNode, error) {
	var out []*devnetNode
	var bootstrap []string
	for i := 0; i < nodes; i++ {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cfg := node.DefaultConfig()
		cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", basePort+i), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", basePort+i)}
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", httpPort+i)
		cfg.LoopbackOnly = true
		cfg.Bootstrap = bootstrap
		cfg.Region = "devnet"
		res, err := node.Init(home, false, &cfg)
		if err != nil {
			return nil, err
		}
		if !res.ConfigCreated {
			// Keep the user's edits, but the ports must match the layout.
			if loaded, err := node.LoadConfig(home); err == nil {
				cfg = loaded
			}
		}
		if i == 0 {
			key, err := node.LoadKey(home)
			if err != nil {
				return nil, err
			}
			id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
			bootstrap = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", basePort, id)}
		}
		out = append(out, &devnetNode{Home: home, ID: res.ID, HTTP: cfg.HTTP})
	}
	return out, nil
}

type devnetChainOptions struct {
	ChainID    string
	ChainIDSet bool // the user asked for ChainID: an existing chain must have it
	Validators int
	BasePort   int             // CometBFT p2p port of validator 0 (RPC: +1)
	Funds      gridmind.Amount // every node's account at genesis
	Accounts   []ledger.GenesisAccount
	Params     *ledger.Params // ledger rules; nil: the defaults
}

// devnetChain gives a devnet folder its ledger chain, or reuses the one it
// has: the first o.Validators nodes validate with their node keys, every
// node account present at genesis is funded, and every node's config
// points at the validators (and, for a validator, runs it). It reports
// whether it made a new chain.
func devnetChain(dir string, nodes []*devnetNode, o devnetChainOptions) (*chain.Network, bool, error) {
	const op = "devnet.chain"
	var network *chain.Network
	created := false
	if fileExists(filepath.Join(dir, chain.ManifestFile)) {
		var err error
		if network, err = chain.LoadNetwork(dir); err != nil {
			return nil, false, err
		}
		if len(network.Validators) != o.Validators {
			return nil, false, gridmind.E(gridmind.KindConflict, op, "%s holds chain %s with %d validator(s), not %d; pass --validators %d, or use a new --dir for a new chain",
				dir, network.ChainID, len(network.Validators), o.Validators, len(network.Validators))
		}
		if o.ChainIDSet && network.ChainID != o.ChainID {
			return nil, false, gridmind.E(gridmind.KindConflict, op, "%s holds chain %s, not %s; drop --chain-id, or use a new --dir", dir, network.ChainID, o.ChainID)
		}
		for i, v := range network.Validators {
			if i >= len(nodes) || v.Account != nodes[i].ID {
				return nil, false, gridmind.E(gridmind.KindConflict, op, "validator %d of the chain in %s is not node%d's key (was %s replaced?); use a new --dir", i, dir, i, filepath.Join(dir, fmt.Sprintf("node%d", i), node.KeyFile))
			}
		}
	} else {
		if o.Validators > len(nodes) {
			return nil, false, gridmind.E(gridmind.KindInvalid, op, "%d validators but only %d nodes", o.Validators, len(nodes))
		}
		var specs []chain.ValidatorSpec
		var accounts []ledger.GenesisAccount
		for i, n := range nodes {
			key, err := node.LoadKey(n.Home)
			if err != nil {
				return nil, false, err
			}
			if i < o.Validators {
				specs = append(specs, chain.ValidatorSpec{Name: fmt.Sprintf("node%d", i), Key: key, Home: filepath.Join(n.Home, "chain")})
			}
			if o.Funds > 0 {
				accounts = append(accounts, ledger.GenesisAccount{Address: n.ID, Balance: o.Funds})
			}
		}
		var err error
		network, err = chain.InitGenesis(chain.GenesisOptions{
			ChainID: o.ChainID, Dir: dir, Validators: specs, BasePort: o.BasePort,
			Accounts: mergeGenesisAccounts(accounts, o.Accounts), Params: o.Params,
		})
		if err != nil {
			return nil, false, err
		}
		created = true
	}
	rpcs := network.RPCAddrs()
	for i, n := range nodes {
		n.Validator = i < len(network.Validators)
		cfg, err := node.LoadConfig(n.Home)
		if err != nil {
			return nil, false, err
		}
		// The validator's chain home is the default <home>/chain, so the
		// folder can move.
		want := node.ChainConfig{RPC: rpcs, Validator: n.Validator, Home: ""}
		if !slices.Equal(cfg.Chain.RPC, want.RPC) || cfg.Chain.Validator != want.Validator || cfg.Chain.Home != want.Home {
			cfg.Chain = want
			if err := node.WriteConfig(n.Home, cfg); err != nil {
				return nil, false, gridmind.E(gridmind.KindInternal, op, "node%d config: %w", i, err)
			}
		}
	}
	return network, created, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// mergeGenesisAccounts adds extra to base; an address in both takes
// extra's balance (an explicit --account wins over the default funding).
func mergeGenesisAccounts(base, extra []ledger.GenesisAccount) []ledger.GenesisAccount {
	out := append([]ledger.GenesisAccount(nil), base...)
	index := map[gridmind.NodeID]int{}
	for i, a := range out {
		index[a.Address] = i
	}
	for _, a := range extra {
		if i, ok := index[a.Address]; ok {
			out[i] = a
			continue
		}
		index[a.Address] = len(out)
		out = append(out, a)
	}
	return out
}

func runDevnet(ctx context.Context, cmd *cobra.Command, nodes []*devnetNode, network *chain.Network) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	exited := make(chan int, len(nodes))
	defer stopDevnet(nodes)
	for i, n := range nodes {
		logPath := filepath.Join(n.Home, "node.log")
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		n.log = f
		c := exec.Command(exe, "node", "--home", n.Home)
		c.Stdout, c.Stderr = f, f
		// The children die with us even if we are killed without a chance to clean up.
		c.SysProcAttr = sysproc.ChildAttr()
		if err := c.Start(); err != nil {
			return gridmind.E(gridmind.KindUnavailable, "devnet", "starting node %d: %w", i, err)
		}
		n.cmd = c
		n.done = make(chan struct{})
		go func(i int) {
			_ = c.Wait()
			close(nodes[i].done)
			exited <- i
		}(i)
	}
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tID\tROLE\tAPI\tLOG")
	for i, n := range nodes {
		role := "node"
		if n.Validator {
			role = "validator " + network.Validators[i].RPCAddr
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\thttp://%s\t%s\n", i, n.ID, role, n.HTTP, filepath.Join(n.Home, "node.log"))
	}
	tw.Flush()
	last := nodes[len(nodes)-1]
	fmt.Fprintf(out, "\ntry: gridmind peers --api %s\n     gridmind wallet balance --home %s\n     gridmind jobs list --api %s\nCtrl-C stops all nodes.\n",
		nodes[0].HTTP, last.Home, nodes[0].HTTP)
	// Report when the chain commits and the network has formed, so a user knows it works.
	go func() {
		c, err := chain.NewClient(network.RPCAddrs(), chain.ClientOptions{Logger: slog.New(slog.DiscardHandler), PollInterval: 250 * time.Millisecond})
		if err != nil {
			return
		}
		wait, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if st, err := c.WaitHeight(wait, 1); err == nil {
			fmt.Fprintf(out, "chain %s committing: height %d\n", st.ChainID, st.Height)
		}
	}()
	go func() {
		c := api.NewClient(nodes[0].HTTP)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			peers, err := c.Peers(ctx)
			if err == nil && len(peers) >= len(nodes)-1 {
				fmt.Fprintf(out, "network formed: node 0 sees %d peers\n", len(peers))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping devnet…")
		return nil
	case i := <-exited:
		return gridmind.E(gridmind.KindUnavailable, "devnet", "node %d exited; see %s", i, filepath.Join(nodes[i].Home, "node.log"))
	}
}

// stopDevnet sends SIGTERM to every node, waits for them, then kills stragglers.
func stopDevnet(nodes []*devnetNode) {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	graceful, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		if n.done == nil {
			continue
		}
		select {
		case <-n.done:
		case <-graceful.Done():
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if n.log != nil {
			n.log.Close()
		}
	}
}
