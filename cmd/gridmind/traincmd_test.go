package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/ledger"
)

// nodeAnswer is a RoundTripper standing in for the requester node's API:
// it answers every request with body and, once it has, runs after (the
// test's Ctrl-C).
type nodeAnswer struct {
	body  []byte
	after func()
}

func (n nodeAnswer) RoundTrip(*http.Request) (*http.Response, error) {
	defer n.after()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(n.body))}, nil
}

// TestTrainSubmitInterruptedSaysTheJobGoesOn: Ctrl-C while `train submit`
// follows a job stops following, not the job, and says so: the job goes
// on, how to follow it and how to cancel it (issue 11).
func TestTrainSubmitInterruptedSaysTheJobGoesOn(t *testing.T) {
	id := ledger.JobID("cc7098d03db9e50a7fab94e347bf7894")
	body, err := json.Marshal(map[string]any{"job": ledger.Job{ID: id, State: ledger.JobRunning, Spec: gridmind.JobSpec{Rounds: 5}}, "rounds": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	c := api.NewClient("127.0.0.1:1")
	c.HTTP = &http.Client{Transport: nodeAnswer{body: body, after: interrupt}}
	var out bytes.Buffer
	err = followJob(ctx, &out, c, id, 5, " --home /tmp/requester")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("followJob returned %v, want the interruption", err)
	}
	for _, want := range []string{
		"the job goes on",
		// the suggested commands reach the node that posted the job
		"gridmind jobs show " + string(id) + " --home /tmp/requester",
		"gridmind jobs watch " + string(id) + " --home /tmp/requester",
		"gridmind jobs cancel " + string(id) + " --home /tmp/requester",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
