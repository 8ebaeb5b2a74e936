package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/app"
	"github.com/gridmind/gridmind/internal/trainlocal"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
)

func init() { extraCommands = append(extraCommands, newTrainCmd) }

func newTrainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "train", Short: "Train a model with DiLoCo: locally across in-process nodes, or as a job on a network"}
	o := trainlocal.Options{Workers: 4, Rounds: 5, InnerSteps: 20, Model: "mlp", Seed: 1}
	local := &cobra.Command{
		Use:   "local",
		Short: "Run a DiLoCo job across in-process workers, each a libp2p host on 127.0.0.1",
		Long: `Run one training job across --workers in-process workers. Each is a real
libp2p host on 127.0.0.1; they exchange int8 pseudo-gradients with a
butterfly all-reduce over libp2p streams every --inner-steps steps and apply
an outer Nesterov step. Prints round, evaluation loss, tokens/s and bytes
sent. --data trains on your own text (a file or a folder) instead of the
embedded Go standard library source.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			_, err := trainlocal.Run(cmd.Context(), o)
			return err
		},
	}
	f := local.Flags()
	f.IntVar(&o.Workers, "workers", o.Workers, "workers (each its own libp2p host)")
	f.IntVar(&o.Rounds, "rounds", o.Rounds, "outer rounds")
	f.IntVar(&o.InnerSteps, "inner-steps", o.InnerSteps, "inner AdamW steps per round (H)")
	f.StringVar(&o.Model, "model", o.Model, "mlp or transformer")
	f.IntVar(&o.BatchSize, "batch", 0, "windows per step (default: the model's)")
	f.StringVar(&o.Data, "data", "", "text file or folder to train on (default: embedded Go source)")
	f.StringVar(&o.Combiner, "combine", "", "combine rule: mean (default), median or trimmed-mean:FRACTION")
	f.Int64Var(&o.Seed, "seed", o.Seed, "seed for weights, data order and identities")
	f.StringVar(&o.SaveModel, "save", "", "write the trained model's checkpoint to this file (a node serves it with: gridmind models serve --file FILE)")
	cmd.AddCommand(local, newTrainSubmitCmd(g))
	return cmd
}

func newTrainSubmitCmd(g *globals) *cobra.Command {
	var (
		standby int
		detach  bool
	)
	cmd := &cobra.Command{
		Use:   "submit SPEC.yaml",
		Short: "Post a training job through a running node and follow it to the end",
		Long: `Post the job described in SPEC (YAML or JSON) from a running node (--home, or
--api): its budget goes into escrow on the ledger, the node places it on
providers by price, reputation, throughput, latency and clean energy, leases
them, and the job trains with DiLoCo. Progress is followed until every round
is settled.

A spec looks like this (examples/spec.yaml; every field, unit and default is
in docs/JOBSPEC.md):
  name: charlm
  model: mlp
  workers: 2
  rounds: 5
  inner_steps: 20
  budget: 20              # GRID, like every amount; 1500u is 1500 µGRID
  green_preference: 60

The posting node is never one of its own providers, and --standby providers
count: on a 4-node devnet, workers + standby can be at most 3.`,
		Example: `  # on 'gridmind devnet up --nodes 4', posting through node 0
  gridmind train submit --home ~/.gridmind/devnet/node0 examples/spec.yaml

  # through this home's node, no standby, returning once the job is placed
  gridmind train submit --standby 0 --detach spec.yaml`,
		Args: exactArgs(1),
	}
	client := apiFlag(cmd, g)
	cmd.Flags().IntVar(&standby, "standby", 1, "extra providers leased to replace a worker that fails")
	cmd.Flags().BoolVar(&detach, "detach", false, "return after the job is placed")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		data, err := os.ReadFile(args[0])
		if err != nil {
			return gridmind.E(gridmind.KindInvalid, "train submit", "%v", err)
		}
		spec, err := market.ParseJobSpec(data)
		if err != nil {
			return gridmind.E(gridmind.KindInvalid, "train submit", "%s: %w", args[0], err)
		}
		c, err := client()
		if err != nil {
			return err
		}
		var acc app.JobAccepted
		if err := c.Post(cmd.Context(), "/api/v1/jobs", app.JobRequest{Spec: spec, Standby: standby}, &acc); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "job %s posted: %d workers, %d standby\n", acc.Job, len(acc.Active), len(acc.Standby))
		if detach {
			fmt.Fprintf(out, "follow it with: gridmind jobs watch %s%s\n", acc.Job, nodeFlags(cmd, g))
			return nil
		}
		return followJob(cmd.Context(), out, c, acc.Job, spec.Rounds, nodeFlags(cmd, g))
	}
	return cmd
}

// followJob polls the requester node until every round is settled. flags
// (nodeFlags) go into the commands it suggests, so that they reach the same
// node.
func followJob(ctx context.Context, out io.Writer, c *api.Client, id ledger.JobID, rounds int, flags string) error {
	printed := map[uint64]bool{}
	fmt.Fprintln(out, "ROUND  EVAL LOSS  WORKERS  TOKENS/S  BYTES SENT  PAID")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		var view jobView
		if err := c.Get(ctx, "/api/v1/jobs/"+string(id), &view); err != nil {
			return err
		}
		for _, r := range view.Rounds {
			if printed[r.Round] || !r.Settled {
				continue
			}
			printed[r.Round] = true
			var paid gridmind.Amount
			for _, p := range r.Payments {
				paid += p.Amount
			}
			fmt.Fprintf(out, "%5d  %9.3f  %7d  %8.0f  %10d  %s\n", r.Round, r.EvalLoss, len(r.Participants), r.TokensPerSec, r.BytesSent, paid)
		}
		if int(view.Job.RoundsSettled) >= rounds || !view.Job.Open() {
			fmt.Fprintf(out, "job %s is %s: %d of %d rounds settled, %s paid, %s refunded\n", id, view.Job.State, view.Job.RoundsSettled, rounds, view.Job.Paid, view.Job.Refunded)
			if view.Job.State != ledger.JobCompleted && !view.Job.Open() {
				return gridmind.E(gridmind.KindConflict, "train submit", "job %s ended %s before all its rounds were settled", id, view.Job.State)
			}
			printModelLine(out, finalModel(view.Receipts), flags)
			return nil
		}
		select {
		case <-ctx.Done():
			// Stopping this command stops following, not the job: the
			// node keeps training and settling it.
			fmt.Fprintf(out, "\nstopped following job %s; the job goes on: the node keeps training and settling it.\n", id)
			fmt.Fprintf(out, "follow it:  gridmind jobs show %s%s\n", id, flags)
			fmt.Fprintf(out, "watch it:   gridmind jobs watch %s%s\n", id, flags)
			fmt.Fprintf(out, "cancel it:  %s   (receipted rounds are paid, the rest refunded)\n", cancelHint(id, flags))
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// cancelHint is the command that cancels job id. `jobs cancel` signs with a
// home's key, not through an API, so only a --home carries over; --api
// names no key.
func cancelHint(id ledger.JobID, flags string) string {
	if strings.HasPrefix(flags, " --home ") {
		return fmt.Sprintf("gridmind jobs cancel %s%s", id, flags)
	}
	return fmt.Sprintf("gridmind jobs cancel %s --home REQUESTER_HOME   (the home of the node that posted it)", id)
}

// nodeFlags repeats the flags that named the node a command talked to, for
// a follow-up command line that must reach the same node.
func nodeFlags(cmd *cobra.Command, g *globals) string {
	if f := cmd.Flags().Lookup("api"); f != nil && f.Changed {
		return " --api " + f.Value.String()
	}
	if f := cmd.Flags().Lookup("home"); f != nil && f.Changed {
		return " --home " + g.home
	}
	return ""
}
