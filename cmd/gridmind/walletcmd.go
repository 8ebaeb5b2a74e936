package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

func init() { extraCommands = append(extraCommands, newWalletCmd) }

// defaultRPC is where a validator started with `gridmind chain init`'s
// default ports answers.
const defaultRPC = "http://127.0.0.1:26657"

// ledgerAccess is the --rpc and --timeout flags shared by the commands
// that talk to validators (wallet, jobs, chain status).
type ledgerAccess struct {
	g       *globals
	rpc     []string
	timeout time.Duration
}

func addLedgerFlags(cmd *cobra.Command, g *globals) *ledgerAccess {
	la := &ledgerAccess{g: g}
	cmd.PersistentFlags().StringSliceVar(&la.rpc, "rpc", nil, "validator RPC address(es), tried in order (repeat or comma-separate; default: this home's validator and chain.rpc from <home>/config.yaml, else "+defaultRPC+")")
	cmd.PersistentFlags().DurationVar(&la.timeout, "timeout", 30*time.Second, "give up after this long (a transaction waits for its block)")
	return la
}

// addrs resolves the validator list: --rpc, else this home's own
// validator (if `gridmind chain init` made one) followed by the config's
// chain.rpc, else the default local validator. The order matches the node
// process (app.startChain prefers its own validator).
func (la *ledgerAccess) addrs() ([]string, error) {
	if len(la.rpc) > 0 {
		var out []string
		for _, a := range la.rpc {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil, gridmind.E(gridmind.KindInvalid, "flags", "--rpc is empty; want http://HOST:PORT")
		}
		return out, nil
	}
	cfg, err := node.LoadConfig(la.g.home)
	switch {
	case err == nil:
	case gridmind.KindOf(err) == gridmind.KindNotFound:
		cfg = node.Config{} // no config: only the home's chain, if any
	default:
		return nil, fmt.Errorf("%w (fix it, or pass --rpc)", err)
	}
	chainHome := cfg.Chain.Home
	if chainHome == "" {
		chainHome = filepath.Join(la.g.home, "chain")
	}
	var out []string
	if s, err := chain.LoadNodeSettings(chainHome); err == nil && s.RPCListen != "" {
		out = append(out, "http://"+dialableAddr(s.RPCListen))
	}
	for _, a := range cfg.Chain.RPC {
		if !hasString(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{defaultRPC}
	}
	return out, nil
}

// dialableAddr turns a listen address on all interfaces into one a client can dial.
func dialableAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func hasString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// client opens a ledger client and a context bounded by --timeout.
func (la *ledgerAccess) client(ctx context.Context) (*chain.Client, []string, context.Context, context.CancelFunc, error) {
	addrs, err := la.addrs()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if la.timeout <= 0 {
		return nil, nil, nil, nil, gridmind.E(gridmind.KindInvalid, "flags", "--timeout %s: want a positive duration", la.timeout)
	}
	c, err := chain.NewClient(addrs, chain.ClientOptions{Logger: slog.Default(), Timeout: min(la.timeout, 10*time.Second)})
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w (want --rpc http://HOST:PORT)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, la.timeout)
	return c, addrs, ctx, cancel, nil
}

// hint adds what to do next to an error that means no validator answered.
func (la *ledgerAccess) hint(err error, addrs []string) error {
	if err == nil || gridmind.KindOf(err) != gridmind.KindUnavailable {
		return err
	}
	return fmt.Errorf("%w\nno validator answered at %s: to use an existing network's ledger, pass --rpc http://HOST:PORT (a validator's RPC, e.g. a devnet's http://127.0.0.1:26757) or set it for this home with `gridmind init --home %s --join MULTIADDR --rpc http://HOST:PORT`; to start a new network instead: `gridmind chain init`, then `gridmind node --validator --home %s`",
		err, strings.Join(addrs, ", "), la.g.home, la.g.home)
}

// parseAccountAddr checks a command-line account address.
func parseAccountAddr(s, what string) (gridmind.NodeID, error) {
	id := gridmind.NodeID(strings.TrimSpace(s))
	if err := id.Validate(); err != nil {
		return "", gridmind.E(gridmind.KindInvalid, what, "%v; an address is a node id like 12D3KooW… (see `gridmind wallet address`)", err)
	}
	return id, nil
}

// parsePositiveAmount reads a GRID amount that must be more than zero.
func parsePositiveAmount(s, what string) (gridmind.Amount, error) {
	a, err := gridmind.ParseAmount(s)
	if err != nil {
		return 0, gridmind.E(gridmind.KindInvalid, what, "%v", err)
	}
	if a == 0 {
		return 0, gridmind.E(gridmind.KindInvalid, what, "amount %q is zero; want more than 0 GRID", s)
	}
	return a, nil
}

func newWalletCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "Your ledger account: address, balance, send, stake, unstake, history",
		Long: `The wallet signs with the node key in --home (its address is the node id)
and talks to the validators in --rpc, else to this home's own validator
and chain.rpc from <home>/config.yaml, else to ` + defaultRPC + `.

Amounts are GRID ("12", "12.5", "12.5 GRID") or µGRID ("1500u", "1500 µGRID"),
read the same way as in job specs and config.yaml; --json prints µGRID.`,
	}
	la := addLedgerFlags(cmd, g)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")

	address := &cobra.Command{
		Use:   "address",
		Short: "Print this node's account address (its node id)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := node.LoadKey(g.home)
			if err != nil {
				return err
			}
			id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"address": id.String()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}

	balance := &cobra.Command{
		Use:   "balance [ADDR]",
		Short: "Show an account's balance, stake, unbonding and reputation (default: this node's)",
		Args:  atMostArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, own, err := accountArg(g, args)
			if err != nil {
				return err
			}
			c, addrs, ctx, cancel, err := la.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			acct, err := c.Account(ctx, id)
			if err != nil {
				return la.hint(err, addrs)
			}
			if !acct.Exists {
				next := fmt.Sprintf("send it some GRID (`gridmind wallet send %s AMOUNT` from a funded node)", id)
				if own {
					next = fmt.Sprintf("fund it at genesis (`gridmind chain init --account %s=AMOUNT`) or have a funded node run `gridmind wallet send %s AMOUNT`", id, id)
				}
				return gridmind.E(gridmind.KindNotFound, "wallet", "account %s has never been funded on this chain (balance 0 GRID); %s", id, next)
			}
			height := int64(0)
			if st, err := c.Status(ctx); err == nil {
				height = st.Height
			}
			score := app.ReputationScore(acct.Reputation, height)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					ledger.AccountView
					Score  any   `json:"reputation_score"`
					Height int64 `json:"height"`
				}{acct, score, height})
			}
			printAccount(cmd.OutOrStdout(), acct, score.String(), height)
			return nil
		},
	}

	var memo string
	send := &cobra.Command{
		Use:   "send TO AMOUNT",
		Short: "Transfer GRID to another account and wait until it is in a block",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := parseAccountAddr(args[0], "wallet send")
			if err != nil {
				return err
			}
			amount, err := parsePositiveAmount(args[1], "wallet send")
			if err != nil {
				return err
			}
			if len(memo) > 256 {
				return gridmind.E(gridmind.KindInvalid, "wallet send", "--memo has %d bytes; at most 256", len(memo))
			}
			return la.submit(cmd, asJSON, func(ctx context.Context, w *chain.Wallet, c *chain.Client) (*chain.TxRecord, string, string, error) {
				rec, err := w.Send(ctx, to, amount, memo)
				return rec, fmt.Sprintf("sent %s to %s", amount, to), "", err
			})
		},
	}
	send.Flags().StringVar(&memo, "memo", "", "a note stored with the transfer")

	stake := &cobra.Command{
		Use:   "stake AMOUNT",
		Short: "Bond GRID from the balance as stake (providers need stake to be leased)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := parsePositiveAmount(args[0], "wallet stake")
			if err != nil {
				return err
			}
			return la.submit(cmd, asJSON, func(ctx context.Context, w *chain.Wallet, c *chain.Client) (*chain.TxRecord, string, string, error) {
				rec, err := w.Stake(ctx, amount)
				return rec, fmt.Sprintf("staked %s", amount), "", err
			})
		},
	}

	unstake := &cobra.Command{
		Use:   "unstake AMOUNT",
		Short: "Start unbonding stake; it returns to the balance after the unbonding period",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := parsePositiveAmount(args[0], "wallet unstake")
			if err != nil {
				return err
			}
			return la.submit(cmd, asJSON, func(ctx context.Context, w *chain.Wallet, c *chain.Client) (*chain.TxRecord, string, string, error) {
				rec, err := w.Unstake(ctx, amount)
				note := ""
				if err == nil {
					// The ledger releases it UnbondingBlocks after the unstaking block.
					if p, perr := c.Params(ctx); perr == nil {
						note = fmt.Sprintf("%s returns to the balance at height %d", amount, rec.Height+max(p.UnbondingBlocks, 1))
					}
				}
				return rec, fmt.Sprintf("unstaked %s", amount), note, err
			})
		},
	}

	var limit int
	history := &cobra.Command{
		Use:   "history [ADDR]",
		Short: "List an account's latest changes, newest first (default: this node's)",
		Args:  atMostArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return gridmind.E(gridmind.KindInvalid, "wallet history", "--limit %d: want 1..1000", limit)
			}
			id, _, err := accountArg(g, args)
			if err != nil {
				return err
			}
			c, addrs, ctx, cancel, err := la.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			entries, err := c.History(ctx, id, limit)
			if err != nil {
				return la.hint(err, addrs)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), entries)
			}
			printHistory(cmd.OutOrStdout(), id, entries)
			return nil
		},
	}
	history.Flags().IntVar(&limit, "limit", 20, "how many entries (1..1000)")

	txCmd := &cobra.Command{
		Use:   "tx HASH",
		Short: "Look up a transaction by hash: committed (and its result) or not in any block",
		Long: `Look up a transaction by its hash (every wallet command prints it). When a
command said "outcome unknown", this tells whether the transaction committed
after all, so you never send it twice.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hash, err := ledger.ParseHash(strings.TrimSpace(args[0]))
			if err != nil {
				return gridmind.E(gridmind.KindInvalid, "wallet tx", "%v", err)
			}
			c, addrs, ctx, cancel, err := la.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			rec, err := c.Tx(ctx, hash)
			if gridmind.KindOf(err) == gridmind.KindNotFound {
				return gridmind.E(gridmind.KindNotFound, "wallet tx", "transaction %s is not in any block (yet): if it was sent moments ago it may still commit; if not, it never will and it is safe to send again", hash)
			}
			if err != nil {
				return la.hint(err, addrs)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rec)
			}
			if rerr := rec.Err(); rerr != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "tx %s is in block %d, refused: %v\n", hash, rec.Height, rerr)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tx %s committed in block %d\n", hash, rec.Height)
			return nil
		},
	}

	cmd.AddCommand(address, balance, send, stake, unstake, history, txCmd)
	return cmd
}

// atMostArgs is cobra.MaximumNArgs with an error of kind invalid.
func atMostArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return gridmind.E(gridmind.KindInvalid, cmd.CommandPath(), "want at most %d argument(s), got %d (see --help)", n, len(args))
		}
		return nil
	}
}

// accountArg is the address in args, or this node's own.
func accountArg(g *globals, args []string) (id gridmind.NodeID, own bool, err error) {
	if len(args) == 1 {
		id, err = parseAccountAddr(args[0], "wallet")
		return id, false, err
	}
	key, err := node.LoadKey(g.home)
	if err != nil {
		return "", false, fmt.Errorf("%w (or name an address)", err)
	}
	return gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)), true, nil
}

// submit runs one signed transaction of this node's wallet and reports it.
func (la *ledgerAccess) submit(cmd *cobra.Command, asJSON bool, do func(context.Context, *chain.Wallet, *chain.Client) (rec *chain.TxRecord, what, note string, err error)) error {
	key, err := node.LoadKey(la.g.home)
	if err != nil {
		return err
	}
	c, addrs, ctx, cancel, err := la.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	w := chain.NewWallet(c, key)
	rec, msg, note, err := do(ctx, w, c)
	if err != nil {
		return la.hint(txHint(err, w.Address()), addrs)
	}
	acct, aerr := c.Account(ctx, w.Address())
	if asJSON {
		out := map[string]any{"tx": rec}
		if aerr == nil {
			out["account"] = acct
		}
		return printJSON(cmd.OutOrStdout(), out)
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "%s in block %d (tx %s)\n", msg, rec.Height, rec.Hash)
	if note != "" {
		fmt.Fprintln(out, note)
	}
	if aerr == nil {
		// "your": after a send, a bare balance line reads as the recipient's.
		fmt.Fprintf(out, "your account: balance %s, stake %s, unbonding %s\n", acct.Balance, acct.Stake, acct.UnbondingTotal)
	}
	return nil
}

// txHint says what to do about a refused transaction.
func txHint(err error, self gridmind.NodeID) error {
	switch gridmind.KindOf(err) {
	case gridmind.KindInsufficient:
		return fmt.Errorf("%w\ncheck what is available with `gridmind wallet balance`", err)
	case gridmind.KindNotFound:
		return fmt.Errorf("%w\nis account %s funded on this chain? see `gridmind wallet balance`", err, self)
	}
	return err
}

func printAccount(out io.Writer, a ledger.AccountView, score string, height int64) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "address\t%s\n", a.Address)
	fmt.Fprintf(tw, "balance\t%s\n", a.Balance)
	fmt.Fprintf(tw, "stake\t%s\n", a.Stake)
	fmt.Fprintf(tw, "unbonding\t%s\n", a.UnbondingTotal)
	for _, u := range a.Unbonding {
		fmt.Fprintf(tw, "\t%s released at height %d\n", u.Amount, u.ReleaseHeight)
	}
	fmt.Fprintf(tw, "nonce\t%d\n", a.Nonce)
	if p := a.Provider; p != nil {
		fmt.Fprintf(tw, "provider\tregistered at height %d, asks %s, %d active lease(s), region %s\n",
			p.RegisteredHeight, p.Offer.PricePerUnit.PerGFLOP(), p.ActiveLeases, p.Offer.Region)
	} else {
		fmt.Fprintf(tw, "provider\tnot registered\n")
	}
	r := a.Reputation
	fmt.Fprintf(tw, "reputation\t%s\n", score)
	fmt.Fprintf(tw, "record\t%d rounds finished, %d failed, %d slash(es), %d/%d heartbeats attested\n",
		r.RoundsFinished, r.RoundsFailed, r.Slashes, r.BeatsSeen, r.BeatsExpected)
	if height > 0 {
		fmt.Fprintf(tw, "height\t%d\n", height)
	}
	tw.Flush()
}

func printHistory(out io.Writer, id gridmind.NodeID, entries []chain.HistoryEntry) {
	if len(entries) == 0 {
		fmt.Fprintf(out, "no history for %s\n", id)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HEIGHT\tEVENT\tAMOUNT\tCOUNTERPARTY\tJOB\tTX")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Height, e.Event.Kind, e.Event.Amount,
			dashIfEmpty(string(e.Event.Counterparty)), dashIfEmpty(string(e.Event.Job)), dashIfEmpty(shortTxHash(e.TxHash)))
	}
	tw.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortTxHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
