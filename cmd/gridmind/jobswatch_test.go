package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

// TestWatchJobPrintsRoundsThenTheModel: jobs watch prints each settled
// round once (loss, contributors, rejected, not credited, paid) as the
// node's view grows, and at the job's end where the money went and the
// final model's full hash with an infer line.
func TestWatchJobPrintsRoundsThenTheModel(t *testing.T) {
	a := gridmind.NodeIDFromPublicKey(make([]byte, 32))
	b := gridmind.NodeIDFromPublicKey(append(make([]byte, 31), 1))
	id := ledger.JobID("cc7098d03db9e50a7fab94e347bf7894")
	var h0, h1 ledger.Hash
	h0[0], h1[0] = 0xaa, 0xbb
	job := ledger.Job{ID: id, State: ledger.JobRunning, Spec: gridmind.JobSpec{Name: "w", Rounds: 2},
		Leases: []ledger.Lease{{Provider: a, StartHeight: 1}, {Provider: b, StartHeight: 1}}}
	r0 := ledger.Receipt{Round: 0, ModelHash: h0, Settled: true, Participants: []ledger.Participation{{Node: a, Work: 1}},
		Payments: []ledger.Payment{{Node: a, Amount: 3 * gridmind.UnitsPerGRID}}}
	r1 := ledger.Receipt{Round: 1, ModelHash: h1, Settled: true, Participants: []ledger.Participation{{Node: a, Work: 1}, {Node: b, Work: 1}},
		Payments: []ledger.Payment{{Node: a, Amount: gridmind.UnitsPerGRID}, {Node: b, Amount: gridmind.UnitsPerGRID}}}
	rounds := []jobs.RoundResult{
		{Round: 0, EvalLoss: 4.5, Settled: true, Reports: map[gridmind.NodeID]jobs.Report{a: {Rejected: []gridmind.NodeID{b}}}},
		{Round: 1, EvalLoss: 3.25, Settled: true},
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := jobView{Job: job}
		switch n := calls.Add(1); {
		case n == 1: // nothing settled yet
		case n == 2:
			v.Receipts, v.Rounds = []ledger.Receipt{r0}, rounds[:1]
		default:
			v.Job.State, v.Job.RoundsSettled = ledger.JobCompleted, 2
			v.Receipts, v.Rounds = []ledger.Receipt{r0, r1}, rounds
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}))
	defer srv.Close()
	var out strings.Builder
	if err := watchJob(context.Background(), &out, api.NewClient(srv.URL), id, 10*time.Millisecond, 5*time.Second, " --home /tmp/gmB"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"job " + string(id) + " (w): running, 0 of 2 rounds settled",
		"REJECTED",
		"    0     4.5000             1  " + b.Short(),
		"    1     3.2500             2  –",
		"is completed: 2 of 2 rounds settled",
		"model " + h1.String(),
		// the infer line reaches the node watched, not the default home's
		"gridmind infer --home /tmp/gmB --model " + h1.String(),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("watch output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n    0 ") != 1 {
		t.Errorf("round 0 printed more than once:\n%s", got)
	}
}

// TestWatchJobWaitsForALateLoss: the ledger settles a round a moment before
// the requester's node records its loss; watch prints the row once, so it
// waits for the loss rather than printing a dash for good.
func TestWatchJobWaitsForALateLoss(t *testing.T) {
	a := gridmind.NodeIDFromPublicKey(make([]byte, 32))
	id := ledger.JobID("cc7098d03db9e50a7fab94e347bf7894")
	job := ledger.Job{ID: id, State: ledger.JobRunning, Spec: gridmind.JobSpec{Name: "w", Rounds: 2},
		Leases: []ledger.Lease{{Provider: a, StartHeight: 1}}}
	r0 := ledger.Receipt{Round: 0, Settled: true, Participants: []ledger.Participation{{Node: a, Work: 1}},
		Payments: []ledger.Payment{{Node: a, Amount: gridmind.UnitsPerGRID}}}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := jobView{Job: job, Receipts: []ledger.Receipt{r0}}
		switch n := calls.Add(1); {
		case n <= 3: // settled on the ledger, loss not yet known
		case n == 4:
			v.Rounds = []jobs.RoundResult{{Round: 0, EvalLoss: 4.5, Settled: true}}
		default:
			v.Job.State = ledger.JobCancelled
			v.Rounds = []jobs.RoundResult{{Round: 0, EvalLoss: 4.5, Settled: true}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}))
	defer srv.Close()
	var out strings.Builder
	if err := watchJob(context.Background(), &out, api.NewClient(srv.URL), id, 10*time.Millisecond, 5*time.Second, ""); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "    0     4.5000") || strings.Contains(got, "    0          –") {
		t.Errorf("round 0 printed without its loss, or not at all:\n%s", got)
	}
}
