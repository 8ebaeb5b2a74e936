package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/internal/testutil"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
)

var apiLine = regexp.MustCompile(`api  http://(127\.0\.0\.1:\d+)`)

// TestJobsAgainstNode runs `gridmind node --validator` in-process after
// `gridmind chain init`, posts a job with the node's key, and reads it back
// through the ledger (--rpc) and through the node's API (--api).
func TestJobsAgainstNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	home, id := newTestHome(t, ctx)
	_, stranger := newTestHome(t, ctx)
	port := freePortRange(t, 2)
	rpc := fmt.Sprintf("http://127.0.0.1:%d", port+1)
	mustCLI(t, ctx, "chain", "init", "--home", home, "--chain-port", fmt.Sprint(port))

	nodeCtx, stopNode := context.WithCancel(ctx)
	root := newRoot()
	var nodeOut testutil.SyncBuffer
	root.SetOut(&nodeOut)
	root.SetErr(&nodeOut)
	root.SetArgs([]string{"node", "--validator", "--home", home, "--log-level", "error"})
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- root.ExecuteContext(nodeCtx) }()
	t.Cleanup(func() {
		stopNode()
		select {
		case err := <-nodeDone:
			if err != nil {
				t.Errorf("gridmind node: %v\n%s", err, nodeOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("gridmind node did not stop within 20 s of its context ending")
		}
	})
	var apiAddr string
	for deadline := time.Now().Add(30 * time.Second); apiAddr == ""; {
		if m := apiLine.FindStringSubmatch(nodeOut.String()); m != nil {
			apiAddr = m[1]
			break
		}
		select {
		case err := <-nodeDone:
			t.Fatalf("gridmind node exited: %v\n%s", err, nodeOut.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("gridmind node printed no API address:\n%s", nodeOut.String())
		}
	}

	// The chain status command sees the node's validator.
	if out := mustCLI(t, ctx, "chain", "status", "--home", home); !strings.Contains(out, "gridmind-local") {
		t.Errorf("chain status:\n%s", out)
	}
	if out := mustCLI(t, ctx, "jobs", "list", "--home", home); strings.TrimSpace(out) != "no jobs" {
		t.Errorf("jobs list on a new chain:\n%s", out)
	}

	key, err := node.LoadKey(home)
	if err != nil {
		t.Fatal(err)
	}
	client, err := chain.NewClient([]string{rpc}, chain.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := gridmind.JobSpec{Name: "cli-test", Model: "mlp", Workers: 1, Rounds: 2, InnerSteps: 5, Budget: 100 * gridmind.UnitsPerGRID}
	jobID, _, err := chain.NewWallet(client, key).PostJob(ctx, spec, ledger.JobSize{ModelParams: 10_000, TokensPerStep: 256})
	if err != nil {
		t.Fatal(err)
	}
	job := string(jobID)

	t.Run("list", func(t *testing.T) {
		for _, src := range [][]string{{"--home", home}, {"--rpc", rpc}, {"--api", apiAddr}} {
			out := mustCLI(t, ctx, append([]string{"jobs", "list"}, src...)...)
			for _, want := range []string{"ID", job, "cli-test", "open", "0/2", "100 GRID", id.Short()} {
				if !strings.Contains(out, want) {
					t.Errorf("jobs list %v lacks %q:\n%s", src, want, out)
				}
			}
			var jobs []ledger.Job
			out = mustCLI(t, ctx, append([]string{"jobs", "list", "--json"}, src...)...)
			if err := json.Unmarshal([]byte(out), &jobs); err != nil || len(jobs) != 1 || jobs[0].ID != jobID {
				t.Errorf("jobs list --json %v: %v, err %v", src, jobs, err)
			}
		}
		for _, filter := range [][]string{{"--state", "completed"}, {"--requester", string(stranger)}, {"--provider", string(id)}} {
			for _, src := range [][]string{{"--rpc", rpc}, {"--api", apiAddr}} {
				args := append(append([]string{"jobs", "list"}, filter...), src...)
				if out := mustCLI(t, ctx, args...); strings.TrimSpace(out) != "no jobs" {
					t.Errorf("jobs list %v matched:\n%s", args[2:], out)
				}
			}
		}
		out := mustCLI(t, ctx, "jobs", "list", "--requester", string(id), "--state", "open", "--rpc", rpc)
		if !strings.Contains(out, job) {
			t.Errorf("jobs list --requester self --state open lacks the job:\n%s", out)
		}
	})

	t.Run("show", func(t *testing.T) {
		for _, src := range [][]string{{"--rpc", rpc}, {"--api", apiAddr}} {
			out := mustCLI(t, ctx, append([]string{"jobs", "show", job}, src...)...)
			for _, want := range []string{job, "cli-test", "mlp: 1 worker(s), 2 round(s) of 5 inner steps", string(id), "100 GRID: 100 GRID in escrow, 0 GRID paid", "0 of 2 settled"} {
				if !strings.Contains(out, want) {
					t.Errorf("jobs show %v lacks %q:\n%s", src, want, out)
				}
			}
			var d jobDetail
			out = mustCLI(t, ctx, append([]string{"jobs", "show", job, "--json"}, src...)...)
			if err := json.Unmarshal([]byte(out), &d); err != nil || d.Job.ID != jobID || d.Job.Escrow != spec.Budget {
				t.Errorf("jobs show --json %v: %+v, err %v", src, d.Job, err)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		// Only the requester may cancel; anyone may close, but not yet.
		wantCLIError(t, ctx, 2, "neither past its deadline", "jobs", "close", job, "--home", home, "--rpc", rpc)
		out := mustCLI(t, ctx, "jobs", "cancel", job, "--home", home, "--rpc", rpc)
		for _, want := range []string{"cancelled job " + job, "(tx ", "job is cancelled", "100 GRID refunded"} {
			if !strings.Contains(out, want) {
				t.Errorf("jobs cancel lacks %q:\n%s", want, out)
			}
		}
		wantCLIError(t, ctx, 4, "is cancelled", "jobs", "cancel", job, "--home", home, "--rpc", rpc)
		if out := mustCLI(t, ctx, "jobs", "list", "--state", "cancelled", "--rpc", rpc); !strings.Contains(out, job) {
			t.Errorf("jobs list --state cancelled lacks the job:\n%s", out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		unknown := strings.Repeat("ab", 16)
		for _, tc := range []struct {
			name string
			code int
			want string
			args []string
		}{
			{"malformed id", 2, "32 hex digits", []string{"jobs", "show", "xyz", "--rpc", rpc}},
			{"unknown job on the ledger", 3, "no job", []string{"jobs", "show", unknown, "--rpc", rpc}},
			{"unknown job on the API", 3, "no job", []string{"jobs", "show", unknown, "--api", apiAddr}},
			{"explain a job another node requested", 3, "ask the requester's node", []string{"jobs", "explain", job, "--api", apiAddr}},
			{"explain malformed id", 2, "32 hex digits", []string{"jobs", "explain", "nope", "--api", apiAddr}},
			// --json is honoured: not the text record, and the same refusal.
			{"explain --json a job another node requested", 3, "ask the requester's node", []string{"jobs", "explain", job, "--api", apiAddr, "--json"}},
			{"bad state", 2, "--state", []string{"jobs", "list", "--state", "done", "--rpc", rpc}},
			{"bad requester", 2, "node id", []string{"jobs", "list", "--requester", "alice", "--rpc", rpc}},
			{"bad limit", 2, "--limit", []string{"jobs", "list", "--limit", "-1", "--rpc", rpc}},
			{"no node", 6, "no node answers", []string{"jobs", "list", "--api", "127.0.0.1:1"}},
			{"no validator", 6, "no validator answered", []string{"jobs", "list", "--rpc", "http://127.0.0.1:1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCLIError(t, ctx, tc.code, tc.want, append(tc.args, "--home", home)...)
			})
		}
	})

	t.Run("watch an ended job", func(t *testing.T) {
		out := mustCLI(t, ctx, "jobs", "watch", job[:8], "--api", apiAddr, "--home", home)
		for _, want := range []string{"job " + job + " (cli-test): cancelled", "job " + job + " is cancelled", "100 GRID refunded"} {
			if !strings.Contains(out, want) {
				t.Errorf("jobs watch lacks %q:\n%s", want, out)
			}
		}
	})

	// Post jobs until two ids share their first digit: then that digit is
	// an ambiguous prefix (at most 17 ids by the pigeonhole principle).
	byDigit := map[byte][]string{job[0]: {job}}
	var ambiguous string
	w := chain.NewWallet(client, key)
	for i := 0; ambiguous == "" && i < 17; i++ {
		s := spec
		s.Name, s.Budget = fmt.Sprintf("prefix-%d", i), gridmind.UnitsPerGRID
		id, _, err := w.PostJob(ctx, s, ledger.JobSize{ModelParams: 10_000, TokensPerStep: 256})
		if err != nil {
			t.Fatal(err)
		}
		byDigit[id[0]] = append(byDigit[id[0]], string(id))
		if len(byDigit[id[0]]) > 1 {
			ambiguous = string(id[0])
		}
	}
	openJob := byDigit[ambiguous[0]][len(byDigit[ambiguous[0]])-1]
	unknown := ""
	for _, d := range []byte("0123456789abcdef") {
		if len(byDigit[d]) == 0 {
			unknown = string(d)
			break
		}
	}
	if unknown == "" { // every digit taken: two digits no id starts with
		unknown = openJob[:1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", openJob[1])+1)%16])
		for _, ids := range byDigit {
			for _, id := range ids {
				if strings.HasPrefix(id, unknown) {
					t.Skipf("no unknown two-digit prefix found: %v", byDigit)
				}
			}
		}
	}

	t.Run("prefixes", func(t *testing.T) {
		for _, src := range [][]string{{"--rpc", rpc}, {"--api", apiAddr}} {
			out := mustCLI(t, ctx, append([]string{"jobs", "show", openJob[:len(openJob)-8]}, src...)...)
			if !strings.Contains(out, openJob) {
				t.Errorf("jobs show by prefix %v lacks %s:\n%s", src, openJob, out)
			}
			wantCLIError(t, ctx, 2, "is ambiguous", append([]string{"jobs", "show", ambiguous, "--home", home}, src...)...)
			wantCLIError(t, ctx, 3, "no job starts with", append([]string{"jobs", "show", unknown, "--home", home}, src...)...)
		}
		wantCLIError(t, ctx, 2, "is ambiguous", "jobs", "watch", ambiguous, "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 3, "no job starts with", "jobs", "watch", unknown, "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "is ambiguous", "jobs", "cancel", ambiguous, "--home", home, "--rpc", rpc)
		wantCLIError(t, ctx, 3, "no job starts with", "jobs", "cancel", unknown, "--home", home, "--rpc", rpc)
		wantCLIError(t, ctx, 2, "is ambiguous", "jobs", "explain", ambiguous, "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "32 hex digits", "jobs", "watch", "xyz", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "--json: watch prints a live table", "jobs", "watch", openJob, "--json", "--api", apiAddr, "--home", home)
	})

	t.Run("watch an open job, then stop", func(t *testing.T) {
		wctx, stop := context.WithTimeout(ctx, 2*time.Second)
		defer stop()
		out := mustCLI(t, wctx, "jobs", "watch", openJob[:12], "--api", apiAddr, "--home", home, "--interval", "200ms")
		for _, want := range []string{"job " + openJob, ": open, 0 of 2 rounds settled", "stopped watching job " + openJob, "the job goes on", "gridmind jobs cancel " + openJob} {
			if !strings.Contains(out, want) {
				t.Errorf("jobs watch lacks %q:\n%s", want, out)
			}
		}
		// A unique prefix cancels the job.
		if out := mustCLI(t, ctx, "jobs", "cancel", openJob[:10], "--home", home, "--rpc", rpc); !strings.Contains(out, "cancelled job "+openJob) {
			t.Errorf("jobs cancel by prefix:\n%s", out)
		}
	})

	t.Run("models", func(t *testing.T) {
		if out := mustCLI(t, ctx, "models", "--api", apiAddr, "--home", home); !strings.Contains(out, "no models") {
			t.Errorf("models on a node that serves none:\n%s", out)
		}
		if out := mustCLI(t, ctx, "models", "list", "--json", "--api", apiAddr, "--home", home); strings.TrimSpace(out) != "[]" {
			t.Errorf("models list --json: %s", out)
		}
		wantCLIError(t, ctx, 3, `no model starts with "abc"`, "models", "show", "abc", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 3, `no model starts with "abc"`, "models", "serve", "abc", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 3, `no model starts with "abc"`, "infer", "--model", "abc", "hi", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "64 hex digits", "models", "show", "zz", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 3, "not known", "models", "show", strings.Repeat("ab", 32), "--api", apiAddr, "--home", home)

		// A checkpoint from train local --save is servable.
		ckpt := filepath.Join(t.TempDir(), "model.ckpt")
		out := mustCLI(t, ctx, "train", "local", "--workers", "1", "--rounds", "1", "--inner-steps", "2", "--save", ckpt)
		m := regexp.MustCompile(`model ([0-9a-f]{64}) saved to`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("train local --save names no model hash:\n%s", out)
		}
		hash := m[1]
		out = mustCLI(t, ctx, "models", "serve", "--file", ckpt, "--api", apiAddr, "--home", home)
		if !strings.Contains(out, "now serves model "+hash) || !strings.Contains(out, "gridmind infer --model "+hash) {
			t.Errorf("models serve --file:\n%s", out)
		}
		if out := mustCLI(t, ctx, "models", "show", hash[:8], "--api", apiAddr, "--home", home); !strings.Contains(out, "model        "+hash) && !strings.Contains(out, hash) || !strings.Contains(out, "served here  queue") {
			t.Errorf("models show PREFIX after serve --file:\n%s", out)
		}
		if out := mustCLI(t, ctx, "models", "--api", apiAddr, "--home", home); !strings.Contains(out, hash) {
			t.Errorf("models lacks the served checkpoint:\n%s", out)
		}
		if out := mustCLI(t, ctx, "infer", "--model", hash[:8], "--max-tokens", "8", "--seed", "1", "--api", apiAddr, "--home", home, "func "); !strings.HasPrefix(out, "func ") {
			t.Errorf("infer --model PREFIX:\n%s", out)
		}
		notCkpt := filepath.Join(t.TempDir(), "x.txt")
		if err := os.WriteFile(notCkpt, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantCLIError(t, ctx, 2, "not a gridmind checkpoint", "models", "serve", "--file", notCkpt, "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "not both or neither", "models", "serve", "--api", apiAddr, "--home", home)
		wantCLIError(t, ctx, 2, "not both or neither", "models", "serve", hash, "--file", ckpt, "--api", apiAddr, "--home", home)
	})
}

// TestMatchPrefix: exact values win, a unique prefix resolves, an ambiguous
// or unknown one is refused and says why.
func TestMatchPrefix(t *testing.T) {
	all := []string{"ab12", "ab34", "cd56"}
	for _, tc := range []struct {
		in, want, err string
		code          int
	}{
		{"ab12", "ab12", "", 0},
		{"AB3", "ab34", "", 0},
		{"c", "cd56", "", 0},
		{"ab", "", `ambiguous: 2 jobs start with it (ab12, ab34)`, 2},
		{"ef", "", `no job starts with "ef"`, 3},
		{"", "", "want 4 hex digits", 2},
		{"xy", "", "want 4 hex digits", 2},
		{"ab123", "", "want 4 hex digits", 2},
	} {
		got, err := matchPrefix("t", "job", 4, tc.in, all, "x")
		if got != tc.want || gridmind.ExitCode(err) != tc.code || (tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err))) {
			t.Errorf("matchPrefix(%q) = %q, %v (exit %d); want %q, %q, exit %d", tc.in, got, err, gridmind.ExitCode(err), tc.want, tc.err, tc.code)
		}
	}
}

func TestGetText(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "candidate A: picked\n")
		case "/conflict":
			api.WriteError(w, gridmind.E(gridmind.KindConflict, "x", "already settled"))
		case "/plain":
			http.Error(w, "upstream broke", http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := api.NewClient(srv.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want string
		code int
	}{
		{"/ok", "candidate A: picked\n", 0},
		{"/conflict", "already settled", 4},
		{"/missing", "404", 3},
		{"/plain", "upstream broke", 1},
	} {
		got, err := c.GetText(ctx, tc.path)
		if code := gridmind.ExitCode(err); code != tc.code {
			t.Errorf("%s: exit %d (%v), want %d", tc.path, code, err, tc.code)
		}
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.path, got, tc.want)
		}
	}
}

func TestFilterJobs(t *testing.T) {
	a := gridmind.NodeIDFromPublicKey(make([]byte, 32))
	b := gridmind.NodeIDFromPublicKey(append(make([]byte, 31), 1))
	all := []ledger.Job{
		{ID: "3", Requester: a, State: ledger.JobRunning, Leases: []ledger.Lease{{Provider: b, StartHeight: 5}}},
		{ID: "2", Requester: b, State: ledger.JobOpen},
		{ID: "1", Requester: a, State: ledger.JobCompleted, Leases: []ledger.Lease{{Provider: b, StartHeight: 2, EndHeight: 4}}},
	}
	ids := func(js []ledger.Job) string {
		var s []string
		for _, j := range js {
			s = append(s, string(j.ID))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		f    ledger.JobFilter
		want string
	}{
		{ledger.JobFilter{}, "3,2,1"},
		{ledger.JobFilter{Limit: 2}, "3,2"},
		{ledger.JobFilter{Requester: a}, "3,1"},
		{ledger.JobFilter{Provider: b}, "3,1"},
		{ledger.JobFilter{Provider: a}, ""},
		{ledger.JobFilter{State: ledger.JobOpen}, "2"},
		{ledger.JobFilter{Requester: a, State: ledger.JobCompleted}, "1"},
	} {
		if got := ids(filterJobs(all, tc.f)); got != tc.want {
			t.Errorf("filter %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestJobDetailShowsRulesAndWhoWasNotCredited(t *testing.T) {
	ids := []gridmind.NodeID{nodeIDFor(1), nodeIDFor(2), nodeIDFor(3)}
	j := ledger.Job{ID: "j1", Spec: gridmind.JobSpec{Name: "x", Model: "mlp", Workers: 2, Rounds: 2, Budget: 1, Combine: "median"},
		Leases: []ledger.Lease{{Provider: ids[0]}, {Provider: ids[1]}, {Provider: ids[2], FromRound: 1}}}
	receipts := []ledger.Receipt{
		{Round: 0, Participants: []ledger.Participation{{Node: ids[0]}}},
		{Round: 1, Participants: []ledger.Participation{{Node: ids[0]}, {Node: ids[1]}}},
	}
	var out strings.Builder
	printJobDetail(&out, jobDetail{Job: j, Receipts: receipts}, "")
	got := out.String()
	for _, want := range []string{"training rules", "combine median", "NOT CREDITED"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// Round 0: the second worker is not credited (the standby was not yet
	// leased for it); round 1: the standby, leased from round 1, is not.
	lines := strings.Split(got, "\n")
	var r0, r1 string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "0 "):
			r0 = l
		case strings.HasPrefix(strings.TrimSpace(l), "1 "):
			r1 = l
		}
	}
	if !strings.Contains(r0, ids[1].Short()) || strings.Contains(r0, ids[2].Short()) {
		t.Errorf("round 0 line %q: want %s not credited and not %s", r0, ids[1].Short(), ids[2].Short())
	}
	if !strings.Contains(r1, ids[2].Short()) || strings.Contains(r1, ids[1].Short()) {
		t.Errorf("round 1 line %q: want only %s not credited", r1, ids[2].Short())
	}
}

func nodeIDFor(seed byte) gridmind.NodeID {
	pub := make([]byte, 32)
	pub[0] = seed
	return gridmind.NodeIDFromPublicKey(pub)
}
