package ledger

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// fraudSetup is a job with workers p1 (the cheater) and p2, auditors a1 to
// a3 registered as providers, and a receipt for round 0 naming both
// workers, one block old so that its beacon exists.
type fraudSetup struct {
	*harness
	job   JobID
	names map[gridmind.NodeID]string
}

func newFraudSetup(t *testing.T) *fraudSetup {
	f := newFraudSetupJob(t, gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, InnerSteps: 50, Budget: 40 * grid, MaxPricePerUnit: 10})
	f.must("req", receipt(f.job, 0, f.id("p1"), f.id("p2")))
	f.emptyBlocks(1) // the beacon of round 0's draw
	return f
}

// newFraudSetupJob is the setup up to the leases of p1 and p2 on a job
// with spec.
func newFraudSetupJob(t *testing.T, spec gridmind.JobSpec) *fraudSetup {
	h := jobHarness(t, Options{})
	f := &fraudSetup{harness: h, names: map[gridmind.NodeID]string{}}
	for _, name := range []string{"a1", "a2", "a3", "broke", "poor"} {
		h.must("req", &Transfer{To: h.id(name), Amount: 30 * grid})
	}
	h.must("poor", &Stake{Amount: 5 * grid})
	for _, name := range []string{"a1", "a2", "a3"} {
		h.must(name, &Stake{Amount: 20 * grid})
		h.must(name, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 5, Region: "eu"}})
	}
	for _, name := range []string{"p1", "p2", "p3", "a1", "a2", "a3", "req", "poor", "broke"} {
		f.names[h.id(name)] = name
	}
	f.job = h.postJob(spec)
	h.must("req", h.lease(f.job, "req", "p1", 0))
	h.must("req", h.lease(f.job, "req", "p2", 0))
	return f
}

// commitment is worker's signed commitment for round 0.
func (f *fraudSetup) commitment(worker string) verify.Commitment { return f.commitmentFor(worker, 0) }

// commitmentFor is worker's signed commitment for round.
func (f *fraudSetup) commitmentFor(worker string, round uint64) verify.Commitment {
	f.t.Helper()
	c := verify.Commitment{
		Job: string(f.job), Round: round, Worker: f.id(worker), Start: verify.HashBytes("t", []byte{byte(round)}),
		Shard: verify.ShardID(string(f.job), round, 0, 2), Steps: 50, Delta: verify.HashBytes("t", []byte("claimed delta")),
	}
	if err := c.Sign(f.key(worker)); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// committee is the drawn committee of worker for c, as harness names.
func (f *fraudSetup) committee(worker string, c *verify.Commitment) ([]string, verify.Part) {
	f.t.Helper()
	_, ids, part, ok := f.state().AuditDraw(f.job, 0, f.id(worker), c)
	if !ok || len(ids) != FraudParams.CommitteeSize {
		f.t.Fatalf("draw: ok %v, committee %v", ok, ids)
	}
	var out []string
	for _, id := range ids {
		out = append(out, f.names[id])
	}
	return out, part
}

// results are the signed results of auditors (names), each having got
// the output given for it.
func (f *fraudSetup) results(c *verify.Commitment, part verify.Part, got map[string]verify.Hash) []verify.Result {
	f.t.Helper()
	var rs []verify.Result
	for name, g := range got {
		r := verify.NewResult(f.id(name), c, part, verify.ModeBitwise, g, 0)
		if err := r.Sign(f.key(name)); err != nil {
			f.t.Fatal(err)
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b verify.Result) int { return strings.Compare(string(a.Auditor), string(b.Auditor)) })
	return rs
}

// outputs maps each auditor to the same output.
func outputs(auditors []string, got verify.Hash) map[string]verify.Hash {
	m := map[string]verify.Hash{}
	for _, a := range auditors {
		m[a] = got
	}
	return m
}

var honestOutput = verify.HashBytes("t", []byte("what the honest re-execution gives"))

func (f *fraudSetup) bonded(name string) gridmind.Amount {
	a := f.state().Account(f.id(name))
	return a.Stake + a.UnbondingTotal
}

func TestFraudProofSlashesPaysAuditorsBurnsAndExcludes(t *testing.T) {
	f := newFraudSetup(t)
	c := f.commitment("p1")
	committee, part := f.committee("p1", &c)
	if slices.Contains(committee, "p1") {
		t.Fatal("the accused is on its own committee")
	}
	supplyBefore := f.state().SupplyOf()
	stake := f.bonded("p1")
	auditorBefore := map[string]gridmind.Amount{}
	for _, a := range committee {
		auditorBefore[a] = f.balance(a)
	}
	q := FraudParams.Quorum
	proof := verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(committee[:q], honestOutput))}
	res := f.must(committee[0], &FraudProof{Proof: proof})
	if string(res.Data) != "fraud" {
		t.Fatalf("verdict %q, want fraud", res.Data)
	}
	// The whole bonded stake goes (DisputeSlashPPM = 100%): 20% to the
	// agreeing auditors, the rest burned.
	if got := f.bonded("p1"); got != 0 {
		t.Fatalf("cheater keeps %s bonded", got)
	}
	share := stake / 5 / gridmind.Amount(q)
	for _, a := range committee[:q] {
		if got := f.balance(a) - auditorBefore[a]; got != share {
			t.Errorf("auditor %s got %s, want %s", a, got, share)
		}
	}
	if got := f.balance(committee[q]) - auditorBefore[committee[q]]; got != 0 {
		t.Errorf("silent committee member %s was paid %s", committee[q], got)
	}
	after := f.state().SupplyOf()
	if burned := after.Burned - supplyBefore.Burned; burned != stake-gridmind.Amount(q)*share {
		t.Errorf("burned %s, want %s", burned, stake-gridmind.Amount(q)*share)
	}
	if after.SlashPool != supplyBefore.SlashPool {
		t.Errorf("slash pool moved from %s to %s", supplyBefore.SlashPool, after.SlashPool)
	}
	rep := f.state().Reputation(f.id("p1"))
	if rep.Slashes != 1 {
		t.Errorf("reputation records %d slashes, want 1", rep.Slashes)
	}
	// Excluded: the lease ended, and it cannot be leased on the job again.
	j, _ := f.state().Job(f.job)
	for _, l := range j.Leases {
		if l.Provider == f.id("p1") && l.Active() {
			t.Fatal("the cheater still holds its lease")
		}
	}
	if !f.state().Excluded(f.job, f.id("p1")) {
		t.Fatal("the cheater is not recorded as excluded")
	}
	f.refuse(CodeUnauthorized, "req", f.lease(f.job, "req", "p1", 1))
	// Its pay for the round is withheld: when the round settles, p2 is paid
	// and p1 is not.
	r, _ := f.state().Receipt(f.job, 0)
	if !slices.Contains(r.Withheld, f.id("p1")) {
		t.Fatal("the cheater's pay for round 0 is not withheld")
	}
	p1, p2 := f.balance("p1"), f.balance("p2")
	f.settleable(f.job, 0)
	f.must("p2", &SettleRound{Job: f.job, Round: 0})
	if f.balance("p1") != p1 || f.balance("p2") <= p2 {
		t.Fatalf("after settling: cheater %s → %s, honest %s → %s", p1, f.balance("p1"), p2, f.balance("p2"))
	}
	// The same proof cannot be used twice.
	f.refuse(CodeInvalid, committee[0], &FraudProof{Proof: proof}) // now settled: stale
}

func TestFraudProofRefusals(t *testing.T) {
	f := newFraudSetup(t)
	c := f.commitment("p1")
	committee, part := f.committee("p1", &c)
	q := FraudParams.Quorum
	good := func() verify.Proof {
		return verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(committee[:q], honestOutput))}
	}
	outsider := "poor" // staked, never a provider
	f.begin("")        // the refusals share one block, well inside the dispute window
	notDrawn := verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(append(slices.Clone(committee[:q-1]), outsider), honestOutput))}
	f.refuse(CodeUnauthorized, "a1", &FraudProof{Proof: notDrawn})

	forged := good()
	forged.Results[0].Got[0] ^= 1
	f.refuse(CodeBadSignature, "a1", &FraudProof{Proof: forged})

	one := verify.Proof{Commitment: c, Results: f.results(&c, part, map[string]verify.Hash{committee[0]: honestOutput})}
	r := f.refuse(CodeInvalid, "a1", &FraudProof{Proof: one})
	if !strings.Contains(r.Log, "undecided") {
		t.Errorf("one result: %q, want undecided", r.Log)
	}

	f.refuse(CodeInsufficient, "broke", &FraudProof{Proof: good()})

	notThere := f.commitment("p3") // p3 took no part in round 0
	_, _, p3part, _ := f.state().AuditDraw(f.job, 0, f.id("p3"), &notThere)
	f.refuse(CodeInvalid, "a1", &FraudProof{Proof: verify.Proof{Commitment: notThere, Results: f.results(&notThere, p3part, outputs([]string{"a1", "a2", "a3"}, honestOutput))}})

	f.end()

	// Stale: once the dispute window has passed, a proof is refused.
	f.settleable(f.job, 0)
	f.emptyBlocks(1)
	r = f.refuse(CodeInvalid, "a1", &FraudProof{Proof: good()})
	if !strings.Contains(r.Log, "stale") {
		t.Errorf("late proof: %q, want stale", r.Log)
	}
}

func TestFraudProofNeedsTheBeacon(t *testing.T) {
	h := jobHarness(t, Options{})
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, InnerSteps: 50, Budget: 40 * grid, MaxPricePerUnit: 10})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.begin("")
	if r := h.applyRaw(h.sign("req", receipt(job, 0, h.id("p1"), h.id("p2")))); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	h.nonces[h.id("req")]++
	// In the receipt's own block the draw does not exist yet.
	if _, _, _, ok := h.state().AuditDraw(job, 0, h.id("p1"), nil); ok {
		t.Fatal("the audit draw is known in the block of the receipt")
	}
	h.end()
	appHash := h.base.Hash() // what the next block's header carries
	h.emptyBlocks(1)
	if _, _, _, ok := h.state().AuditDraw(job, 0, h.id("p1"), nil); !ok {
		t.Fatal("no audit draw one block after the receipt")
	}
	// Anyone can recompute the beacon from the block header.
	r, _ := h.state().Receipt(job, 0)
	got, _ := h.state().AuditBeacon(r.SubmittedHeight)
	if want := verify.BlockBeacon(r.SubmittedHeight+1, verify.Hash(appHash)); verify.Hash(got) != want {
		t.Fatalf("beacon %s, want BlockBeacon(height, header app hash) = %s", got, want)
	}
}

func TestFalseAccusationCostsTheAccuser(t *testing.T) {
	f := newFraudSetup(t)
	c := f.commitment("p2") // p2 is honest
	claimed, _ := c.Claimed(verify.WholeRound)
	committee, part := f.committee("p2", &c)
	if part != verify.WholeRound {
		t.Fatalf("part %d, want the whole round (segments are off)", part)
	}
	liar := committee[0]
	q := FraudParams.Quorum
	got := outputs(committee[1:q+1], claimed)
	got[liar] = honestOutput
	proof := verify.Proof{Commitment: c, Results: f.results(&c, part, got)}
	liarBonded, accused := f.bonded(liar), f.balance("p2")
	res := f.must("p2", &FraudProof{Proof: proof}) // the accused files the committee's answer
	if string(res.Data) != "cleared" {
		t.Fatalf("verdict %q, want cleared", res.Data)
	}
	fine := FraudParams.FalseAccusationFine
	if f.bonded(liar) != liarBonded-fine || f.balance("p2") != accused+fine {
		t.Fatalf("liar bonded %s → %s, accused %s → %s; want a fine of %s", liarBonded, f.bonded(liar), accused, f.balance("p2"), fine)
	}
	if f.state().Excluded(f.job, f.id("p2")) {
		t.Fatal("the cleared worker was excluded")
	}
	// Fined once per false report.
	f.refuse(CodeConflict, "p2", &FraudProof{Proof: proof})
	// A proof in which every auditor agrees with the worker accuses nobody.
	agree := verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(committee[1:q+1], claimed))}
	f.refuse(CodeInvalid, "p2", &FraudProof{Proof: agree})
}

func TestFraudProofCodec(t *testing.T) {
	f := newFraudSetup(t)
	c := f.commitment("p1")
	committee, part := f.committee("p1", &c)
	body := &FraudProof{Proof: verify.Proof{Commitment: c, Results: f.results(&c, part, outputs(committee[:2], honestOutput))}}
	raw := f.sign("a1", body)
	tx, err := DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tx.Encode(), raw) {
		t.Fatal("fraud proof does not re-encode to the same bytes")
	}
	if tx.Body.Type().String() != "fraud-proof" {
		t.Fatalf("type name %q", tx.Body.Type())
	}
	bad := *body
	bad.Proof.Commitment.Job = "not-a-job"
	if err := bad.Proof.Commitment.Sign(f.key("p1")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTx(f.key("a1"), testChain, 0, &bad); err == nil {
		t.Fatal("signed a fraud proof whose job is not a job id")
	}
}

// FuzzFraudProofTx: no input makes the decoder panic, and whatever decodes
// re-encodes to the same bytes (seeded with a fraud proof and an audit
// equivocation report).
func FuzzFraudProofTx(f *testing.F) {
	key, auditor := testKey("fuzz-auditor"), idOf(testKey("fuzz-auditor"))
	worker := testKey("fuzz-worker")
	c := verify.Commitment{Job: strings.Repeat("ab", 16), Round: 1, Worker: idOf(worker), Steps: 4, SegmentSteps: 2,
		Checkpoints: []verify.Hash{{1}, {2}}}
	if err := c.Sign(worker); err != nil {
		f.Fatal(err)
	}
	r := verify.NewResult(auditor, &c, 1, verify.ModeBitwise, verify.Hash{9}, 0)
	if err := r.Sign(key); err != nil {
		f.Fatal(err)
	}
	raw, err := NewTx(key, testChain, 3, &FraudProof{Proof: verify.Proof{Commitment: c, Results: []verify.Result{r}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)-70])
	r2 := verify.NewResult(auditor, &c, 1, verify.ModeBitwise, verify.Hash{8}, 0)
	if err := r2.Sign(key); err != nil {
		f.Fatal(err)
	}
	if bytes.Compare(r.Encode(), r2.Encode()) > 0 {
		r, r2 = r2, r
	}
	eq, err := NewTx(testKey("fuzz-reporter"), testChain, 0, &AuditEquivocation{A: r, B: r2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(eq)
	f.Add(append(raw[:40:40], 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tx.Encode(), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzApplyFraudProof applies arbitrary fraud-proof bodies, seeded with a
// proven fraud and a cleared accusation, to a state with a receipted
// round: nothing panics, nothing is an internal error, a refusal changes
// nothing (the harness checks) and the supply invariant holds.
func FuzzApplyFraudProof(f *testing.F) {
	seedT := &testing.T{}
	s := newFraudSetup(seedT)
	c := s.commitment("p1")
	committee, part := s.committee("p1", &c)
	q := FraudParams.Quorum
	fraud := &FraudProof{Proof: verify.Proof{Commitment: c, Results: s.results(&c, part, outputs(committee[:q], honestOutput))}}
	claimed, _ := c.Claimed(part)
	got := outputs(committee[1:q+1], claimed)
	got[committee[0]] = honestOutput
	cleared := &FraudProof{Proof: verify.Proof{Commitment: c, Results: s.results(&c, part, got)}}
	for _, b := range []*FraudProof{fraud, cleared} {
		e := encoder{}
		b.encode(&e)
		f.Add(uint8(0), e.buf)
		f.Add(uint8(1), e.buf)
	}
	signers := []string{"a1", "p2", "p1", "broke"}
	f.Fuzz(func(t *testing.T, signer uint8, body []byte) {
		s := newFraudSetup(t)
		name := signers[int(signer)%len(signers)]
		key := s.key(name)
		e := encoder{}
		e.byte1(wireVersion)
		e.byte1(byte(TypeFraudProof))
		e.str(testChain)
		e.fixed(key.Public().(ed25519.PublicKey))
		e.uvarint(s.nonces[s.id(name)])
		e.fixed(body)
		raw := append(e.buf, ed25519.Sign(key, signingBytes(e.buf))...)
		s.begin("")
		s.applyRaw(raw)
		if err := s.fork.CheckInvariant(); err != nil {
			t.Fatal(err)
		}
		s.end()
	})
}

func TestAuditEquivocationIsSlashed(t *testing.T) {
	f := newFraudSetup(t)
	c := f.commitment("p1")
	claimed, _ := c.Claimed(verify.WholeRound)
	sign := func(got verify.Hash) verify.Result {
		r := verify.NewResult(f.id("a1"), &c, verify.WholeRound, verify.ModeBitwise, got, 0)
		if err := r.Sign(f.key("a1")); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := sign(claimed), sign(honestOutput)
	if bytes.Compare(a.Encode(), b.Encode()) > 0 {
		a, b = b, a
	}
	if _, err := NewTx(f.key("a2"), testChain, 0, &AuditEquivocation{A: b, B: a}); err == nil {
		t.Fatal("signed a report whose results are out of order")
	}
	f.refuse(CodeInvalid, "a1", &AuditEquivocation{A: a, B: b}) // not about itself
	bonded, reporter, supply := f.bonded("a1"), f.balance("a2"), f.state().SupplyOf()
	f.must("a2", &AuditEquivocation{A: a, B: b})
	reward := bonded / 5
	if f.bonded("a1") != 0 || f.balance("a2") != reporter+reward {
		t.Fatalf("auditor bonded %s → %s, reporter %s → %s (want +%s)", bonded, f.bonded("a1"), reporter, f.balance("a2"), reward)
	}
	if burned := f.state().SupplyOf().Burned - supply.Burned; burned != bonded-reward {
		t.Fatalf("burned %s, want %s", burned, bonded-reward)
	}
	f.refuse(CodeConflict, "a3", &AuditEquivocation{A: a, B: b})
	if _, err := NewTx(f.key("a2"), testChain, 0, &AuditEquivocation{A: a, B: a}); err == nil {
		t.Fatal("signed a report of one result twice")
	}
	forged := b
	forged.DistPPM = 0
	forged.Got[0] ^= 1
	p, q := a, forged
	if bytes.Compare(p.Encode(), q.Encode()) > 0 {
		p, q = q, p
	}
	f.refuse(CodeBadSignature, "a3", &AuditEquivocation{A: p, B: q})
}
