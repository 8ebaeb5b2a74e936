package jobs_test

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/train"
)

// A worker that breaks the round protocol (it sends, signed, "combined"
// results for parts it does not reduce) is proved by the honest workers'
// impersonation evidence, which they file on the ledger themselves
// (ledger.RoundEvidence): its stake is slashed and its lease on the job
// ends, with no authorized slasher involved, and no honest worker is
// slashed.
func TestProtocolEvidenceIsFiledAndSlashes(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4-worker job on a local network (about half a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	net := startNet(ctx, t, localnet.Options{Providers: 4, Seed: 31, SettleDelayBlocks: 20, ProviderStake: 40 * gridmind.UnitsPerGRID}, slog.LevelInfo)
	adv, key := net.Providers[0], net.Keys[0]
	advID := adv.Node.ID()
	var all []gridmind.NodeID
	for _, p := range net.Providers {
		all = append(all, p.Node.ID())
	}
	var job atomic.Value // the job's name, once known: the forgeries sign it
	forged := atomic.Int64{}
	adv.Provider.SetTamper(func(m train.Message) []train.Message {
		out := []train.Message{m}
		name, _ := job.Load().(string)
		if name == "" || m.Type != train.MsgPart || m.Payload == nil {
			return out
		}
		fake := train.Message{Type: train.MsgReduced, From: advID, Round: m.Round, Part: m.Part, Membership: m.Membership,
			Contributors: []gridmind.NodeID{advID}, Payload: m.Payload}
		train.SignReduced(key, name, advID, &fake)
		for _, id := range all {
			if id != advID && id != m.To {
				f := fake
				f.To = id
				out = append([]train.Message{f}, out...)
				forged.Add(1)
			}
		}
		return out
	})
	model := gomlx.DefaultConfig(gomlx.MLP)
	model.Hidden, model.EmbedDim, model.Context, model.BatchSize = 16, 4, 8, 4
	spec := gridmind.JobSpec{Name: "forged", Model: "mlp", Workers: 4, Rounds: 10, InnerSteps: 8, Budget: 20 * gridmind.UnitsPerGRID, Seed: 7}
	run, err := net.Requester.Requester.Submit(ctx, spec, jobs.SubmitOptions{Model: model, EvalBatches: 1, ReportTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	job.Store(string(run.ID))
	c := net.Providers[1].Chain
	var slashes []ledger.SlashRecord
	for !slices.ContainsFunc(slashes, func(s ledger.SlashRecord) bool { return s.Offender == advID }) {
		select {
		case <-ctx.Done():
			t.Fatalf("no slash of the forger on the ledger (%d forgeries sent)", forged.Load())
		case <-time.After(200 * time.Millisecond):
		}
		if slashes, err = c.Slashes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range slashes {
		if s.Offender != advID {
			t.Errorf("honest provider %s was slashed", s.Offender.Short())
		}
	}
	j, err := c.Job(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range j.Leases {
		if l.Provider == advID && l.Active() {
			t.Error("the forger's lease is still active after its evidence was filed")
		}
	}
	t.Logf("%d forged results sent; slashed: %+v", forged.Load(), slashes)
}
