package ledger

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// noFees is DefaultParams without the transaction fee, so that amounts in
// tests about something else read simply (TestFees covers fees).
func noFees() Params {
	p := DefaultParams()
	p.TxFee = 0
	return p
}

func TestTransfers(t *testing.T) {
	h := newHarness(t, noFees(), Options{}, map[string]gridmind.Amount{"alice": 100 * grid, "bob": 5 * grid})
	alice, bob, carol := h.id("alice"), h.id("bob"), h.id("carol")

	h.must("alice", &Transfer{To: bob, Amount: 30 * grid, Memo: "hi"})
	h.must("alice", &Transfer{To: carol, Amount: 1}) // creates carol
	h.refuse(CodeInsufficient, "bob", &Transfer{To: alice, Amount: 36 * grid})
	h.refuse(CodeNotFound, "dave", &Transfer{To: alice, Amount: 1}) // never funded

	for _, c := range []struct {
		who  string
		want gridmind.Amount
	}{{"alice", 70*grid - 1}, {"bob", 35 * grid}, {"carol", 1}} {
		if got := h.balance(c.who); got != c.want {
			t.Errorf("%s: balance %s, want %s", c.who, fmtAmount(got), fmtAmount(c.want))
		}
	}
	if n := h.state().Account(alice).Nonce; n != 2 {
		t.Errorf("alice nonce %d, want 2", n)
	}
}

func TestNonces(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 100 * grid})
	bob := h.id("bob")
	first := h.sign("alice", &Transfer{To: bob, Amount: 1})
	h.begin("")
	if r := h.applyRaw(first); r.Code != CodeOK {
		t.Fatalf("first: %s", r.Log)
	}
	h.nonces[h.id("alice")]++
	if r := h.applyRaw(first); r.Code != CodeBadNonce || !strings.Contains(r.Log, "already used") {
		t.Fatalf("replay in the same block: %s %s", r.Code, r.Log)
	}
	h.end()
	h.begin("")
	if r := h.applyRaw(first); r.Code != CodeBadNonce {
		t.Fatalf("replay in a later block: %s %s", r.Code, r.Log)
	}
	h.nonces[h.id("alice")] += 5
	if r := h.applyRaw(h.sign("alice", &Transfer{To: bob, Amount: 1})); r.Code != CodeBadNonce || !strings.Contains(r.Log, "ahead") {
		t.Fatalf("gap: %s %s", r.Code, r.Log)
	}
	h.end()
}

func TestStakeAndUnbonding(t *testing.T) {
	p := noFees()
	p.UnbondingBlocks = 3
	p.MaxUnbonding = 2
	h := newHarness(t, p, Options{}, map[string]gridmind.Amount{"alice": 100 * grid})
	alice := h.id("alice")

	h.must("alice", &Stake{Amount: 60 * grid}) // block 1
	h.refuse(CodeInsufficient, "alice", &Stake{Amount: 41 * grid})
	h.refuse(CodeInsufficient, "alice", &Unstake{Amount: 61 * grid})
	h.must("alice", &Unstake{Amount: 10 * grid}) // block 4: releases at 7
	h.must("alice", &Unstake{Amount: 5 * grid})  // block 5: releases at 8
	h.refuse(CodeInvalid, "alice", &Unstake{Amount: 1})

	a := h.state().Account(alice)
	if a.Balance != 40*grid || a.Stake != 45*grid || a.UnbondingTotal != 15*grid {
		t.Fatalf("after unstaking: %+v", a)
	}
	h.emptyBlocks(1) // block 7: first release
	a = h.state().Account(alice)
	if a.Balance != 50*grid || a.UnbondingTotal != 5*grid {
		t.Fatalf("at height 7: balance %s unbonding %s", a.Balance, a.UnbondingTotal)
	}
	h.begin("")
	ev := h.fork.metaRef().Height
	h.end()
	if a = h.state().Account(alice); a.Balance != 55*grid || len(a.Unbonding) != 0 || ev != 8 {
		t.Fatalf("at height 8: %+v", a)
	}
}

func TestBlockRewardIsMinted(t *testing.T) {
	p := DefaultParams()
	p.BlockReward = 2 * grid
	h := newHarness(t, p, Options{}, map[string]gridmind.Amount{"alice": 10 * grid})
	for i := 0; i < 3; i++ {
		h.begin("VAL0")
		h.end()
	}
	h.begin("UNKNOWN") // not a validator: nothing minted
	h.end()
	if got := h.balance("validator"); got != 6*grid {
		t.Fatalf("validator balance %s, want 6 GRID", got)
	}
	if s := h.state().SupplyOf(); s.Minted != 6*grid || s.GenesisSupply != 10*grid {
		t.Fatalf("supply %+v", s)
	}
}

// jobHarness funds a requester and registers three staked providers. Fees
// are off here (TestFees covers them) so amounts read simply.
func jobHarness(t *testing.T, opts Options) *harness {
	p := DefaultParams()
	p.MinProviderStake = 10 * grid
	p.SettleDelayBlocks = 6
	p.MaxIdleBlocks = 20
	p.TxFee = 0
	p.Slashers = []gridmind.NodeID{idOf(testKey("judge"))}
	h := newHarness(t, p, opts, map[string]gridmind.Amount{
		"req": 1000 * grid, "p1": 100 * grid, "p2": 100 * grid, "p3": 100 * grid, "judge": 1,
	})
	for _, name := range []string{"p1", "p2", "p3"} {
		h.must(name, &Stake{Amount: 20 * grid})
		h.must(name, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 5, Region: "eu"}})
	}
	return h
}

var testSize = JobSize{ModelParams: 1_000_000, TokensPerStep: 2_000}

func (h *harness) postJob(spec gridmind.JobSpec) JobID {
	h.t.Helper()
	want := JobIDFor(testChain, h.id("req"), h.nonces[h.id("req")])
	r := h.must("req", &PostJob{Spec: spec, Size: testSize})
	if JobID(r.Data) != want {
		h.t.Fatalf("job id %s, want %s", r.Data, want)
	}
	return want
}

func TestJobLifecycle(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2, p3 := h.id("p1"), h.id("p2"), h.id("p3")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, InnerSteps: 50, Budget: 40 * grid, MaxPricePerUnit: 10})
	if got := h.balance("req"); got != 960*grid {
		t.Fatalf("requester after escrow: %s", got)
	}

	// Leases: only the requester, only with the provider's acceptance.
	h.refuse(CodeUnauthorized, "p1", h.lease(job, "req", "p1", 0))
	h.refuse(CodeNotFound, "req", h.lease(job, "req", "judge", 0))
	forged := h.lease(job, "req", "p1", 0)
	forged.Acceptance = SignLeaseAcceptance(h.key("req"), testChain, job, h.id("req"), 0, forged.ValidUntil)
	h.refuse(CodeBadSignature, "req", forged)
	moved := h.lease(job, "req", "p1", 0)
	moved.FromRound = 1 // the provider agreed to round 0, not 1
	h.refuse(CodeBadSignature, "req", moved)
	expired := &AssignLease{Job: job, Provider: p1, ValidUntil: 1,
		Acceptance: SignLeaseAcceptance(h.key("p1"), testChain, job, h.id("req"), 0, 1)}
	h.refuse(CodeInvalid, "req", expired)
	h.must("req", h.lease(job, "req", "p1", 0))
	h.refuse(CodeConflict, "req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.refuse(CodeInvalid, "req", h.lease(job, "req", "p3", 0)) // job has its 2 workers

	// A leased provider cannot unstake below the minimum.
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 11 * grid})

	// Receipts: the requester's, or a majority of the leased providers'.
	h.refuse(CodeUnauthorized, "p1", receipt(job, 0, p1))                 // one provider alone
	h.refuse(CodeUnauthorized, "p1", h.signed(receipt(job, 0, p1), "p1")) // one signature of two leases
	h.refuse(CodeInvalid, "req", receipt(job, 0, p1, p3))                 // p3 holds no lease
	h.refuse(CodeInvalid, "req", receipt(job, 1, p1))                     // ahead of round 0
	h.refuse(CodeInvalid, "req", receipt(job, 4, p1))
	h.must("req", receipt(job, 0, p1, p2))
	// Settlement waits for the dispute window, for everyone.
	h.refuse(CodeInvalid, "req", &SettleRound{Job: job, Round: 0})
	h.refuse(CodeConflict, "req", receipt(job, 0, p2))
	// Round 1 carried by both providers' signatures, relayed by anyone;
	// a signature over another contributor list does not count.
	mixed := h.signed(receipt(job, 1, p1), "p1", "p2")
	mixed.Signatures[1].Sig = h.signed(receipt(job, 1, p1, p2), "p1", "p2").Signatures[1].Sig
	h.refuse(CodeBadSignature, "p3", mixed)
	h.refuse(CodeInvalid, "p1", h.signed(receipt(job, 1, p1), "p1", "p3")) // p3 has no lease to sign with
	h.must("p3", h.signed(receipt(job, 1, p1), "p1", "p2"))
	if r, _ := h.state().Receipt(job, 1); len(r.Signers) != 2 || r.Participants[0].Work != (&Job{Spec: gridmind.JobSpec{InnerSteps: 50}, Size: testSize}).WorkPerRound() {
		t.Fatalf("receipt of round 1: %+v", r)
	}

	// Settlement goes in order.
	h.settleable(job, 1)
	h.refuse(CodeInvalid, "p3", &SettleRound{Job: job, Round: 1})
	h.must("p3", &SettleRound{Job: job, Round: 0}) // anyone
	h.refuse(CodeConflict, "req", &SettleRound{Job: job, Round: 0})
	// Round 0: pot 10 GRID, equal work, 5 each.
	if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 85*grid || b2 != 85*grid {
		t.Fatalf("after round 0: p1 %s, p2 %s", b1, b2)
	}
	h.must("p2", &SettleRound{Job: job, Round: 1})
	if b1 := h.balance("p1"); b1 != 95*grid {
		t.Fatalf("after round 1: p1 %s", b1)
	}
	if rep := h.state().Reputation(p2); rep.RoundsFinished != 1 || rep.RoundsFailed != 1 {
		t.Fatalf("p2 reputation %+v: want 1 finished (round 0), 1 failed (round 1)", rep)
	}

	// Round 2 receipted, then the job is cancelled: the leases end and
	// the unreceipted round's pot is refunded at once; round 2 is still in
	// its dispute window, so its pot is held until the window closes and
	// then paid without anyone asking.
	h.must("req", receipt(job, 2, p1, p2))
	h.refuse(CodeUnauthorized, "p1", &CancelJob{Job: job})
	r := h.must("req", &CancelJob{Job: job})
	j, _ := h.state().Job(job)
	if j.State != JobCancelled || j.Escrow != 10*grid || j.Held() != 10*grid || j.Paid != 20*grid || j.Refunded != 10*grid || j.activeLeases() != 0 {
		t.Fatalf("cancelled job: %+v", j)
	}
	if b := h.balance("req"); b != 970*grid {
		t.Fatalf("requester after refund: %s", b)
	}
	var kinds []string
	for _, e := range r.Events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "refunded" {
		t.Fatalf("cancel events %s", got)
	}
	h.settleable(job, 2)
	h.emptyBlocks(1) // BeginBlock settles the held round
	j, _ = h.state().Job(job)
	if j.State != JobCancelled || j.Escrow != 0 || j.Paid != 30*grid || j.Refunded != 10*grid || len(j.Pending) != 0 {
		t.Fatalf("cancelled job after its held round: %+v", j)
	}
	if p, _ := h.state().Provider(p1); p.ActiveLeases != 0 {
		t.Fatalf("p1 still has %d active leases", p.ActiveLeases)
	}
	h.refuse(CodeConflict, "req", &CancelJob{Job: job})
	h.refuse(CodeConflict, "req", h.lease(job, "req", "p3", 0))
	h.must("p1", &Unstake{Amount: 20 * grid}) // no active lease any more
	if got := len(h.state().Receipts(job)); got != 3 {
		t.Fatalf("%d receipts, want 3", got)
	}
	if got := h.state().LeasesOf(p1); len(got) != 1 || got[0].Active() {
		t.Fatalf("leases of p1: %+v", got)
	}
}

func TestJobCompletesAndMultiplierHoldsBack(t *testing.T) {
	// p2's multiplier is 0.5; what it does not get stays in escrow and
	// returns to the requester when the last round completes the job.
	p2 := idOf(testKey("p2"))
	h := jobHarness(t, Options{Multiplier: func(r Reputation) uint64 {
		if r.Node == p2 {
			return PPM / 2
		}
		return 5 * PPM // clamped to 1.0
	}})
	p1 := h.id("p1")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 2, Budget: 21 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	for round := uint64(0); round < 2; round++ {
		h.must("req", receipt(job, round, p1, p2))
		h.settleable(job, round)
		h.must("req", &SettleRound{Job: job, Round: round})
	}
	// Pot = 21/2 = 10.5 GRID per round; each gets 5.25, p2 half of that.
	j, _ := h.state().Job(job)
	if j.State != JobCompleted {
		t.Fatalf("job state %s, want completed", j.State)
	}
	wantP1, wantP2 := 2*5_250_000, 2*2_625_000
	if got := h.balance("p1") - 80*grid; got != gridmind.Amount(wantP1) {
		t.Errorf("p1 earned %s, want %s", fmtAmount(got), fmtAmount(gridmind.Amount(wantP1)))
	}
	if got := h.balance("p2") - 80*grid; got != gridmind.Amount(wantP2) {
		t.Errorf("p2 earned %s, want %s", fmtAmount(got), fmtAmount(gridmind.Amount(wantP2)))
	}
	if j.Refunded != 21*grid-gridmind.Amount(wantP1+wantP2) {
		t.Errorf("refunded %s", j.Refunded)
	}
	r, _ := h.state().Receipt(job, 1)
	if r.Payments[0].MultiplierPPM+r.Payments[1].MultiplierPPM != PPM+PPM/2 {
		t.Errorf("payments %+v", r.Payments)
	}
	h.refuse(CodeConflict, "req", receipt(job, 1, p1))
}

func TestStakeMustExceedARoundsPot(t *testing.T) {
	h := jobHarness(t, Options{})
	// One round pays 20 GRID; the providers stake 20: not more.
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 1, Rounds: 2, Budget: 40 * grid})
	r := h.refuse(CodeInsufficient, "req", h.lease(job, "req", "p1", 0))
	if !strings.Contains(r.Log, "pot") {
		t.Fatalf("refusal does not say why: %s", r.Log)
	}
	h.must("p1", &Stake{Amount: 1})
	h.must("req", h.lease(job, "req", "p1", 0))
	// While leased, that stake stays at risk: no unstaking below it.
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 1})
	h.must("req", &CancelJob{Job: job})
	h.must("p1", &Unstake{Amount: 1})
}

func TestStandbyRecordStartsWhenItJoins(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2, p3 := h.id("p1"), h.id("p2"), h.id("p3")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 3, Rounds: 4, Budget: 40 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.must("req", receipt(job, 0, p1, p2))
	h.refuse(CodeInvalid, "req", h.lease(job, "req", "p3", 0)) // round 0 is behind us
	h.must("req", h.lease(job, "req", "p3", 2))                // joins at round 2
	h.must("req", receipt(job, 1, p1, p2))
	h.must("req", receipt(job, 2, p1, p2))
	for round := uint64(0); round < 3; round++ {
		h.settleable(job, round)
		h.must("req", &SettleRound{Job: job, Round: round})
	}
	if rep := h.state().Reputation(p3); rep.RoundsFailed != 1 {
		t.Fatalf("standby p3 failed %d rounds, want 1 (round 2 only)", rep.RoundsFailed)
	}
}

func TestCloseJobWhenIdle(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2 := h.id("p1"), h.id("p2")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, Budget: 40 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.must("req", receipt(job, 0, p1, p2))
	h.settleable(job, 0)
	h.must("req", &SettleRound{Job: job, Round: 0})
	h.must("req", receipt(job, 1, p1, p2))
	// The requester vanishes. Until the idle limit nobody can close it.
	j, _ := h.state().Job(job)
	for h.height+1 < j.ProgressHeight+20 {
		h.refuse(CodeInvalid, "judge", &CloseJob{Job: job})
	}
	r := h.must("judge", &CloseJob{Job: job}) // a stranger with 1 µGRID
	j, _ = h.state().Job(job)
	if j.State != JobExpired || j.Escrow != 0 || j.Paid != 20*grid || j.Refunded != 20*grid || j.activeLeases() != 0 {
		t.Fatalf("closed job: %+v (events %+v)", j, r.Events)
	}
	if b := h.balance("req"); b != 980*grid {
		t.Fatalf("requester after the refund: %s", b)
	}
	if b := h.balance("p1"); b != 90*grid {
		t.Fatalf("p1 after two paid rounds: %s", b)
	}
	h.refuse(CodeConflict, "judge", &CloseJob{Job: job})
	h.refuse(CodeNotFound, "judge", &CloseJob{Job: JobIDFor(testChain, p1, 99)})
}

func TestCloseJobAfterDeadline(t *testing.T) {
	h := jobHarness(t, Options{})
	h.beginAt(1_000)
	h.end()
	r := h.apply("req", &PostJob{Spec: gridmind.JobSpec{Name: "late", Workers: 1, Rounds: 1, Budget: grid, DeadlineUnix: 1_000}, Size: testSize})
	if r.Code != CodeInvalid {
		t.Fatalf("a job whose deadline passed was posted: %s %s", r.Code, r.Log)
	}
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 1, Rounds: 1, Budget: grid, DeadlineUnix: 1_500})
	h.beginAt(1_499)
	h.refuse(CodeInvalid, "p1", &CloseJob{Job: job})
	h.end()
	h.beginAt(1_200) // a block time going back is taken as the last one
	h.refuse(CodeInvalid, "p1", &CloseJob{Job: job})
	h.end()
	h.beginAt(1_500)
	h.must("p1", &CloseJob{Job: job})
	h.end()
	if j, _ := h.state().Job(job); j.State != JobExpired || j.Refunded != grid {
		t.Fatalf("job after its deadline: %+v", j)
	}
}

func TestDisputeWithholdsPaymentAndSlashes(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2, p3 := h.id("p1"), h.id("p2"), h.id("p3")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 2, Budget: 20 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.must("req", receipt(job, 0, p1, p2))
	evidence := []byte("p1's delta of round 0 does not re-execute")
	dispute := &Dispute{Job: job, Round: 0, Offender: p1, Evidence: evidence, Reason: "re-execution"}
	h.refuse(CodeUnauthorized, "p2", dispute)
	h.refuse(CodeInvalid, "judge", &Dispute{Job: job, Round: 0, Offender: p3, Evidence: evidence})
	h.refuse(CodeNotFound, "judge", &Dispute{Job: job, Round: 1, Offender: p1, Evidence: evidence})
	h.must("judge", dispute)
	h.refuse(CodeConflict, "judge", dispute)
	if a := h.state().Account(p1); a.Stake != 0 {
		t.Fatalf("p1 stake after the dispute: %s", a.Stake)
	}
	h.settleable(job, 0)
	h.must("req", &SettleRound{Job: job, Round: 0})
	if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 80*grid || b2 != 85*grid {
		t.Fatalf("after round 0: p1 %s (withheld), p2 %s", b1, b2)
	}
	// Round 1: evidence after the window comes too late.
	h.must("req", receipt(job, 1, p2))
	h.settleable(job, 1)
	h.refuse(CodeInvalid, "judge", &Dispute{Job: job, Round: 1, Offender: p2, Evidence: []byte("late")})
	h.must("p2", &SettleRound{Job: job, Round: 1})
	j, _ := h.state().Job(job)
	if j.State != JobCompleted || j.Paid != 15*grid || j.Refunded != 5*grid {
		t.Fatalf("job: %+v", j)
	}
	if s := h.state().SupplyOf(); s.SlashPool != 20*grid {
		t.Fatalf("slash pool %s", s.SlashPool)
	}
}

func TestFees(t *testing.T) {
	p := DefaultParams()
	p.TxFee = 1000
	h := newHarness(t, p, Options{}, map[string]gridmind.Amount{"alice": 10 * grid, "bob": 500})
	h.must("alice", &Transfer{To: h.id("bob"), Amount: grid})
	if got := h.balance("alice"); got != 9*grid-1000 {
		t.Fatalf("alice paid %s", 10*grid-got)
	}
	// bob cannot pay the fee; a refused transaction costs nothing.
	h.refuse(CodeInsufficient, "alice", &Transfer{To: h.id("bob"), Amount: 9 * grid})
	if got := h.balance("alice"); got != 9*grid-1000 {
		t.Fatalf("a refused transfer cost alice %s", 9*grid-1000-got)
	}
	h.must("bob", &Transfer{To: h.id("alice"), Amount: grid - 1000})
	r := h.refuse(CodeInsufficient, "bob", &Stake{Amount: 1})
	if !strings.Contains(r.Log, "fee") {
		t.Fatalf("refusal does not name the fee: %s", r.Log)
	}
	if s := h.state().SupplyOf(); s.Burned != 2000 {
		t.Fatalf("burned %d", s.Burned)
	}
}

func TestUptimeAttestations(t *testing.T) {
	h := jobHarness(t, Options{})
	p2, p3 := h.id("p2"), h.id("p3")
	obs := func(epoch uint64) *AttestUptime {
		o := []Observation{{Node: p2, Seen: 9, Expected: 10}, {Node: p3, Seen: 10, Expected: 10}}
		if o[0].Node > o[1].Node {
			o[0], o[1] = o[1], o[0]
		}
		return &AttestUptime{Epoch: epoch, Observations: o}
	}
	epoch := func() uint64 { return uint64(h.height+1) / uint64(h.state().Params().EpochBlocks) }
	h.refuse(CodeInsufficient, "req", obs(epoch())) // no stake
	h.refuse(CodeInvalid, "p1", obs(epoch()+1))     // an epoch of its choosing
	h.must("p1", obs(epoch()))
	h.refuse(CodeConflict, "p1", obs(epoch())) // once per epoch
	if r := h.state().Reputation(p2); r.BeatsSeen != 9 || r.BeatsExpected != 10 || r.Attestations != 1 || r.UptimeWeight != 10 {
		t.Fatalf("p2 %+v", r)
	}
	// Another observer in the same epoch adds weight up to the cap (30);
	// p1's 20 GRID weigh 10 (MaxAttestWeight).
	h.must("p2", &AttestUptime{Epoch: epoch(), Observations: []Observation{{Node: p3, Seen: 1, Expected: 10}}})
	if r := h.state().Reputation(p3); r.UptimeWeight != 20 {
		t.Fatalf("p3 weight %d, want 20", r.UptimeWeight)
	}
	h.emptyBlocks(int(h.state().Params().EpochBlocks))
	h.must("p1", obs(epoch()))
	if r := h.state().Reputation(p2); r.Attestations != 2 || r.UptimeWeight != 10 {
		t.Fatalf("p2 in the next epoch %+v", r)
	}
}

func TestSybilAttestationsAreCapped(t *testing.T) {
	p := DefaultParams()
	p.TxFee = 0
	funded := map[string]gridmind.Amount{"victim": grid}
	for i := range 10 {
		funded[fmt.Sprintf("sybil%d", i)] = 20 * grid
	}
	h := newHarness(t, p, Options{}, funded)
	for i := range 10 {
		h.must(fmt.Sprintf("sybil%d", i), &Stake{Amount: 20 * grid})
	}
	h.begin("")
	for i := range 10 {
		name := fmt.Sprintf("sybil%d", i)
		raw := h.sign(name, &AttestUptime{Epoch: h.fork.Epoch(), Observations: []Observation{{Node: h.id("victim"), Seen: 0, Expected: 100}}})
		if r := h.applyRaw(raw); r.Code != CodeOK {
			t.Fatalf("%s: %s", name, r.Log)
		}
		h.nonces[h.id(name)]++
	}
	h.end()
	if r := h.state().Reputation(h.id("victim")); r.UptimeWeight != p.UptimeWeightCap || r.Attestations != 10 {
		t.Fatalf("victim after 10 sybils: weight %d (cap %d), %d attestations", r.UptimeWeight, p.UptimeWeightCap, r.Attestations)
	}
}

func TestSlashing(t *testing.T) {
	h := jobHarness(t, Options{})
	p1 := h.id("p1")
	h.must("p1", &Unstake{Amount: 5 * grid}) // 15 staked, 5 unbonding
	ev := []byte("proof of a bad round")
	h.refuse(CodeUnauthorized, "p2", &Slash{Offender: p1, FractionPPM: PPM, Evidence: ev})
	h.refuse(CodeNotFound, "judge", &Slash{Offender: h.id("nobody"), FractionPPM: PPM, Evidence: ev})
	h.must("judge", &Slash{Offender: p1, FractionPPM: 900_000, Evidence: ev, Reason: "bad delta"})
	h.refuse(CodeConflict, "judge", &Slash{Offender: p1, FractionPPM: PPM, Evidence: ev})
	a := h.state().Account(p1)
	if a.Stake != 0 || a.UnbondingTotal != 2*grid {
		t.Fatalf("after slashing 90%% of 20: stake %s unbonding %s", a.Stake, a.UnbondingTotal)
	}
	if s := h.state().SupplyOf(); s.SlashPool != 18*grid {
		t.Fatalf("slash pool %s", s.SlashPool)
	}
	if r := h.state().Reputation(p1); r.Slashes != 1 || r.SlashedTotal != 18*grid {
		t.Fatalf("reputation %+v", r)
	}
	h.must("judge", &Slash{Offender: p1, FractionPPM: PPM, Evidence: []byte("another")})
	h.emptyBlocks(int(DefaultParams().UnbondingBlocks)) // the slashed-away entry releases nothing
	if a = h.state().Account(p1); a.Balance != 80*grid || len(a.Unbonding) != 0 {
		t.Fatalf("after release: %+v", a)
	}
	h.refuse(CodeInsufficient, "judge", &Slash{Offender: p1, FractionPPM: PPM, Evidence: []byte("third")})

	// An evidence hook can refuse.
	h2 := jobHarness(t, Options{Evidence: func(_ gridmind.NodeID, e []byte) error {
		if !bytes.HasPrefix(e, []byte("proof:")) {
			return errorString("not a proof")
		}
		return nil
	}})
	h2.refuse(CodeInvalid, "judge", &Slash{Offender: h2.id("p1"), FractionPPM: 1, Evidence: []byte("rumour")})
	h2.must("judge", &Slash{Offender: h2.id("p1"), FractionPPM: PPM, Evidence: []byte("proof: x")})
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestApplyOnBaseIsRefused(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 1})
	v, err := Verify(testChain, h.sign("alice", &Stake{Amount: 1}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.base.Apply(v); r.Code != CodeInternal {
		t.Fatalf("apply on base: %s", r.Code)
	}
	if _, err := h.base.BeginBlock(1, ""); err == nil {
		t.Fatal("BeginBlock on base accepted")
	}
	f := h.base.Fork()
	if _, err := f.BeginBlock(2, ""); err == nil {
		t.Fatal("skipped height accepted")
	}
}
