package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	gmjobs "github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

func init() { extraCommands = append(extraCommands, newJobsCmd) }

// jobDetail is what `jobs show` prints: the ledger's record and, from a
// node's API, what that node knows beyond it.
type jobDetail struct {
	Job       ledger.Job       `json:"job"`
	Receipts  []ledger.Receipt `json:"receipts,omitempty"`
	Placement json.RawMessage  `json:"placement,omitempty"` // only from the requester's node
	Rounds    json.RawMessage  `json:"rounds,omitempty"`    // only from the requester's node
}

func newJobsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List and inspect jobs on the ledger, and why they were placed where they were",
		Long: `Jobs live on the ledger: list and show read them through the validators
(--rpc, resolved as for 'gridmind wallet') or through a node's API (--api).
explain asks the requester's node (--api, default: this home's node) for the
placement record, which only that node keeps.`,
	}
	la := addLedgerFlags(cmd, g)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")

	var (
		requester, provider, state string
		limit                      int
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  exactArgs(0),
	}
	listAPI := apiFlag(list, g)
	list.Flags().StringVar(&requester, "requester", "", "only jobs posted by this account")
	list.Flags().StringVar(&provider, "provider", "", "only jobs this provider ever held a lease on")
	list.Flags().StringVar(&state, "state", "", "only jobs in this state: open, running, completed, cancelled, expired")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all)")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := jobFilter(requester, provider, state, limit)
		if err != nil {
			return err
		}
		var jobs []ledger.Job
		if cmd.Flags().Changed("api") {
			c, err := listAPI()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), la.timeout)
			defer cancel()
			var all []ledger.Job
			if err := c.Get(ctx, "/api/v1/jobs", &all); err != nil {
				return err
			}
			jobs = filterJobs(all, f)
		} else {
			c, addrs, ctx, cancel, err := la.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			if jobs, err = c.Jobs(ctx, f); err != nil {
				return la.hint(err, addrs)
			}
		}
		if asJSON {
			if jobs == nil {
				jobs = []ledger.Job{}
			}
			return printJSON(cmd.OutOrStdout(), jobs)
		}
		printJobTable(cmd.OutOrStdout(), jobs)
		return nil
	}

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job: spec, escrow, leases and round receipts",
		Args:  exactArgs(1),
	}
	showAPI := apiFlag(show, g)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		var d jobDetail
		if cmd.Flags().Changed("api") {
			c, err := showAPI()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), la.timeout)
			defer cancel()
			id, err := resolveJobArg(ctx, "jobs show", args[0], jobsFromAPI(c))
			if err != nil {
				return err
			}
			if err := c.Get(ctx, "/api/v1/jobs/"+string(id), &d); err != nil {
				return err
			}
		} else {
			c, addrs, ctx, cancel, err := la.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			id, err := resolveJobArg(ctx, "jobs show", args[0], jobsFromLedger(c))
			if err != nil {
				return la.hint(err, addrs)
			}
			if d.Job, err = c.Job(ctx, id); err != nil {
				return la.hint(err, addrs)
			}
			if d.Receipts, err = c.Receipts(ctx, id); err != nil {
				return la.hint(err, addrs)
			}
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), d)
		}
		printJobDetail(cmd.OutOrStdout(), d, nodeFlags(cmd, g))
		return nil
	}

	explain := &cobra.Command{
		Use:   "explain ID",
		Short: "Explain a job's placement: every candidate, its score and why it was picked or not",
		Long: `Print the placement record of a job: the candidates, their price,
reputation, energy and latency scores, and why each was picked, put on
standby or filtered out. Only the node that requested the job keeps this
record, so --api must name that node (default: this home's node).`,
		Args: exactArgs(1),
	}
	explainAPI := apiFlag(explain, g)
	explain.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := explainAPI()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), la.timeout)
		defer cancel()
		id, err := resolveJobArg(ctx, "jobs explain", args[0], jobsFromAPI(c))
		if err != nil {
			return err
		}
		if asJSON {
			// The job's view carries the placement record when this node
			// requested it; the explain route is text only.
			var view struct {
				Placement json.RawMessage `json:"placement"`
			}
			if err := c.Get(ctx, "/api/v1/jobs/"+string(id), &view); err != nil {
				return err
			}
			if len(view.Placement) == 0 || string(view.Placement) == "null" {
				return gridmind.E(gridmind.KindNotFound, "jobs explain", "job %s was not requested through this node, so it holds no placement record; ask the requester's node (--api or --home)", id)
			}
			return printJSON(cmd.OutOrStdout(), view.Placement)
		}
		text, err := c.GetText(ctx, "/api/v1/jobs/"+string(id)+"/explain")
		if err != nil {
			return err
		}
		_, err = io.WriteString(cmd.OutOrStdout(), text)
		return err
	}

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job this node requested: receipted rounds are paid, the rest of the escrow comes back, the leases end",
		Long: `Cancel a job requested with this home's key (the node's wallet). The job
ends at once: every lease ends and the escrow of rounds without a receipt
returns to the requester. Rounds that already have a receipt are paid to
their workers; one still inside its dispute window keeps its pot in escrow
until the window closes (so evidence against a cheater can still land), then
settles by itself and what it does not pay comes back. The node following
the job sees it end on the ledger and stops.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := la.resolveJob(cmd.Context(), "jobs cancel", args[0])
			if err != nil {
				return err
			}
			return la.submit(cmd, asJSON, func(ctx context.Context, w *chain.Wallet, c *chain.Client) (*chain.TxRecord, string, string, error) {
				rec, err := w.Submit(ctx, &ledger.CancelJob{Job: id})
				return rec, "cancelled job " + string(id), jobOutcome(ctx, c, id, err), err
			})
		},
	}
	closeCmd := &cobra.Command{
		Use:   "close ID",
		Short: "Close a job that ran out of time (past its deadline, or idle too long): anyone may",
		Long: `Close a job whose deadline has passed on the ledger's clock, or on which
nothing happened for the chain's max_idle_blocks: receipted rounds are paid
(one still in its dispute window when its window closes), the rest of the
escrow returns to its requester, the leases end. Any funded
account may send it (providers' nodes do it on their own for jobs they are
leased on), so an escrow never depends on its requester staying alive.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := la.resolveJob(cmd.Context(), "jobs close", args[0])
			if err != nil {
				return err
			}
			return la.submit(cmd, asJSON, func(ctx context.Context, w *chain.Wallet, c *chain.Client) (*chain.TxRecord, string, string, error) {
				rec, err := w.Submit(ctx, &ledger.CloseJob{Job: id})
				return rec, "closed job " + string(id), jobOutcome(ctx, c, id, err), err
			})
		},
	}
	cmd.AddCommand(list, show, explain, cancel, closeCmd, newJobsWatchCmd(g, la, &asJSON))
	return cmd
}

// jobOutcome says where a job's money went after it ended ("" if the
// transaction failed or the job cannot be read).
func jobOutcome(ctx context.Context, c *chain.Client, id ledger.JobID, err error) string {
	if err != nil {
		return ""
	}
	j, jerr := c.Job(ctx, id)
	if jerr != nil {
		return ""
	}
	out := fmt.Sprintf("job is %s: %d of %d rounds settled, %s paid to workers, %s refunded to the requester",
		j.State, j.RoundsSettled, j.Spec.Rounds, j.Paid, j.Refunded)
	if held := j.Held(); held > 0 {
		// Ending a job does not cut short a receipted round's dispute window.
		out += fmt.Sprintf("; %s held for %d receipted round(s) still in their dispute window: they settle by themselves when it closes, and what they do not pay comes back", held, len(j.Pending))
	}
	return out
}

// resolveJob resolves a job id or a unique prefix through the ledger.
func (la *ledgerAccess) resolveJob(ctx context.Context, op, s string) (ledger.JobID, error) {
	if len(strings.TrimSpace(s)) >= jobIDLen {
		return parseJobArg(s)
	}
	c, addrs, ctx, cancel, err := la.client(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	id, err := resolveJobArg(ctx, op, s, jobsFromLedger(c))
	if err != nil && gridmind.KindOf(err) != gridmind.KindInvalid && gridmind.KindOf(err) != gridmind.KindNotFound {
		return "", la.hint(err, addrs)
	}
	return id, err
}

func parseJobArg(s string) (ledger.JobID, error) {
	id, err := ledger.ParseJobID(strings.TrimSpace(s))
	if err != nil {
		return "", gridmind.E(gridmind.KindInvalid, "jobs", "%v (see `gridmind jobs list`)", err)
	}
	return id, nil
}

func jobFilter(requester, provider, state string, limit int) (ledger.JobFilter, error) {
	f := ledger.JobFilter{Limit: limit}
	if limit < 0 {
		return f, gridmind.E(gridmind.KindInvalid, "jobs list", "--limit %d: want 0 or more", limit)
	}
	if requester != "" {
		id, err := parseAccountAddr(requester, "jobs list --requester")
		if err != nil {
			return f, err
		}
		f.Requester = id
	}
	if provider != "" {
		id, err := parseAccountAddr(provider, "jobs list --provider")
		if err != nil {
			return f, err
		}
		f.Provider = id
	}
	switch s := ledger.JobState(state); s {
	case "", ledger.JobOpen, ledger.JobRunning, ledger.JobCompleted, ledger.JobCancelled, ledger.JobExpired:
		f.State = s
	default:
		return f, gridmind.E(gridmind.KindInvalid, "jobs list", "--state %q: want open, running, completed, cancelled or expired", state)
	}
	return f, nil
}

// filterJobs applies f to a full list, as the ledger's query would.
func filterJobs(all []ledger.Job, f ledger.JobFilter) []ledger.Job {
	var out []ledger.Job
	for _, j := range all {
		if f.Requester != "" && j.Requester != f.Requester {
			continue
		}
		if f.State != "" && j.State != f.State {
			continue
		}
		if f.Provider != "" && !leasedTo(j, f.Provider) {
			continue
		}
		out = append(out, j)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

func leasedTo(j ledger.Job, p gridmind.NodeID) bool {
	for _, l := range j.Leases {
		if l.Provider == p {
			return true
		}
	}
	return false
}

func activeLeases(j ledger.Job) int {
	n := 0
	for _, l := range j.Leases {
		if l.Active() {
			n++
		}
	}
	return n
}

func printJobTable(out io.Writer, jobs []ledger.Job) {
	if len(jobs) == 0 {
		fmt.Fprintln(out, "no jobs")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tROUNDS\tLEASES\tBUDGET\tESCROW\tPAID\tREQUESTER\tPOSTED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\t%s\t%d\n",
			j.ID, dashIfEmpty(j.Spec.Name), j.State, j.RoundsSettled, j.Spec.Rounds, activeLeases(j),
			j.Spec.Budget, j.Escrow, j.Paid, j.Requester.Short(), j.PostedHeight)
	}
	tw.Flush()
}

func printJobDetail(out io.Writer, d jobDetail, flags string) {
	j := d.Job
	s := j.Spec
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s\n", j.ID)
	fmt.Fprintf(tw, "name\t%s\n", dashIfEmpty(s.Name))
	fmt.Fprintf(tw, "model\t%s: %d worker(s), %d round(s) of %d inner steps\n", dashIfEmpty(s.Model), s.Workers, s.Rounds, s.InnerSteps)
	fmt.Fprintf(tw, "requester\t%s\n", j.Requester)
	fmt.Fprintf(tw, "state\t%s\n", j.State)
	fmt.Fprintf(tw, "budget\t%s: %s in escrow, %s paid, %s refunded\n", s.Budget, j.Escrow, j.Paid, j.Refunded)
	posted := fmt.Sprintf("height %d", j.PostedHeight)
	if j.EndedHeight > 0 {
		posted += fmt.Sprintf(", ended at height %d", j.EndedHeight)
	}
	fmt.Fprintf(tw, "posted\t%s\n", posted)
	rounds := fmt.Sprintf("%d of %d settled", j.RoundsSettled, s.Rounds)
	if len(j.Pending) > 0 {
		rounds += fmt.Sprintf("; submitted, awaiting settlement: %v", j.Pending)
	}
	fmt.Fprintf(tw, "rounds\t%s\n", rounds)
	var limits []string
	if s.MaxPricePerUnit > 0 {
		limits = append(limits, "max price "+s.MaxPricePerUnit.PerGFLOP())
	}
	if s.MinReputation > 0 {
		limits = append(limits, fmt.Sprintf("min reputation %d", s.MinReputation))
	}
	if s.MinStake > 0 {
		limits = append(limits, "min stake "+s.MinStake.String())
	}
	if s.GreenPreference > 0 {
		limits = append(limits, fmt.Sprintf("green preference %d", s.GreenPreference))
	}
	if len(s.RegionsAllowed) > 0 {
		limits = append(limits, "regions "+strings.Join(s.RegionsAllowed, ","))
	}
	if len(s.RegionsExcluded) > 0 {
		limits = append(limits, "not in "+strings.Join(s.RegionsExcluded, ","))
	}
	if len(limits) > 0 {
		fmt.Fprintf(tw, "asks for\t%s\n", strings.Join(limits, "; "))
	}
	if rules, err := gmjobs.RulesOf(s); err == nil {
		fmt.Fprintf(tw, "training rules\t%s\n", rules)
	}
	tw.Flush()

	if len(j.Leases) > 0 {
		fmt.Fprintln(out, "\nleases:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PROVIDER\tFROM\tUNTIL")
		for _, l := range j.Leases {
			until := "active"
			if !l.Active() {
				until = fmt.Sprintf("%d", l.EndHeight)
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", l.Provider, l.StartHeight, until)
		}
		tw.Flush()
	}
	if len(d.Receipts) > 0 {
		fmt.Fprintln(out, "\nround receipts:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ROUND\tMODEL\tSUBMITTED\tSETTLED\tPAID\tNOT CREDITED")
		for _, r := range d.Receipts {
			settled := "pending"
			var paid gridmind.Amount
			if r.Settled {
				settled = fmt.Sprintf("%d", r.SettledHeight)
			}
			for _, p := range r.Payments {
				paid += p.Amount
			}
			fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\t%s to %d participant(s)\t%s\n", r.Round, r.ModelHash.String(), r.SubmittedHeight, settled, paid, len(r.Payments), notCredited(j, r))
		}
		tw.Flush()
	}
	if h := finalModel(d.Receipts); h != "" {
		fmt.Fprintln(out)
		printModelLine(out, h, flags)
	}
	if len(d.Placement) > 0 && string(d.Placement) != "null" {
		fmt.Fprintf(out, "\nthis node requested the job: `gridmind jobs explain %s` shows its placement\n", j.ID)
	}
}

// notCredited names the providers leased for a round whose receipt leaves
// them out: they crashed, fell behind, or the reducers' screen rejected
// their contribution; the ledger counts it as failed work.
func notCredited(j ledger.Job, r ledger.Receipt) string {
	var out []string
	for _, l := range j.Leases {
		if r.Round < l.FromRound {
			continue
		}
		if !slices.ContainsFunc(r.Participants, func(p ledger.Participation) bool { return p.Node == l.Provider }) {
			out = append(out, l.Provider.Short())
		}
	}
	if len(out) == 0 {
		return "–"
	}
	return strings.Join(out, ", ")
}
