package jobs_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

// TestShirkingWorkerIsAuditedProvenAndSlashed runs a job on a local
// network (CometBFT validator in process, libp2p on loopback, GoMLX) in
// which one worker trains half its inner steps and scales its Δ up, which
// the reducers' screen lets through. Every provider audits every round it
// is drawn to lead (rate forced to 100%): the honest workers' rounds are
// re-executed bit for bit and cleared; the shirker's do not match, the
// committee agrees, and the fraud proof on the ledger slashes its stake,
// records the slash and ends its lease on the job.
func TestShirkingWorkerIsAuditedProvenAndSlashed(t *testing.T) {
	if testing.Short() {
		t.Skip("a job with audits takes about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 6, Seed: 11, SettleDelayBlocks: 150, ProviderStake: 40 * gridmind.UnitsPerGRID}, slog.LevelInfo)
	cheater := net.Providers[0].Node.ID()
	var mu sync.Mutex
	var events []jobs.AuditEvent
	proven := make(chan jobs.AuditEvent, 1)
	for i, p := range net.Providers {
		if i == 0 {
			p.Provider.SetShirk(4)
		}
		p.Provider.SetAuditRate(verify.PPM)
		p.Provider.OnAudit(func(e jobs.AuditEvent) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			t.Logf("audit %s: job round %d worker %s by %s (%d agreeing, %s) %s", e.Kind, e.Round, e.Worker.Short(), e.Auditor.Short(), e.Agreeing, e.Took.Round(time.Millisecond), e.Text)
			if e.Kind == jobs.AuditProven {
				select {
				case proven <- e:
				default:
				}
			}
		})
	}
	before, err := net.Providers[1].Chain.Account(ctx, cheater)
	if err != nil {
		t.Fatal(err)
	}
	model := gomlx.DefaultConfig(gomlx.MLP)
	model.Hidden, model.EmbedDim, model.Context, model.BatchSize = 32, 8, 8, 8
	// The workers train ahead (overlap), so the rounds audited were
	// trained from each worker's own estimate of the round's weights, not
	// from the round's state: re-execution must reproduce them all the
	// same (diloco's TestWorkersCommitAndAuditorsReproduce covers both
	// modes on the in-memory network). With elastic steps a worker that
	// waits for the slowest trains on and commits to more than H steps;
	// the auditors re-run those too.
	spec := gridmind.JobSpec{Name: "audited", Model: "mlp", Workers: 6, Rounds: 6, InnerSteps: 8, Budget: 60 * gridmind.UnitsPerGRID, Seed: 5, Overlap: true, ElasticSteps: true}
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{Model: model, EvalBatches: 1, ReportTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var e jobs.AuditEvent
	select {
	case e = <-proven:
	case <-ctx.Done():
		t.Fatal("no fraud proven before the deadline")
	}
	if e.Worker != cheater || e.Agreeing < 3 || e.Height == 0 || e.Text != verify.Fraud.String() {
		t.Fatalf("fraud proven against %s with %d agreeing at height %d (%q); want the shirker %s", e.Worker.Short(), e.Agreeing, e.Height, e.Text, cheater.Short())
	}
	c := net.Providers[1].Chain
	after, err := c.Account(ctx, cheater)
	if err != nil {
		t.Fatal(err)
	}
	if after.Stake >= before.Stake {
		t.Errorf("the shirker's stake went from %s to %s", before.Stake, after.Stake)
	}
	slashes, err := c.Slashes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slashes {
		if s.Offender != cheater {
			t.Errorf("an honest provider %s was slashed", s.Offender.Short())
		}
	}
	if !slices.ContainsFunc(slashes, func(s ledger.SlashRecord) bool { return s.Offender == cheater }) {
		t.Error("no slash of the shirker on the ledger")
	}
	j, err := c.Job(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range j.Leases {
		if l.Provider == cheater && l.Active() {
			t.Error("the shirker's lease is still active after the proof")
		}
	}
	if _, err := run.Wait(ctx); err != nil {
		t.Logf("the job after the exclusion: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	cleared := 0
	for _, e := range events {
		switch {
		case e.Kind == jobs.AuditCleared && e.Worker == cheater:
			t.Errorf("the shirker's round %d was cleared by %s", e.Round, e.Auditor.Short())
		case e.Kind == jobs.AuditCleared:
			cleared++
		case e.Kind == jobs.AuditMismatch && e.Worker != cheater:
			t.Errorf("an honest worker's round %d did not reproduce at %s", e.Round, e.Auditor.Short())
		}
	}
	if cleared == 0 {
		t.Error("no honest round was audited and cleared")
	}
}
