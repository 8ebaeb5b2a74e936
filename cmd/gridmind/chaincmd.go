package main

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

func init() { extraCommands = append(extraCommands, newChainCmd) }

func newChainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Make a ledger chain (CometBFT genesis) and look at a running one",
	}
	cmd.AddCommand(newChainInitCmd(g), newChainStatusCmd(g))
	return cmd
}

type chainInitFlags struct {
	chainID    string
	validators int
	dir        string
	accounts   []string
	basePort   int
	funds      string
}

func newChainInitCmd(g *globals) *cobra.Command {
	var f chainInitFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a genesis: this node as the only validator, or N validators under --dir",
		Long: `Make a new ledger chain.

Without --dir and with one validator (the default), this node becomes the
chain's only validator: its node key (<home>/node.key) is the validator key,
the chain goes to <home>/chain (or chain.home from config.yaml), and the
node's account is funded. Nothing else in the home changes; run the
validator with:

    gridmind node --validator --home <home>

With --validators N (N > 1) or --dir DIR, it makes N node homes with new
keys under DIR (default <home>/localchain), each running one validator of
the chain, ready for 'gridmind devnet up --dir DIR' or one
'gridmind node --home DIR/nodeI' per validator. Each validator's account is
funded, and so is this home's node, if it has a key.

Validator i listens on --chain-port+2i (CometBFT p2p) and --chain-port+2i+1
(RPC, which the wallet and other nodes use), as in 'gridmind devnet up'.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.validators < 1 || f.validators > maxDevnetValidators {
				return gridmind.E(gridmind.KindInvalid, "chain init", "--validators %d: want 1..%d", f.validators, maxDevnetValidators)
			}
			if f.basePort < 1024 || f.basePort+2*f.validators > 65536 {
				return gridmind.E(gridmind.KindInvalid, "chain init", "--chain-port %d: ports %d..%d fall outside 1024..65535", f.basePort, f.basePort, f.basePort+2*f.validators-1)
			}
			funds, err := gridmind.ParseAmount(f.funds)
			if err != nil {
				return gridmind.E(gridmind.KindInvalid, "chain init", "--funds: %v", err)
			}
			extra, err := parseGenesisAccounts(f.accounts)
			if err != nil {
				return err
			}
			if f.validators == 1 && f.dir == "" {
				return chainInitSelf(cmd.OutOrStdout(), g, f, funds, extra)
			}
			return chainInitLocal(cmd.OutOrStdout(), g, f, funds, extra)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.chainID, "chain-id", "gridmind-local", "chain id (signed into every transaction)")
	fl.IntVar(&f.validators, "validators", 1, "number of validators; more than 1 makes them under --dir")
	fl.StringVar(&f.dir, "dir", "", "make the validators' node homes here (default <home>/localchain when --validators > 1)")
	fl.StringSliceVar(&f.accounts, "account", nil, "fund an account at genesis: ADDR=AMOUNT (repeatable)")
	fl.IntVar(&f.basePort, "chain-port", 26656, "CometBFT ports: validator i listens on this+2i (p2p) and this+2i+1 (RPC)")
	// --base-port was this flag's first name; in devnet up it is the
	// libp2p port, so chain init answers to it only to say the new name.
	fl.IntVar(&f.basePort, "base-port", 26656, "")
	_ = fl.MarkDeprecated("base-port", "use --chain-port (in 'devnet up', --base-port is the libp2p port)")
	fl.StringVar(&f.funds, "funds", "1000000", "GRID for each node account made or named here (0 for none)")
	return cmd
}

// parseGenesisAccounts reads --account ADDR=AMOUNT values.
func parseGenesisAccounts(specs []string) ([]ledger.GenesisAccount, error) {
	var out []ledger.GenesisAccount
	seen := map[gridmind.NodeID]bool{}
	for _, s := range specs {
		addr, amount, ok := strings.Cut(s, "=")
		if !ok {
			return nil, gridmind.E(gridmind.KindInvalid, "chain init", "--account %q: want ADDR=AMOUNT, e.g. 12D3KooW…=1000", s)
		}
		id, err := parseAccountAddr(addr, "chain init --account")
		if err != nil {
			return nil, err
		}
		a, err := gridmind.ParseAmount(amount)
		if err != nil {
			return nil, gridmind.E(gridmind.KindInvalid, "chain init --account", "%s: %v", id, err)
		}
		if seen[id] {
			return nil, gridmind.E(gridmind.KindInvalid, "chain init --account", "%s is named twice", id)
		}
		seen[id] = true
		out = append(out, ledger.GenesisAccount{Address: id, Balance: a})
	}
	return out, nil
}

// chainInitSelf makes a one-validator chain whose validator is this node.
func chainInitSelf(out io.Writer, g *globals, f chainInitFlags, funds gridmind.Amount, extra []ledger.GenesisAccount) error {
	key, err := node.LoadKey(g.home)
	if err != nil {
		return fmt.Errorf("%w first: the chain's validator key is the node key", err)
	}
	id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	cfg, err := node.LoadConfig(g.home)
	hasConfig := err == nil
	if err != nil && gridmind.KindOf(err) != gridmind.KindNotFound {
		return fmt.Errorf("%w (fix it first: the node reads the chain's place from it)", err)
	}
	chainHome := cfg.Chain.Home
	if chainHome == "" {
		chainHome = filepath.Join(g.home, "chain")
	}
	var accounts []ledger.GenesisAccount
	if funds > 0 {
		accounts = append(accounts, ledger.GenesisAccount{Address: id, Balance: funds})
	}
	accounts = mergeGenesisAccounts(accounts, extra)
	network, err := chain.InitGenesis(chain.GenesisOptions{
		ChainID: f.chainID, Dir: chainHome, BasePort: f.basePort, Accounts: accounts,
		Validators: []chain.ValidatorSpec{{Name: "validator", Key: key, Home: chainHome}},
	})
	if err != nil {
		if gridmind.KindOf(err) == gridmind.KindConflict {
			return fmt.Errorf("%w (it holds the chain's blocks and balances; to start over, move it away)", err)
		}
		return err
	}
	v := network.Validators[0]
	fmt.Fprintf(out, "created chain %s with one validator: this node %s\n", network.ChainID, id)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  chain home\t%s\n", chainHome)
	fmt.Fprintf(tw, "  rpc\t%s\n", v.RPCAddr)
	fmt.Fprintf(tw, "  p2p\t%s@%s\n", v.P2PID, v.P2PAddr)
	for _, a := range accounts {
		fmt.Fprintf(tw, "  funded\t%s  %s\n", a.Address, a.Balance)
	}
	tw.Flush()
	fmt.Fprintf(out, "next:\n  gridmind node --validator --home %s\n  gridmind wallet balance --home %s\n", g.home, g.home)
	switch {
	case !hasConfig:
		fmt.Fprintf(out, "(no %s yet: run `gridmind init --home %s` first; it keeps the key)\n", filepath.Join(g.home, node.ConfigFile), g.home)
	case !cfg.Chain.Validator:
		fmt.Fprintf(out, "to run the validator without --validator, set in %s:\n  chain:\n    validator: true\n", filepath.Join(g.home, node.ConfigFile))
	}
	if hasConfig && len(cfg.Chain.RPC) > 0 {
		fmt.Fprintf(out, "note: chain.rpc in config.yaml lists %s; the node and wallet try this validator first, then those\n", strings.Join(cfg.Chain.RPC, ", "))
	}
	return nil
}

// chainInitLocal makes a chain of f.validators new node homes under a folder.
func chainInitLocal(out io.Writer, g *globals, f chainInitFlags, funds gridmind.Amount, extra []ledger.GenesisAccount) error {
	dir := f.dir
	if dir == "" {
		dir = filepath.Join(g.home, "localchain")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return gridmind.E(gridmind.KindInvalid, "chain init", "--dir: %v", err)
	}
	if fileExists(filepath.Join(dir, chain.ManifestFile)) {
		return gridmind.E(gridmind.KindConflict, "chain init", "%s already holds a chain; start it with `gridmind devnet up --dir %s`, or pick another --dir", dir, dir)
	}
	const p2pPort, httpPort = 27000, 28000 // devnet up's defaults, so it runs this folder as is
	if err := checkDevnetPorts(f.validators, f.validators, p2pPort, httpPort, f.basePort); err != nil {
		return err
	}
	homes, err := devnetLayout(dir, f.validators, p2pPort, httpPort)
	if err != nil {
		return err
	}
	// This home's node, if it has a key, is funded too, so its wallet works on the new chain.
	if key, err := node.LoadKey(g.home); err == nil && funds > 0 {
		own := ledger.GenesisAccount{Address: gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)), Balance: funds}
		extra = mergeGenesisAccounts([]ledger.GenesisAccount{own}, extra)
	}
	network, _, err := devnetChain(dir, homes, devnetChainOptions{
		ChainID: f.chainID, ChainIDSet: true, Validators: f.validators, BasePort: f.basePort, Funds: funds, Accounts: extra,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created chain %s with %d validator(s) in %s\n", network.ChainID, len(network.Validators), dir)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tACCOUNT\tRPC\tHOME")
	for i, v := range network.Validators {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i, v.Account, v.RPCAddr, homes[i].Home)
	}
	tw.Flush()
	if funds > 0 {
		fmt.Fprintf(out, "each node account holds %s\n", funds)
	}
	for _, a := range extra {
		fmt.Fprintf(out, "also funded: %s  %s\n", a.Address, a.Balance)
	}
	fmt.Fprintf(out, "next:\n  gridmind devnet up --dir %s --nodes %d\n  (or one `gridmind node --home %s` per node, each in its own terminal)\n", dir, f.validators, filepath.Join(dir, "nodeI"))
	fmt.Fprintf(out, "then:\n  gridmind wallet balance --rpc %s\n", strings.Join(network.RPCAddrs(), ","))
	return nil
}

func newChainStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the chain's height, app hash and the answering validator",
		Args:  exactArgs(0),
	}
	la := addLedgerFlags(cmd, g)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, addrs, ctx, cancel, err := la.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return la.hint(err, addrs)
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), st)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "chain\t%s\n", st.ChainID)
		fmt.Fprintf(tw, "height\t%d (%s)\n", st.Height, st.LatestBlockTime.Format("2006-01-02 15:04:05 MST"))
		fmt.Fprintf(tw, "app hash\t%s\n", st.AppHash)
		fmt.Fprintf(tw, "validator\t%s (%s, power %d)\n", st.Moniker, st.ValidatorAddress, st.VotingPower)
		fmt.Fprintf(tw, "catching up\t%v\n", st.CatchingUp)
		return tw.Flush()
	}
	return cmd
}
