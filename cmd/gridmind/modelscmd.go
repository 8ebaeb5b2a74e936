package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/ledger"
)

func init() { extraCommands = append(extraCommands, newModelsCmd) }

// modelHashLen is the length of a full model hash in hex digits.
const modelHashLen = 64

// modelInfo is what a node knows of one model.
type modelInfo struct {
	Hash   string                `json:"hash"`
	Held   bool                  `json:"held"`             // this node holds its weights
	Served *gridmind.ServedModel `json:"served,omitempty"` // this node serves it
	Job    ledger.JobID          `json:"job,omitempty"`    // the ledger job whose last settled round produced it
	Round  uint64                `json:"round,omitempty"`
	State  ledger.JobState       `json:"job_state,omitempty"`
}

// knownModels lists the models a node holds or serves and, best effort,
// the final models of the jobs on its ledger.
func knownModels(ctx context.Context, c *api.Client) ([]modelInfo, error) {
	var local struct {
		Held   []string               `json:"held"`
		Served []gridmind.ServedModel `json:"served"`
	}
	if err := c.Get(ctx, "/api/v1/models", &local); err != nil {
		return nil, err
	}
	byHash := map[string]*modelInfo{}
	get := func(h string) *modelInfo {
		if m, ok := byHash[h]; ok {
			return m
		}
		m := &modelInfo{Hash: h}
		byHash[h] = m
		return m
	}
	for _, h := range local.Held {
		get(h).Held = true
	}
	for i := range local.Served {
		get(local.Served[i].Hash).Served = &local.Served[i]
	}
	var all []ledger.Job
	if err := c.Get(ctx, "/api/v1/jobs", &all); err == nil { // no ledger: local models only
		n := 0
		for _, j := range all {
			if j.RoundsSettled == 0 {
				continue
			}
			if n++; n > 50 {
				break
			}
			var v jobView
			if err := c.Get(ctx, "/api/v1/jobs/"+string(j.ID), &v); err != nil {
				continue
			}
			if h := finalModel(v.Receipts); h != "" {
				m := get(h)
				m.Job, m.State = j.ID, j.State
				for _, r := range v.Receipts {
					if r.ModelHash.String() == h {
						m.Round = r.Round
					}
				}
			}
		}
	}
	out := make([]modelInfo, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b modelInfo) int { return strings.Compare(a.Hash, b.Hash) })
	return out, nil
}

// checkModelArg refuses what cannot be a model hash or a prefix of one
// before any node is asked.
func checkModelArg(op, s string) error {
	_, err := matchPrefix(op, "model", modelHashLen, s, nil, "gridmind models")
	if gridmind.KindOf(err) == gridmind.KindInvalid {
		return err
	}
	return nil
}

// resolveModel turns a model hash or a unique prefix of one into a full
// hash, asking the node only when s is shorter than a full hash.
func resolveModel(ctx context.Context, c *api.Client, op, s string) (string, *modelInfo, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if _, err := matchPrefix(op, "model", modelHashLen, s, nil, "gridmind models"); gridmind.KindOf(err) == gridmind.KindInvalid {
		return "", nil, err
	}
	models, err := knownModels(ctx, c)
	if err != nil {
		if len(s) == modelHashLen {
			return s, nil, nil // a full hash needs no list
		}
		return "", nil, err
	}
	hashes := make([]string, len(models))
	for i, m := range models {
		hashes[i] = m.Hash
	}
	h, err := matchPrefix(op, "model", modelHashLen, s, hashes, "gridmind models")
	if err != nil {
		if len(s) == modelHashLen {
			return s, nil, nil // not known here; peers may hold it
		}
		return "", nil, err
	}
	i := slices.IndexFunc(models, func(m modelInfo) bool { return m.Hash == h })
	return h, &models[i], nil
}

func newModelsCmd(g *globals) *cobra.Command {
	var (
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the models a node serves and knows of; show one; make a node serve one",
		Long: `Models are named by the hash of their weights (64 hex digits); every
command that takes one also takes a unique prefix of it. A node knows the
models it holds and serves, and the final model of each job on its ledger.`,
		Args: unknownSubcommand, // alone it lists; a typo is refused
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.PersistentFlags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the node")

	listClient := apiFlag(cmd, g)
	listRun := func(c *api.Client, cmd *cobra.Command) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		models, err := knownModels(ctx, c)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), models)
		}
		printModelTable(cmd.OutOrStdout(), models)
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := listClient()
		if err != nil {
			return err
		}
		return listRun(c, cmd)
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the models this node holds or serves, and the jobs' final models",
		Args:  exactArgs(0),
	}
	listSub := apiFlag(list, g)
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := listSub()
		if err != nil {
			return err
		}
		return listRun(c, cmd)
	}

	show := &cobra.Command{
		Use:   "show HASH",
		Short: "Show a model: whether this node holds and serves it, the job that trained it, how to query it",
		Args:  exactArgs(1),
	}
	showClient := apiFlag(show, g)
	show.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkModelArg("models show", args[0]); err != nil {
			return err
		}
		c, err := showClient()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		h, m, err := resolveModel(ctx, c, "models show", args[0])
		if err != nil {
			return err
		}
		if m == nil {
			return gridmind.E(gridmind.KindNotFound, "models show", "model %s is not known to %s (see `gridmind models`)", h, c)
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), m)
		}
		printModel(cmd.OutOrStdout(), *m)
		return nil
	}

	var file string
	serveCmd := &cobra.Command{
		Use:   "serve HASH | serve --file CHECKPOINT",
		Short: "Make this node serve a model: fetched from the peers that hold it, or a checkpoint file (needs the API token)",
		Long: `With HASH (or a unique prefix), the node (--api, default: this home's node)
finds the peers that hold the model, downloads it, checks its weights against
the hash and serves it. With --file, the checkpoint that 'gridmind train local
--save' wrote is sent to the node, which loads, verifies and serves it under
its weights' hash. Either way the node then advertises the model to its peers.`,
		Args: cobra.RangeArgs(0, 1),
	}
	serveClient := apiFlag(serveCmd, g)
	serveCmd.Flags().StringVar(&file, "file", "", "a checkpoint written by `gridmind train local --save`")
	serveCmd.RunE = func(cmd *cobra.Command, args []string) error {
		if (file == "") == (len(args) == 0) {
			return gridmind.E(gridmind.KindInvalid, "models serve", "give a model HASH or --file CHECKPOINT, not both or neither (see --help)")
		}
		if len(args) == 1 {
			if err := checkModelArg("models serve", args[0]); err != nil {
				return err
			}
		}
		c, err := serveClient()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		var h string
		if file != "" {
			if h, err = uploadCheckpointFile(ctx, c, file); err != nil {
				return err
			}
		} else {
			if h = strings.ToLower(strings.TrimSpace(args[0])); len(h) != modelHashLen {
				if h, _, err = resolveModel(ctx, c, "models serve", h); err != nil {
					return err
				}
			}
			if err := c.Post(ctx, "/api/v1/models/"+h, struct{}{}, nil); err != nil {
				return err
			}
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"model": h, "serving": true})
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "%s now serves model %s\n", c, h)
		fmt.Fprintf(out, "query it:  gridmind infer --model %s %q\n", h, "your prompt")
		return nil
	}
	cmd.AddCommand(list, show, serveCmd)
	addModelsIO(cmd, g, &asJSON, &timeout)
	return cmd
}

func printModelTable(out io.Writer, models []modelInfo) {
	if len(models) == 0 {
		fmt.Fprintln(out, "no models (a finished job's workers serve its model; `gridmind models serve HASH` loads one)")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tHELD\tSERVED\tQUEUE\tP50\tJOB")
	for _, m := range models {
		held, served, queue, p50 := "no", "no", "–", "–"
		if m.Held {
			held = "yes"
		}
		if m.Served != nil {
			served = "yes"
			queue = fmt.Sprint(m.Served.QueueLength)
			p50 = fmt.Sprintf("%.0fms", m.Served.LatencyP50Ms)
		}
		job := "–"
		if m.Job != "" {
			job = fmt.Sprintf("%s round %d", m.Job, m.Round)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Hash, held, served, queue, p50, job)
	}
	tw.Flush()
}

func printModel(out io.Writer, m modelInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", m.Hash)
	fmt.Fprintf(tw, "held here\t%v\n", m.Held)
	if m.Served != nil {
		s := m.Served
		fmt.Fprintf(tw, "served here\tqueue %d, p50 %.0f ms, p95 %.0f ms, error rate %.2f\n", s.QueueLength, s.LatencyP50Ms, s.LatencyP95Ms, s.ErrorRate)
	} else {
		fmt.Fprintf(tw, "served here\tno (gridmind models serve %s)\n", m.Hash)
	}
	if m.Job != "" {
		fmt.Fprintf(tw, "trained by\tjob %s (%s), round %d\n", m.Job, m.State, m.Round)
	}
	tw.Flush()
	fmt.Fprintf(out, "query it:  gridmind infer --model %s %q\n", m.Hash, "your prompt")
}

// uploadCheckpointFile sends a checkpoint file to the node, which serves
// it; it returns the model's hash.
func uploadCheckpointFile(ctx context.Context, c *api.Client, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", gridmind.E(gridmind.KindInvalid, "models serve", "%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", gridmind.E(gridmind.KindInvalid, "models serve", "%v", err)
	}
	return uploadCheckpoint(ctx, c, "models serve", path, f, st.Size())
}

// uploadCheckpoint sends a checkpoint (named name in errors) to the node,
// which serves it; it returns the model's hash.
func uploadCheckpoint(ctx context.Context, c *api.Client, op, name string, body io.Reader, size int64) (string, error) {
	data, err := nodeBytes(ctx, c, op, http.MethodPost, "/api/v1/models", body, size)
	if err != nil {
		return "", gridmind.E(gridmind.KindOf(err), op, "%s: %w", name, errors.Unwrap(err))
	}
	var answer struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || answer.Model == "" {
		return "", gridmind.E(gridmind.KindInternal, op, "unexpected answer from %s: %s", c.Base, data)
	}
	return answer.Model, nil
}
