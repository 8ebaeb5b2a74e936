package jobs_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/verify"
)

// TestExcludedCheaterIsBannedByHonestWorkers: a shirking worker that does
// not stop when a fraud proof ends its lease (it keeps training and
// sending, as a cheater need not run this code) is refused by the honest
// workers once the ledger shows the exclusion: the last rounds' members,
// as every honest worker reports them, leave it out, and the job finishes.
func TestExcludedCheaterIsBannedByHonestWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("a job with audits takes about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 6, Seed: 11, SettleDelayBlocks: 150, ProviderStake: 40 * gridmind.UnitsPerGRID}, slog.LevelInfo)
	cheater := net.Providers[0].Node.ID()
	proven := make(chan jobs.AuditEvent, 1)
	for i, p := range net.Providers {
		if i == 0 {
			p.Provider.SetShirk(4)
			p.Provider.SetStubborn(true)
		}
		p.Provider.LeaseCheckEvery = 500 * time.Millisecond
		p.Provider.SetAuditRate(verify.PPM)
		p.Provider.OnAudit(func(e jobs.AuditEvent) {
			if e.Kind == jobs.AuditProven {
				select {
				case proven <- e:
				default:
				}
			}
		})
	}
	model := gomlx.DefaultConfig(gomlx.MLP)
	model.Hidden, model.EmbedDim, model.Context, model.BatchSize = 32, 8, 8, 8
	// A long job: audits lag the rounds (the receipt, the next block, the
	// re-run, the committee), and the test watches the rounds after the
	// proof, then stops.
	spec := gridmind.JobSpec{Name: "banned", Model: "mlp", Workers: 6, Rounds: 200, InnerSteps: 8, Budget: 400 * gridmind.UnitsPerGRID, Seed: 5}
	roundsDone := make(chan *jobs.RoundResult, 512)
	events := func(e jobs.Event) {
		if e.Kind == jobs.EventRound && e.Round != nil {
			select {
			case roundsDone <- e.Round:
			default: // the test reads them all; a full buffer means it has stopped
			}
		}
	}
	if _, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{Model: model, EvalBatches: 1, ReportTimeout: 15 * time.Second, Events: events}); err != nil {
		t.Fatal(err)
	}
	var e jobs.AuditEvent
	select {
	case e = <-proven:
	case <-ctx.Done():
		t.Fatal("no fraud proven before the deadline")
	}
	if e.Worker != cheater {
		t.Fatalf("fraud proven against %s, want the shirker %s", e.Worker.Short(), cheater.Short())
	}
	t.Logf("fraud proven in round %d at height %d", e.Round, e.Height)
	// Rounds reported before the proof counted the cheater; the round in
	// progress when it landed may too. Two rounds later every honest
	// worker has read the exclusion (it checks every 500 ms) and refuses it.
	before := 0
	for drained := false; !drained; {
		select {
		case r := <-roundsDone:
			for id, rep := range r.Reports {
				if id != cheater && slices.Contains(rep.Members, cheater) {
					before++
					break
				}
			}
		default:
			drained = true
		}
	}
	if before == 0 {
		t.Fatal("no round before the proof counted the cheater: the test shows nothing")
	}
	// Every honest worker reads the exclusion within 500 ms and bans the
	// cheater; the rounds in flight then still count it. Once a round
	// leaves it out, every later one must.
	excludedFrom := -1
	for after := 1; after <= 60 && (excludedFrom < 0 || after <= excludedFrom+3); after++ {
		var r *jobs.RoundResult
		select {
		case r = <-roundsDone:
		case <-ctx.Done():
			t.Fatalf("round %d after the proof never came", after)
		}
		var with []string
		honest := 0
		for id, rep := range r.Reports {
			if id == cheater {
				continue
			}
			honest++
			if slices.Contains(rep.Members, cheater) {
				with = append(with, id.Short())
			}
		}
		t.Logf("round %d (%d after the proof): %d honest reports, %d counting the cheater", r.Round, after, honest, len(with))
		switch {
		case excludedFrom < 0 && honest > 0 && len(with) == 0:
			excludedFrom = after
		case excludedFrom >= 0 && (honest == 0 || len(with) > 0):
			t.Errorf("round %d: %d honest reports, counting the cheater again: %v", r.Round, honest, with)
		}
	}
	if excludedFrom < 0 {
		t.Fatal("60 rounds after the proof the honest workers still count the excluded cheater")
	}
}
