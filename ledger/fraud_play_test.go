package ledger

import (
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// TestPersistentCheaterEndsBelowAnHonestProvider plays a whole job on the
// ledger: p1 never does the work it commits to, p2 always does. Every
// round is drawn for audit from the ledger's beacon at the rate the policy
// gives each worker's on-ledger record and stake; the committee files a
// fraud proof when an audit of p1 comes up. At the end p1's money (balance
// + bonded stake) is below p2's.
func TestPersistentCheaterEndsBelowAnHonestProvider(t *testing.T) {
	f := newFraudSetupJob(t, gridmind.JobSpec{Name: "play", Workers: 2, Rounds: 12, InnerSteps: 50, Budget: 24 * grid, MaxPricePerUnit: 10})
	policy := verify.DefaultPolicy()
	j, _ := f.state().Job(f.job)
	payPerWorker := j.pot() / 2
	audits, proofs := 0, 0
	for round := uint64(0); round < 12; round++ {
		var workers []gridmind.NodeID
		for _, name := range []string{"p1", "p2"} {
			if jj, _ := f.state().Job(f.job); jj.activeLease(f.id(name)) {
				workers = append(workers, f.id(name))
			}
		}
		f.must("req", receipt(f.job, round, workers...))
		f.emptyBlocks(1) // the draw's beacon
		for _, worker := range workers {
			name := f.names[worker]
			rep := f.state().Reputation(worker)
			rec := verify.Record{Rounds: rep.RoundsFinished, Faults: rep.Slashes}
			rate := policy.RateFor(rec, payPerWorker, f.bonded(name), f.state().Params().DisputeSlashPPM)
			c := f.commitmentFor(name, round)
			seed, committee, part, ok := f.state().AuditDraw(f.job, round, worker, &c)
			if !ok {
				t.Fatalf("round %d: no draw", round)
			}
			if !verify.Audited(seed, worker, rate) {
				continue
			}
			audits++
			if name != "p1" {
				continue // an honest round re-executes to what was signed: nothing to file
			}
			var auditors []string
			for _, id := range committee[:FraudParams.Quorum] {
				auditors = append(auditors, f.names[id])
			}
			f.must(auditors[0], &FraudProof{Proof: verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(auditors, honestOutput))}})
			proofs++
		}
		f.settleable(f.job, round)
		f.must("req", &SettleRound{Job: f.job, Round: round})
	}
	money := func(name string) gridmind.Amount { return f.balance(name) + f.bonded(name) }
	t.Logf("%d audits, %d fraud proofs; cheater ends with %s, honest provider with %s", audits, proofs, money("p1"), money("p2"))
	if proofs == 0 {
		t.Fatal("the cheater was never caught in 12 rounds at a new node's audit rate")
	}
	if money("p1") >= money("p2") {
		t.Fatalf("cheater ends with %s, honest provider with %s", money("p1"), money("p2"))
	}
	if !f.state().Excluded(f.job, f.id("p1")) {
		t.Fatal("the cheater was not excluded from the job")
	}
}
