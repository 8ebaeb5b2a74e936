package ledger

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestTransfers(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 100 * grid, "bob": 5 * grid})
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
	p := DefaultParams()
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

// jobHarness funds a requester and registers three staked providers.
func jobHarness(t *testing.T, opts Options) *harness {
	p := DefaultParams()
	p.MinProviderStake = 10 * grid
	p.SettleDelayBlocks = 2
	p.Slashers = []gridmind.NodeID{idOf(testKey("judge"))}
	h := newHarness(t, p, opts, map[string]gridmind.Amount{
		"req": 1000 * grid, "p1": 100 * grid, "p2": 100 * grid, "p3": 100 * grid, "judge": 1,
	})
	for _, name := range []string{"p1", "p2", "p3"} {
		h.refuse(CodeInsufficient, name, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 5}})
		h.must(name, &Stake{Amount: 20 * grid})
		h.must(name, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 5, Region: "eu"}})
	}
	return h
}

func (h *harness) postJob(spec gridmind.JobSpec) JobID {
	h.t.Helper()
	want := JobIDFor(testChain, h.id("req"), h.nonces[h.id("req")])
	r := h.must("req", &PostJob{Spec: spec})
	if JobID(r.Data) != want {
		h.t.Fatalf("job id %s, want %s", r.Data, want)
	}
	return want
}

func sortedParts(parts ...Participation) []Participation {
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && parts[j].Node < parts[j-1].Node; j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	return parts
}

func TestJobLifecycle(t *testing.T) {
	h := jobHarness(t, Options{})
	p1, p2, p3 := h.id("p1"), h.id("p2"), h.id("p3")
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, Budget: 400 * grid, MaxPricePerUnit: 10})
	if got := h.balance("req"); got != 600*grid {
		t.Fatalf("requester after escrow: %s", got)
	}

	h.refuse(CodeUnauthorized, "p1", &AssignLease{Job: job, Provider: p1})
	h.refuse(CodeNotFound, "req", &AssignLease{Job: job, Provider: h.id("judge")})
	h.must("req", &AssignLease{Job: job, Provider: p1})
	h.refuse(CodeConflict, "req", &AssignLease{Job: job, Provider: p1})
	h.must("req", &AssignLease{Job: job, Provider: p2})
	h.refuse(CodeInvalid, "req", &AssignLease{Job: job, Provider: p3}) // job has its 2 workers

	// A leased provider cannot unstake below the minimum.
	h.refuse(CodeInvalid, "p1", &Unstake{Amount: 11 * grid})

	receipt := func(round uint64, parts ...Participation) *SubmitReceipt {
		return &SubmitReceipt{Job: job, Round: round, ModelHash: Hash{byte(round)}, Participants: sortedParts(parts...)}
	}
	h.refuse(CodeUnauthorized, "p3", receipt(0, Participation{p1, 1}))
	h.refuse(CodeInvalid, "p1", receipt(0, Participation{p1, 1}, Participation{p3, 1}))
	h.refuse(CodeInvalid, "p1", receipt(4, Participation{p1, 1}))
	h.must("p1", receipt(0, Participation{p1, 3}, Participation{p2, 1}))
	h.refuse(CodeConflict, "p2", receipt(0, Participation{p2, 1}))
	h.must("p1", receipt(1, Participation{p1, 1}))

	// Round 0: pot 100 GRID split 3:1. Settled by the requester at once.
	h.must("req", &SettleRound{Job: job, Round: 0})
	h.refuse(CodeConflict, "req", &SettleRound{Job: job, Round: 0})
	if b1, b2 := h.balance("p1"), h.balance("p2"); b1 != 155*grid || b2 != 105*grid {
		t.Fatalf("after round 0: p1 %s, p2 %s", b1, b2)
	}
	// Round 1 was submitted at some height H; a provider may settle it
	// only from H+2.
	r1, _ := h.state().Receipt(job, 1)
	for h.height+1 < r1.SubmittedHeight+2 {
		h.refuse(CodeInvalid, "p2", &SettleRound{Job: job, Round: 1})
	}
	h.must("p2", &SettleRound{Job: job, Round: 1})
	if b1 := h.balance("p1"); b1 != 255*grid {
		t.Fatalf("after round 1: p1 %s", b1)
	}
	if rep := h.state().Reputation(p2); rep.RoundsFinished != 1 || rep.RoundsFailed != 1 {
		t.Fatalf("p2 reputation %+v: want 1 finished (round 0), 1 failed (round 1)", rep)
	}

	// Round 2 receipted, then the job is cancelled: round 2 is paid, the
	// rest refunded, leases end.
	h.must("p2", receipt(2, Participation{p1, 1}, Participation{p2, 1}))
	h.refuse(CodeUnauthorized, "p1", &CancelJob{Job: job})
	r := h.must("req", &CancelJob{Job: job})
	j, _ := h.state().Job(job)
	if j.State != JobCancelled || j.Escrow != 0 || j.Paid != 300*grid || j.Refunded != 100*grid || j.activeLeases() != 0 {
		t.Fatalf("cancelled job: %+v", j)
	}
	if b := h.balance("req"); b != 700*grid {
		t.Fatalf("requester after refund: %s", b)
	}
	var kinds []string
	for _, e := range r.Events {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); got != "paid,paid,refunded" {
		t.Fatalf("cancel events %s", got)
	}
	if p, _ := h.state().Provider(p1); p.ActiveLeases != 0 {
		t.Fatalf("p1 still has %d active leases", p.ActiveLeases)
	}
	h.refuse(CodeConflict, "req", &CancelJob{Job: job})
	h.refuse(CodeConflict, "req", &AssignLease{Job: job, Provider: p3})
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
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 2, Budget: 101 * grid})
	h.must("req", &AssignLease{Job: job, Provider: p1})
	h.must("req", &AssignLease{Job: job, Provider: p2})
	for round := uint64(0); round < 2; round++ {
		h.must("p1", &SubmitReceipt{Job: job, Round: round, Participants: sortedParts(Participation{p1, 1}, Participation{p2, 1})})
		h.must("req", &SettleRound{Job: job, Round: round})
	}
	// Pot = 101/2 = 50.5 GRID per round; each gets 25.25, p2 half of that.
	j, _ := h.state().Job(job)
	if j.State != JobCompleted {
		t.Fatalf("job state %s, want completed", j.State)
	}
	wantP1, wantP2 := 2*25_250_000, 2*12_625_000
	if got := h.balance("p1") - 80*grid; got != gridmind.Amount(wantP1) {
		t.Errorf("p1 earned %s, want %s", fmtAmount(got), fmtAmount(gridmind.Amount(wantP1)))
	}
	if got := h.balance("p2") - 80*grid; got != gridmind.Amount(wantP2) {
		t.Errorf("p2 earned %s, want %s", fmtAmount(got), fmtAmount(gridmind.Amount(wantP2)))
	}
	if j.Refunded != 101*grid-gridmind.Amount(wantP1+wantP2) {
		t.Errorf("refunded %s", j.Refunded)
	}
	r, _ := h.state().Receipt(job, 1)
	if r.Payments[0].MultiplierPPM+r.Payments[1].MultiplierPPM != PPM+PPM/2 {
		t.Errorf("payments %+v", r.Payments)
	}
	h.refuse(CodeConflict, "p1", &SubmitReceipt{Job: job, Round: 1, Participants: []Participation{{p1, 1}}})
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
	h.refuse(CodeInsufficient, "req", obs(1)) // no stake
	h.must("p1", obs(1))
	h.refuse(CodeConflict, "p1", obs(0))
	h.must("p1", obs(1+1))
	if r := h.state().Reputation(p2); r.BeatsSeen != 18 || r.BeatsExpected != 20 || r.Attestations != 2 {
		t.Fatalf("p2 %+v", r)
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
