package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

var actors = []string{"a0", "a1", "a2", "a3", "a4", "a5", "ghost0", "ghost1"} // ghosts are never funded

// fuzzer drives one random sequence of blocks against a harness and checks
// the ledger's promises after every transaction and every block.
type fuzzer struct {
	*harness
	rng      *rand.Rand
	ok       map[Code]int   // results, for the coverage check
	okTypes  map[TxType]int // accepted transactions by type
	accepted [][]byte       // transactions that succeeded, for replays
	model    map[gridmind.NodeID]uint64
}

func newFuzzer(t testing.TB, seed uint64) *fuzzer {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := DefaultParams()
	p.UnbondingBlocks = int64(rng.IntN(4))
	p.MaxUnbonding = 1 + rng.IntN(3)
	p.MinProviderStake = gridmind.Amount(rng.IntN(3)/2) * grid
	p.MinAttestStake = gridmind.Amount(rng.IntN(2)) * grid
	p.SettleDelayBlocks = 1 + int64(rng.IntN(2))
	p.MaxIdleBlocks = p.SettleDelayBlocks + 1 + int64(rng.IntN(6))
	p.BlockReward = gridmind.Amount(rng.IntN(2)) * grid / 10
	p.TxFee = gridmind.Amount(rng.IntN(2)) * 1000
	p.EpochBlocks = 1 + int64(rng.IntN(4))
	p.Slashers = []gridmind.NodeID{idOf(testKey("a0"))}
	funded := map[string]gridmind.Amount{}
	for _, name := range actors[:6] {
		funded[name] = gridmind.Amount(rng.Uint64N(200)) * grid / 2
	}
	// Half the sequences scale payments by a reputation-based multiplier
	// that depends on state, to exercise the hook.
	var opts Options
	if seed%2 == 1 {
		opts.Multiplier = func(r Reputation) uint64 { return PPM - min(r.RoundsFailed*100_000, PPM) }
	}
	h := newHarness(t, p, opts, funded)
	return &fuzzer{harness: h, rng: rng, ok: map[Code]int{}, okTypes: map[TxType]int{}, model: map[gridmind.NodeID]uint64{}}
}

func (f *fuzzer) pick(list []string) string { return list[f.rng.IntN(len(list))] }

func (f *fuzzer) amount(limit gridmind.Amount) gridmind.Amount {
	// Mostly within the limit, sometimes just over it, never zero.
	switch f.rng.IntN(10) {
	case 0:
		return limit + 1
	case 1:
		return 1
	}
	return 1 + gridmind.Amount(f.rng.Uint64N(uint64(limit)+1))
}

func (f *fuzzer) someJob() (Job, bool) {
	jobs := f.state().Jobs(JobFilter{})
	if len(jobs) == 0 {
		return Job{}, false
	}
	// Mostly act on jobs that are running, else open.
	if open := slices.DeleteFunc(slices.Clone(jobs), func(j Job) bool { return !j.Open() }); len(open) > 0 && f.rng.IntN(5) > 0 {
		jobs = open
		if running := slices.DeleteFunc(slices.Clone(jobs), func(j Job) bool { return j.State != JobRunning }); len(running) > 0 && f.rng.IntN(2) > 0 {
			jobs = running
		}
	}
	return jobs[f.rng.IntN(len(jobs))], true
}

// randomBody makes a plausible transaction and picks its sender: valid
// often (job operations mostly come from the job's requester or its
// providers), but with every kind of mistake mixed in.
func (f *fuzzer) randomBody() (string, Body) {
	st := f.state()
	sender := f.pick(actors)
	// Senders are chosen by name, so map ids back.
	nameOf := map[gridmind.NodeID]string{}
	for _, n := range actors {
		nameOf[f.id(n)] = n
	}
	job, haveJob := f.someJob()
	if haveJob && f.rng.IntN(3) > 0 {
		// Act as the requester, or as a leased provider.
		sender = nameOf[job.Requester]
		if len(job.Leases) > 0 && f.rng.IntN(2) == 0 {
			sender = nameOf[job.Leases[f.rng.IntN(len(job.Leases))].Provider]
		}
	}
	me := st.Account(f.id(sender))
	other := f.id(f.pick(actors))
	if other == me.Address {
		other = f.id("ghost0")
		if other == me.Address {
			other = f.id("ghost1")
		}
	}
	providers := st.Providers()
	provider := other
	if len(providers) > 0 && f.rng.IntN(10) > 0 {
		provider = providers[f.rng.IntN(len(providers))].Offer.Node
	}
	if haveJob && job.Open() && len(job.Pending) > 0 && f.rng.IntN(8) == 0 {
		// The slasher files evidence against a participant of the round
		// waiting to settle (inside its window or not).
		r, _ := st.Receipt(job.ID, job.Pending[0])
		offender := r.Participants[f.rng.IntN(len(r.Participants))].Node
		return "a0", &Dispute{Job: job.ID, Round: r.Round, Offender: offender, Evidence: fmt.Appendf(nil, "d%d", f.rng.IntN(50))}
	}
	if haveJob && job.Open() && f.rng.IntN(3) == 0 {
		if body := f.nextStep(job, provider); body != nil {
			return nameOf[job.Requester], body
		}
	}
	switch f.rng.IntN(13) {
	case 0, 1:
		return sender, &Transfer{To: other, Amount: f.amount(me.Balance), Memo: "m"}
	case 2:
		return sender, &Stake{Amount: f.amount(me.Balance)}
	case 3:
		return sender, &Unstake{Amount: f.amount(me.Stake)}
	case 4, 12:
		return sender, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: gridmind.Amount(f.rng.IntN(20)), Region: "r"}}
	case 5:
		return sender, &PostJob{Spec: gridmind.JobSpec{Name: "job", Workers: 1 + f.rng.IntN(3), Rounds: 1 + f.rng.IntN(4),
			Budget: f.amount(min(me.Balance, 20*grid)), MaxPricePerUnit: gridmind.Amount(max(0, f.rng.IntN(40)-15)), MinStake: gridmind.Amount(f.rng.IntN(4)/3) * grid,
			DeadlineUnix: int64(f.rng.IntN(3)) * int64(f.rng.IntN(40))}, Size: testSize}
	case 6, 7:
		if haveJob {
			switch f.rng.IntN(6) {
			case 0:
				return sender, &CancelJob{Job: job.ID}
			case 1:
				return sender, &CloseJob{Job: job.ID}
			}
			return sender, f.lease(job, provider)
		}
	case 8, 9:
		if haveJob && job.activeLeases() == 0 {
			// Receipts need leases: prefer a job that has some.
			for _, j := range st.Jobs(JobFilter{State: JobRunning}) {
				if j.activeLeases() > 0 && j.Requester == f.id(sender) {
					job = j
					break
				}
			}
		}
		if haveJob {
			var contributors []gridmind.NodeID
			for _, l := range job.Leases {
				if (l.Active() || f.rng.IntN(20) == 0) && f.rng.IntN(3) > 0 {
					contributors = append(contributors, l.Provider)
				}
			}
			if f.rng.IntN(12) == 0 {
				contributors = append(contributors, other)
			}
			slices.Sort(contributors)
			contributors = slices.Compact(contributors)
			if len(contributors) == 0 {
				contributors = []gridmind.NodeID{other}
			}
			round := job.NextRound()
			if f.rng.IntN(4) == 0 {
				round = uint64(f.rng.IntN(job.Spec.Rounds + 1))
			}
			r := &SubmitReceipt{Job: job.ID, Round: round, ModelHash: Hash{byte(round)}, Contributors: contributors}
			if f.rng.IntN(2) == 0 {
				// Signed by some of the leased providers (a majority or not).
				var signers []string
				for _, l := range job.Leases {
					if f.rng.IntN(3) > 0 {
						signers = append(signers, nameOf[l.Provider])
					}
				}
				r = f.signed(r, signers...)
			}
			return sender, r
		}
	case 10:
		if haveJob {
			round := uint64(f.rng.IntN(job.Spec.Rounds + 1))
			if len(job.Pending) > 0 && f.rng.IntN(4) > 0 {
				round = job.Pending[0]
			}
			if f.rng.IntN(5) == 0 && len(job.Pending) > 0 {
				var offender gridmind.NodeID = other
				if r, ok := st.Receipt(job.ID, job.Pending[0]); ok && f.rng.IntN(4) > 0 {
					offender = r.Participants[f.rng.IntN(len(r.Participants))].Node
				}
				return f.pick([]string{"a0", sender}), &Dispute{Job: job.ID, Round: job.Pending[0], Offender: offender, Evidence: fmt.Appendf(nil, "d%d", f.rng.IntN(20))}
			}
			return sender, &SettleRound{Job: job.ID, Round: round}
		}
	case 11:
		if f.rng.IntN(2) == 0 && other != f.id(sender) {
			epoch := st.Epoch()
			if f.rng.IntN(4) == 0 {
				epoch = f.rng.Uint64N(5)
			}
			return sender, &AttestUptime{Epoch: epoch, Observations: []Observation{{Node: other, Seen: f.rng.Uint64N(3), Expected: 2}}}
		}
		return "a0", &Slash{Offender: provider, FractionPPM: 1 + f.rng.Uint64N(PPM), Evidence: fmt.Appendf(nil, "e%d", f.rng.IntN(20))}
	}
	return sender, &Stake{Amount: f.amount(me.Balance)}
}

// nextStep is what a requester would do next with job: lease a provider,
// submit the next round with every leased provider, or settle it.
func (f *fuzzer) nextStep(job Job, provider gridmind.NodeID) Body {
	if len(job.Pending) > 0 {
		return &SettleRound{Job: job.ID, Round: job.Pending[0]}
	}
	if job.activeLeases() < job.Spec.Workers && f.rng.IntN(2) == 0 || job.activeLeases() == 0 {
		return f.lease(job, provider)
	}
	var contributors []gridmind.NodeID
	for _, l := range job.Leases {
		if l.Active() {
			contributors = append(contributors, l.Provider)
		}
	}
	return receipt(job.ID, job.NextRound(), contributors...)
}

// lease is the job's requester leasing provider, usually with a valid
// acceptance, sometimes with a forged or stale one.
func (f *fuzzer) lease(job Job, provider gridmind.NodeID) *AssignLease {
	from := job.NextRound() + uint64(f.rng.IntN(2))
	until := f.height + 1 + int64(f.rng.IntN(3))
	signer := provider
	if f.rng.IntN(8) == 0 {
		signer = job.Requester // a requester signing for its provider
	}
	var sig []byte
	for _, n := range actors {
		if f.id(n) == signer {
			sig = SignLeaseAcceptance(f.key(n), testChain, job.ID, job.Requester, from, until)
		}
	}
	if sig == nil {
		sig = make([]byte, 64)
	}
	if f.rng.IntN(10) == 0 {
		until = f.height - 1 // stale
		if until < 1 {
			until = 1
		}
	}
	return &AssignLease{Job: job.ID, Provider: provider, FromRound: from, ValidUntil: until, Acceptance: sig}
}

// attack makes a transaction that must be refused with the returned code.
func (f *fuzzer) attack() ([]byte, Code, string) {
	victim := f.pick(actors[:6])
	switch f.rng.IntN(4) {
	case 0:
		if len(f.accepted) > 0 {
			return f.accepted[f.rng.IntN(len(f.accepted))], CodeBadNonce, "replay"
		}
		fallthrough
	case 1: // the attacker signs a transfer that names the victim as sender
		raw := f.sign(victim, &Transfer{To: f.id("ghost0"), Amount: 1})
		tx, _ := DecodeTx(raw)
		tx.Sig = ed25519.Sign(f.key("ghost1"), signingBytes(tx.unsigned()))
		return tx.Encode(), CodeBadSignature, "forged signature"
	case 2:
		raw, err := NewTx(f.key(victim), "some-other-chain", f.nonces[f.id(victim)], &Stake{Amount: 1})
		if err != nil {
			f.t.Fatal(err)
		}
		return raw, CodeWrongChain, "other chain"
	default:
		a := f.state().Account(f.id(victim))
		if !a.Exists {
			return f.sign(victim, &Stake{Amount: 1}), CodeNotFound, "unfunded sender"
		}
		to := f.id("ghost1")
		return f.sign(victim, &Transfer{To: to, Amount: a.Balance + 1}), CodeInsufficient, "over-spend"
	}
}

func (f *fuzzer) step() {
	if f.rng.IntN(8) == 0 {
		raw, want, what := f.attack()
		if r := f.applyRaw(raw); r.Code != want {
			f.t.Fatalf("%s: got %s (%s), want %s", what, r.Code, r.Log, want)
		}
		f.ok[want]++
		return
	}
	sender, body := f.randomBody()
	raw := f.sign(sender, body)
	r := f.applyRaw(raw)
	f.ok[r.Code]++
	if r.Code == CodeOK {
		f.okTypes[body.Type()]++
		f.nonces[f.id(sender)]++
		f.model[f.id(sender)]++
		f.accepted = append(f.accepted, raw)
	}
}

// checkAccounts: no balance wrapped below zero (it would exceed the
// supply), and nonces count exactly the accepted transactions.
func (f *fuzzer) checkAccounts() {
	sup := f.state().SupplyOf()
	total := sup.GenesisSupply + sup.Minted
	for _, name := range actors {
		a := f.state().Account(f.id(name))
		if a.Balance > total || a.Stake > total || a.UnbondingTotal > total {
			f.t.Fatalf("%s: balance %d stake %d unbonding %d exceed the supply %d", name, a.Balance, a.Stake, a.UnbondingTotal, total)
		}
		if a.Nonce != f.model[a.Address] {
			f.t.Fatalf("%s: nonce %d, but %d transactions were accepted", name, a.Nonce, f.model[a.Address])
		}
	}
}

func runSequence(t testing.TB, seed uint64, blocks int) (*fuzzer, Hash) {
	f := newFuzzer(t, seed)
	for b := 0; b < blocks; b++ {
		f.begin(fmt.Sprintf("VAL%d", f.rng.IntN(2)))
		for n := f.rng.IntN(8); n > 0; n-- {
			f.step()
		}
		f.checkAccounts()
		f.end()
	}
	restored, err := Restore(f.base.Entries(), *f.base.opts)
	if err != nil {
		t.Fatalf("seed %d: restore: %v", seed, err)
	}
	if restored.Hash() != f.base.Hash() {
		t.Fatalf("seed %d: restored state hashes differently", seed)
	}
	return f, f.base.Hash()
}

// TestRandomSequences runs thousands of seeded random sequences of valid
// and invalid transactions. After every transaction: a refused one left
// the state untouched and nothing was internal; every attack (replay,
// forgery, other chain, over-spend, unfunded sender) got its code. After
// every block: the supply invariant, no negative balance, nonces = accepted
// transactions. At the end: restoring from the entries gives the same hash.
func TestRandomSequences(t *testing.T) {
	sequences := 1000
	if testing.Short() {
		sequences = 100
	}
	total := map[Code]int{}
	types := map[TxType]int{}
	completed := 0
	for seed := uint64(1); seed <= uint64(sequences); seed++ {
		f, _ := runSequence(t, seed, 16)
		for c, n := range f.ok {
			total[c] += n
		}
		for c, n := range f.okTypes {
			types[c] += n
		}
		completed += len(f.base.Jobs(JobFilter{State: JobCompleted}))
	}
	if completed < 5 {
		t.Errorf("only %d jobs completed: the generator misses that path", completed)
	}
	t.Logf("results over %d sequences: %v; accepted by type: %v; jobs completed: %d", sequences, total, types, completed)
	for ty := TypeTransfer; ty <= TypeDispute; ty++ {
		if types[ty] < 5 {
			t.Errorf("only %d %s transactions accepted: the generator misses that path", types[ty], ty)
		}
	}
	// The generator must actually reach the interesting paths.
	for _, c := range []Code{CodeOK, CodeBadNonce, CodeBadSignature, CodeWrongChain, CodeInsufficient, CodeNotFound, CodeUnauthorized, CodeConflict, CodeInvalid} {
		if total[c] < 20 {
			t.Errorf("only %d results with code %s: the generator misses that path", total[c], c)
		}
	}
}

// TestDeterminism: the same sequence twice gives the same app hash, and
// different seeds give different ones.
func TestDeterminism(t *testing.T) {
	_, h1 := runSequence(t, 77, 20)
	_, h2 := runSequence(t, 77, 20)
	_, h3 := runSequence(t, 78, 20)
	if h1 != h2 {
		t.Fatalf("same seed, different hashes: %s %s", h1, h2)
	}
	if h1 == h3 {
		t.Fatalf("different seeds, same hash %s", h1)
	}
}

// TestForkIsolation: work done in a fork is invisible to the base until
// committed, and a discarded fork leaves no trace.
func TestForkIsolation(t *testing.T) {
	f, _ := runSequence(t, 5, 10)
	before := f.base.Hash()
	entries := f.base.Entries()
	for i := 0; i < 3; i++ {
		nonces, model := maps.Clone(f.nonces), maps.Clone(f.model)
		f.begin("")
		for n := 0; n < 20; n++ {
			f.step()
		}
		f.fork = nil // discard, and forget what it accepted
		f.height--
		f.nonces, f.model, f.accepted = nonces, model, nil
	}
	if f.base.Hash() != before {
		t.Fatal("a discarded fork changed the base hash")
	}
	after := f.base.Entries()
	if len(after) != len(entries) {
		t.Fatalf("entries %d → %d", len(entries), len(after))
	}
	for i := range after {
		if after[i].Key != entries[i].Key || !bytes.Equal(after[i].Value, entries[i].Value) {
			t.Fatalf("entry %s changed by a discarded fork", after[i].Key)
		}
	}
}

func BenchmarkApplyTransfer(b *testing.B) {
	h := newHarness(b, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 1 << 60})
	bob := h.id("bob")
	txs := make([]*VerifiedTx, b.N)
	for i := range txs {
		raw, _ := NewTx(h.key("alice"), testChain, uint64(i), &Transfer{To: bob, Amount: 1})
		v, err := Verify(testChain, raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		txs[i] = v
	}
	fork := h.base.Fork()
	if _, err := fork.BeginBlock(1, ""); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range txs {
		if r := fork.Apply(txs[i]); r.Code != CodeOK {
			b.Fatal(r.Log)
		}
	}
	b.StopTimer()
	_ = fork.Hash()
}
