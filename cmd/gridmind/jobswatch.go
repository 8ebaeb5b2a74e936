package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

// jobView is a node's view of a job (GET /api/v1/jobs/{id}).
type jobView struct {
	Job      ledger.Job         `json:"job"`
	Receipts []ledger.Receipt   `json:"receipts"`
	Rounds   []jobs.RoundResult `json:"rounds"`
}

func newJobsWatchCmd(g *globals, la *ledgerAccess, asJSON *bool) *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job live: each round's loss, contributors, who was not credited, payments, until the job ends",
		Long: `Poll a node's API (--api, default: this home's node) and print each round
of a job as it settles: evaluation loss (known to the requester's node only),
contributors, providers leased for the round but not credited (crashed, late
or rejected by the reducers' screen) and what the round paid. When the job
ends it prints where the money went and the final model's full hash with a
ready-to-run infer line. ID may be a unique prefix of the job id.
Ctrl-C stops watching; the job goes on.`,
		Args: exactArgs(1),
	}
	client := apiFlag(cmd, g)
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often to ask the node")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *asJSON {
			return gridmind.E(gridmind.KindInvalid, "jobs watch", "--json: watch prints a live table; for JSON poll `gridmind jobs show %s --json --api ADDR`", args[0])
		}
		if every <= 0 {
			return gridmind.E(gridmind.KindInvalid, "jobs watch", "--interval %s: want more than 0", every)
		}
		c, err := client()
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(cmd.Context(), la.timeout)
		id, err := resolveJobArg(rctx, "jobs watch", args[0], jobsFromAPI(c))
		cancel()
		if err != nil {
			return err
		}
		return watchJob(cmd.Context(), cmd.OutOrStdout(), c, id, every, la.timeout, nodeFlags(cmd, g))
	}
	return cmd
}

// watchJob prints a job's rounds as they settle until the job ends or ctx
// does (Ctrl-C), which stops watching, not the job. flags (nodeFlags) go
// into the commands it suggests, so that they reach the same node.
func watchJob(ctx context.Context, out io.Writer, c *api.Client, id ledger.JobID, every, timeout time.Duration, flags string) error {
	printed := map[uint64]bool{}
	header := false
	tick := time.NewTicker(every)
	defer tick.Stop()
	for first := true; ; first = false {
		var v jobView
		gctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Get(gctx, "/api/v1/jobs/"+string(id), &v)
		cancel()
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			if first {
				fmt.Fprintf(out, "job %s (%s): %s, %d of %d rounds settled\n", id, dashIfEmpty(v.Job.Spec.Name), v.Job.State, v.Job.RoundsSettled, v.Job.Spec.Rounds)
			}
			rows := watchRows(v)
			for i, r := range rows {
				if printed[r.round] {
					continue
				}
				// The requester's node learns a round's loss a moment after
				// the ledger settles it, and a row is printed once: hold the
				// newest row back until its loss, a later round or the job's
				// end arrives (a node that never learns losses prints a round
				// when the next one settles).
				if r.loss == "–" && i == len(rows)-1 && v.Job.Open() {
					continue
				}
				if !header {
					fmt.Fprintln(out, "ROUND  EVAL LOSS  CONTRIBUTORS  REJECTED      NOT CREDITED  PAID")
					header = true
				}
				printed[r.round] = true
				fmt.Fprintf(out, "%5d  %9s  %12d  %-12s  %-12s  %s\n", r.round, r.loss, r.contributors, r.rejected, r.notCredited, r.paid)
			}
			if !v.Job.Open() {
				printJobEnd(out, v, flags)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(out, "\nstopped watching job %s; the job goes on: its nodes keep training and settling it.\n", id)
			fmt.Fprintf(out, "watch again:  gridmind jobs watch %s%s\n", id, flags)
			fmt.Fprintf(out, "cancel it:    %s\n", cancelHint(id, flags))
			return nil
		case <-tick.C:
		}
	}
}

type watchRow struct {
	round        uint64
	loss         string
	contributors int
	rejected     string // by the reducers' screen (known to the requester's node only)
	notCredited  string
	paid         gridmind.Amount
}

// watchRows are the settled rounds of a job: from the requester node's
// results when it has them (with the loss), else from the ledger's receipts.
func watchRows(v jobView) []watchRow {
	var rows []watchRow
	loss, rejected := map[uint64]string{}, map[uint64]string{}
	for _, r := range v.Rounds {
		if !r.Settled {
			continue
		}
		loss[r.Round] = fmt.Sprintf("%.4f", r.EvalLoss)
		var names []string
		for _, rep := range r.Reports {
			for _, id := range rep.Rejected {
				if !slices.Contains(names, id.Short()) {
					names = append(names, id.Short())
				}
			}
		}
		slices.Sort(names)
		if len(names) > 0 {
			rejected[r.Round] = strings.Join(names, ", ")
		}
	}
	for _, r := range v.Receipts {
		if !r.Settled {
			continue
		}
		var paid gridmind.Amount
		for _, p := range r.Payments {
			paid += p.Amount
		}
		l, ok := loss[r.Round]
		if !ok {
			l = "–"
		}
		rej, ok := rejected[r.Round]
		if !ok {
			rej = "–"
		}
		rows = append(rows, watchRow{round: r.Round, loss: l, contributors: len(r.Participants), rejected: rej, notCredited: notCredited(v.Job, r), paid: paid})
	}
	slices.SortFunc(rows, func(a, b watchRow) int { return int(a.round) - int(b.round) })
	return rows
}

// finalModel is the model hash of a job's last settled receipt ("" if none).
func finalModel(receipts []ledger.Receipt) string {
	var last *ledger.Receipt
	for i := range receipts {
		r := &receipts[i]
		if r.Settled && (last == nil || r.Round > last.Round) {
			last = r
		}
	}
	if last == nil {
		return ""
	}
	return last.ModelHash.String()
}

func printJobEnd(out io.Writer, v jobView, flags string) {
	j := v.Job
	fmt.Fprintf(out, "job %s is %s: %d of %d rounds settled, %s paid to workers, %s refunded\n", j.ID, j.State, j.RoundsSettled, j.Spec.Rounds, j.Paid, j.Refunded)
	printModelLine(out, finalModel(v.Receipts), flags)
}

// printModelLine prints a model's full hash and how to query it through the
// node that flags (nodeFlags) name.
func printModelLine(out io.Writer, hash, flags string) {
	if hash == "" {
		return
	}
	fmt.Fprintf(out, "model %s\n", hash)
	fmt.Fprintf(out, "query it:  gridmind infer%s --model %s %q\n", flags, hash, "your prompt")
	fmt.Fprintf(out, "(the job's workers serve it; another node loads it with: gridmind models serve %s)\n", strings.TrimSpace(hash))
}
