package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
)

// record is what the requester keeps of a running job in Dir: what the
// workers were told, and how it was following them. The ledger holds the
// rest (receipts, settlements, leases).
type record struct {
	Announce      Announce `json:"announce"`
	ReportTimeout Duration `json:"report_timeout"`
	Standby       int      `json:"standby"`
}

// Duration is a time.Duration written as "20s" in JSON.
type Duration time.Duration

// MarshalText prints the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

func (r *Requester) recordPath(job ledger.JobID) string {
	return filepath.Join(r.Dir, string(job)+".json")
}

// save writes a job's record atomically (temporary file, then rename).
func (r *Requester) save(a Announce, o SubmitOptions) error {
	if r.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(record{Announce: a, ReportTimeout: Duration(o.ReportTimeout), Standby: o.Standby}, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.recordPath(a.Job) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.recordPath(a.Job))
}

// forget drops a job that has ended (on the ledger) from the live runs and
// from Dir.
func (r *Requester) forget(job ledger.JobID) {
	if r.Dir == "" {
		return
	}
	if err := os.Remove(r.recordPath(job)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("removing the record of an ended job", "job", job, "err", err)
	}
}

// params reads the chain's rules once (they are fixed at genesis).
func (r *Requester) params(ctx context.Context) (ledger.Params, error) {
	r.mu.Lock()
	p := r.rules
	r.mu.Unlock()
	if p != nil {
		return *p, nil
	}
	got, err := r.Client.Params(ctx)
	if err != nil {
		return ledger.Params{}, err
	}
	r.mu.Lock()
	r.rules = &got
	r.mu.Unlock()
	return got, nil
}

// Resume picks up the jobs this node requested that are still running on
// the ledger and have a record in Dir (a requester that crashed or was
// stopped mid-job): it follows them again, asks their workers to send the
// reports of rounds the ledger has not receipted yet, and settles as
// before. Records of jobs that ended are removed. It returns the resumed
// runs; each then runs until its job ends or ctx does.
func (r *Requester) Resume(ctx context.Context) ([]*Run, error) {
	if r.Dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var runs []*Run
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || filepath.Ext(name) != ".json" {
			continue
		}
		id, err := ledger.ParseJobID(name[:len(name)-len(".json")])
		if err != nil {
			continue
		}
		run, err := r.resume(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", id, err))
			continue
		}
		if run != nil {
			runs = append(runs, run)
		}
	}
	return runs, errors.Join(errs...)
}

func (r *Requester) resume(ctx context.Context, id ledger.JobID) (*Run, error) {
	data, err := os.ReadFile(r.recordPath(id))
	if err != nil {
		return nil, err
	}
	var rec record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	a := rec.Announce
	if a.Job != id || a.Requester != r.Node.ID() {
		return nil, fmt.Errorf("record names job %s of %s", a.Job, a.Requester.Short())
	}
	job, err := r.Client.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if !job.Open() {
		r.forget(id)
		return nil, nil
	}
	o := SubmitOptions{Model: a.Model, Standby: rec.Standby, EvalBatches: a.EvalBatches, ReportTimeout: time.Duration(rec.ReportTimeout)}
	if o.ReportTimeout <= 0 {
		o.ReportTimeout = 20 * time.Second
	}
	run := newRun(r, id, a.Spec, o, a.Active, a.Standby)
	run.PostedHeight = job.PostedHeight
	run.Placement = &market.Placement{Job: string(id)} // the placement record was not kept
	// Standby workers already leased have joined.
	for _, l := range job.Leases {
		if l.Active() && slices.Contains(a.Standby, l.Provider) {
			run.joined = append(run.joined, l.Provider)
		}
	}
	r.mu.Lock()
	if _, running := r.runs[id]; running {
		r.mu.Unlock()
		return nil, nil
	}
	r.runs[id] = run
	r.mu.Unlock()
	r.log.Info("resuming a job after a restart", "job", id, "rounds_settled", job.RoundsSettled, "next_round", job.NextRound())
	run.start(ctx)
	next := job.NextRound()
	for _, w := range run.workers() {
		if err := send(ctx, r.Node, w, ProtocolJob, typeResend, Resend{Job: id, From: next}); err != nil {
			r.log.Warn("asking a worker for its reports again", "job", id, "worker", w.Short(), "err", err)
		}
	}
	return run, nil
}

// Following reports whether this requester follows job id.
func (r *Requester) Following(id ledger.JobID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.runs[id]
	return ok
}
