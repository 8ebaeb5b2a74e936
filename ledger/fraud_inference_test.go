package ledger

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// inferenceSetup has providers p1 to p3 and auditors a1 to a5, all staked
// and registered, and blocks one second apart from t0 (block time t0 is
// the last one begun). p1 is the server under suspicion.
type inferenceSetup struct {
	*harness
	names map[gridmind.NodeID]string
	now   int64 // the time of the last block
}

func newInferenceSetup(t *testing.T) *inferenceSetup {
	h := jobHarness(t, Options{})
	f := &inferenceSetup{harness: h, names: map[gridmind.NodeID]string{}}
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5", "poor"} {
		h.must("req", &Transfer{To: h.id(name), Amount: 30 * grid})
	}
	for _, name := range []string{"a1", "a2", "a3", "a4", "a5"} {
		h.must(name, &Stake{Amount: 20 * grid})
		h.must(name, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 5, Region: "eu"}})
	}
	for _, name := range []string{"p1", "p2", "p3", "a1", "a2", "a3", "a4", "a5", "req", "poor", "client"} {
		f.names[h.id(name)] = name
	}
	f.now = 1_000
	f.blocks(3)
	return f
}

// blocks runs n empty blocks, one second apart.
func (f *inferenceSetup) blocks(n int) {
	for i := 0; i < n; i++ {
		f.now++
		f.beginAt(f.now)
		f.end()
	}
}

// receipt is server's signed receipt for request id, finished half a
// second into the last block's second, claiming output.
func (f *inferenceSetup) receipt(server, id string, output verify.Hash) verify.ServedReceipt {
	f.t.Helper()
	rc := verify.ServedReceipt{RequestID: id, Model: "m", Server: f.id(server), Client: f.id("client"), TokensIn: 4, TokensOut: 16,
		TimeMs: f.now*1000 + 500, RequestHash: verify.HashBytes("t", []byte("request "+id)), Seed: 7, OutputHash: output}
	if err := rc.Sign(f.key(server)); err != nil {
		f.t.Fatal(err)
	}
	return rc
}

// committee is the receipt's drawn committee, as harness names.
func (f *inferenceSetup) committee(rc *verify.ServedReceipt) []string {
	f.t.Helper()
	_, ids, err := f.state().InferenceDraw(rc)
	if err != nil || len(ids) != FraudParams.CommitteeSize {
		f.t.Fatalf("draw: %v, committee %v", err, ids)
	}
	var out []string
	for _, id := range ids {
		out = append(out, f.names[id])
	}
	return out
}

// results are the signed results of auditors (names), each having got the
// output given for it.
func (f *inferenceSetup) results(rc *verify.ServedReceipt, got map[string]verify.Hash) []verify.Result {
	f.t.Helper()
	var rs []verify.Result
	for name, g := range got {
		r := verify.NewInferenceResult(f.id(name), rc, g)
		if err := r.Sign(f.key(name)); err != nil {
			f.t.Fatal(err)
		}
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b verify.Result) int { return strings.Compare(string(a.Auditor), string(b.Auditor)) })
	return rs
}

func (f *inferenceSetup) proof(rc verify.ServedReceipt, got map[string]verify.Hash) *InferenceFraudProof {
	return &InferenceFraudProof{Proof: verify.InferenceProof{Receipt: rc, Results: f.results(&rc, got)}}
}

func (f *inferenceSetup) bonded(name string) gridmind.Amount {
	a := f.state().Account(f.id(name))
	return a.Stake + a.UnbondingTotal
}

var replicaOutput = verify.HashBytes("t", []byte("what every replica of the weights generates"))

func TestInferenceFraudProofSlashesPaysAuditorsBurnsAndBans(t *testing.T) {
	f := newInferenceSetup(t)
	rc := f.receipt("p1", "req-1", verify.HashBytes("t", []byte("a cheaper model's text")))
	// The block after the receipt is the first later one; its beacon is
	// the next block's, which does not exist yet.
	f.blocks(1)
	if _, err := f.state().InferenceBeaconHeight(rc.TimeMs); !errors.Is(err, ErrReceiptTooNew) {
		t.Fatalf("beacon before the block after the first later one: %v", err)
	}
	f.blocks(1)
	h, err := f.state().InferenceBeaconHeight(rc.TimeMs)
	if err != nil || h != f.height-1 {
		t.Fatalf("beacon height %d (%v), want %d", h, err, f.height-1)
	}
	committee := f.committee(&rc)
	if slices.Contains(committee, "p1") {
		t.Fatal("the server is on its own committee")
	}
	q := FraudParams.Quorum
	got := map[string]verify.Hash{}
	for _, a := range committee[:q] {
		got[a] = replicaOutput
	}
	got[committee[q]] = rc.OutputHash // one member vouches for the server
	proof := f.proof(rc, got)

	bonded, supply := f.bonded("p1"), f.state().SupplyOf()
	paidBefore := map[string]gridmind.Amount{}
	for _, a := range committee {
		paidBefore[a] = f.balance(a)
	}
	res := f.must(committee[0], proof)
	if string(res.Data) != "fraud" {
		t.Fatalf("verdict %q", res.Data)
	}
	if got := f.bonded("p1"); got != 0 {
		t.Fatalf("server keeps %s bonded, want all %s slashed", fmtAmount(got), fmtAmount(bonded))
	}
	each := bonded / 5 / gridmind.Amount(q)
	for _, a := range committee[:q] {
		if got := f.balance(a) - paidBefore[a]; got != each {
			t.Errorf("agreeing auditor %s got %s, want %s", a, fmtAmount(got), fmtAmount(each))
		}
	}
	if got := f.bonded(committee[q]); got != 20*grid-FraudParams.FalseAccusationFine {
		t.Errorf("the member who vouched for the server keeps %s bonded, want it fined", fmtAmount(got))
	}
	after := f.state().SupplyOf()
	wantBurned := bonded - each*gridmind.Amount(q) + FraudParams.FalseAccusationFine
	if after.Burned-supply.Burned != wantBurned {
		t.Errorf("burned %s, want %s", fmtAmount(after.Burned-supply.Burned), fmtAmount(wantBurned))
	}
	ban, ok := f.state().Banned(f.id("p1"))
	if !ok || ban.Height != f.height {
		t.Fatalf("server not banned: %+v %v", ban, ok)
	}
	if r := f.state().Reputation(f.id("p1")); r.Slashes != 1 || r.SlashedTotal != bonded {
		t.Errorf("reputation %+v, want the slash recorded", r)
	}
	if bs := f.state().BannedNodes(); len(bs) != 1 || bs[0].Node != f.id("p1") {
		t.Errorf("banned list %+v", bs)
	}
	// Each receipt is judged once.
	f.refuse(CodeConflict, committee[1], proof)
	// A banned server is leased on no job; another provider still is.
	job := f.postJob(gridmind.JobSpec{Name: "j", Workers: 2, Rounds: 4, InnerSteps: 50, Budget: 40 * grid, MaxPricePerUnit: 10})
	if r := f.refuse(CodeUnauthorized, "req", f.lease(job, "req", "p1", 0)); !strings.Contains(r.Log, "banned") {
		t.Errorf("lease of the banned server refused for another reason: %s", r.Log)
	}
	f.must("req", f.lease(job, "req", "p2", 0))
	if _, ok := f.state().Banned(f.id("p2")); ok {
		t.Error("an unaccused server is banned")
	}
}

func TestInferenceFraudProofClearsAnHonestServerAndFinesItsAccuser(t *testing.T) {
	f := newInferenceSetup(t)
	rc := f.receipt("p2", "req-2", replicaOutput)
	f.blocks(2)
	committee := f.committee(&rc)
	q := FraudParams.Quorum
	// Every replica reproduces the honest server: nothing to accuse.
	f.refuse(CodeInvalid, committee[0], f.proof(rc, map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput, committee[2]: replicaOutput}))
	// One member lies; the others reproduce the server's output.
	liar := committee[0]
	got := map[string]verify.Hash{liar: verify.HashBytes("t", []byte("a lie"))}
	for _, a := range committee[1 : q+1] {
		got[a] = replicaOutput
	}
	server, liarBonded := f.balance("p2"), f.bonded(liar)
	bonded := f.bonded("p2")
	res := f.must(liar, f.proof(rc, got))
	if string(res.Data) != "cleared" {
		t.Fatalf("verdict %q", res.Data)
	}
	fine := FraudParams.FalseAccusationFine
	if f.bonded(liar) != liarBonded-fine || f.balance("p2") != server+fine {
		t.Errorf("accuser bonded %s (was %s), server balance %s (was %s): want the fine moved to the server",
			fmtAmount(f.bonded(liar)), fmtAmount(liarBonded), fmtAmount(f.balance("p2")), fmtAmount(server))
	}
	if f.bonded("p2") != bonded {
		t.Error("the honest server lost stake")
	}
	if _, ok := f.state().Banned(f.id("p2")); ok {
		t.Error("the honest server is banned")
	}
	if r := f.state().Reputation(f.id("p2")); r.Slashes != 0 {
		t.Errorf("the honest server's reputation records %d slashes", r.Slashes)
	}
	f.refuse(CodeConflict, liar, f.proof(rc, got)) // judged once
}

func TestInferenceFraudProofRefusals(t *testing.T) {
	f := newInferenceSetup(t)
	cheat := verify.HashBytes("t", []byte("cheap"))
	rc := f.receipt("p1", "req-3", cheat)
	f.blocks(2)
	committee := f.committee(&rc)
	good := map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput, committee[2]: replicaOutput}

	forged := rc
	forged.TokensOut = 1_000 // no longer what the server signed
	var outsider string
	for _, name := range []string{"p2", "p3", "a1", "a2", "a3", "a4", "a5"} {
		if !slices.Contains(committee, name) {
			outsider = name
			break
		}
	}
	offCommittee := map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput, outsider: replicaOutput}
	badSig := f.proof(rc, good)
	badSig.Proof.Results[1].Sig = slices.Clone(badSig.Proof.Results[1].Sig)
	badSig.Proof.Results[1].Sig[0] ^= 1
	tooNew := f.receipt("p1", "req-4", cheat) // signed in the last block's second
	tests := []struct {
		name  string
		filer string
		body  *InferenceFraudProof
		code  Code
		inLog string
	}{
		{"filer without stake", "poor", f.proof(rc, good), CodeInsufficient, "staked"},
		{"receipt not signed by its server", committee[0], &InferenceFraudProof{Proof: verify.InferenceProof{Receipt: forged, Results: f.results(&rc, good)}}, CodeBadSignature, "receipt"},
		{"auditor off the committee", committee[0], f.proof(rc, offCommittee), CodeUnauthorized, "committee"},
		{"result with a bad signature", committee[0], badSig, CodeBadSignature, "signature"},
		{"two of five", committee[0], f.proof(rc, map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput}), CodeInvalid, "undecided"},
		{"beacon not decided", committee[0], f.proof(tooNew, map[string]verify.Hash{"a1": replicaOutput}), CodeInvalid, "not decided"},
	}
	f.now++
	f.beginAt(f.now) // one block: the window stays open
	for _, tc := range tests {
		r := f.refuse(tc.code, tc.filer, tc.body)
		if !strings.Contains(r.Log, tc.inLog) {
			t.Errorf("%s: log %q lacks %q", tc.name, r.Log, tc.inLog)
		}
	}
	f.end()
	// After the window the receipt is stale.
	f.blocks(int(f.state().Params().SettleDelayBlocks))
	r := f.refuse(CodeInvalid, committee[0], f.proof(rc, good))
	if !strings.Contains(r.Log, "older than the audit window") {
		t.Errorf("stale proof: %q", r.Log)
	}
	if f.bonded("p1") != 20*grid {
		t.Error("a refused proof slashed the server")
	}
}

// FuzzApplyInferenceFraudProof applies arbitrary inference-fraud-proof
// bodies, seeded with a proven fraud and a cleared accusation: nothing
// panics, nothing is an internal error, a refusal changes nothing (the
// harness checks) and the supply invariant holds.
func FuzzApplyInferenceFraudProof(f *testing.F) {
	s := newInferenceSetup(&testing.T{})

	rc := s.receipt("p1", "req-f", verify.HashBytes("t", []byte("cheap")))
	s.blocks(2)
	committee := s.committee(&rc)
	fraud := s.proof(rc, map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput, committee[2]: replicaOutput})
	cleared := s.proof(rc, map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: rc.OutputHash, committee[2]: rc.OutputHash, committee[3]: rc.OutputHash})
	for _, b := range []*InferenceFraudProof{fraud, cleared} {
		e := encoder{}
		b.encode(&e)
		f.Add(uint8(0), e.buf)
		f.Add(uint8(1), e.buf)
	}
	signers := append(slices.Clone(committee[:2]), "p1", "poor")
	// Every input is applied to a fork of the same committed state (the
	// setup runs once: rebuilding it per input would leave the fuzzer a
	// handful of executions a minute).
	f.Fuzz(func(t *testing.T, signer uint8, body []byte) {
		name := signers[int(signer)%len(signers)]
		key := s.key(name)
		e := encoder{}
		e.byte1(wireVersion)
		e.byte1(byte(TypeInferenceFraudProof))
		e.str(testChain)
		e.fixed(key.Public().(ed25519.PublicKey))
		e.uvarint(s.nonces[s.id(name)])
		e.fixed(body)
		raw := append(e.buf, ed25519.Sign(key, signingBytes(e.buf))...)
		fork := s.base.Fork()
		if _, err := fork.BeginBlockAt(s.height+1, s.now+1, ""); err != nil {
			t.Fatal(err)
		}
		before := fork.Hash()
		v, err := Verify(testChain, raw, nil)
		if err != nil {
			return
		}
		r := fork.Apply(v)
		switch {
		case r.Code == CodeInternal:
			t.Fatalf("internal error: %s", r.Log)
		case r.Code != CodeOK && fork.Hash() != before:
			t.Fatalf("refused (%s) but changed the state", r.Log)
		}
		if err := fork.CheckInvariant(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkInferenceFraudProof times the state machine judging a proven
// inference fraud (the tx's signature and decoding, the receipt's and
// results' signatures, the draw, the verdict, the slash): what a validator
// spends per proof, without the block around it.
func BenchmarkInferenceFraudProof(b *testing.B) {
	f := newInferenceSetup(&testing.T{})
	rc := f.receipt("p1", "req-b", verify.HashBytes("t", []byte("cheap")))
	f.blocks(2)
	committee := f.committee(&rc)
	proof := f.proof(rc, map[string]verify.Hash{committee[0]: replicaOutput, committee[1]: replicaOutput, committee[2]: replicaOutput})
	raw := f.sign(committee[0], proof)
	f.now++
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fork := f.base.Fork()
		if _, err := fork.BeginBlockAt(f.height+1, f.now, ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		v, err := Verify(testChain, raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		if r := fork.Apply(v); r.Code != CodeOK {
			b.Fatalf("%s: %s", r.Code, r.Log)
		}
	}
}
