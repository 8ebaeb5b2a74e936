package verify

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

// signedReceipt is server i's receipt for a request of client 2.
func signedReceipt(t testing.TB, server int, output string) ServedReceipt {
	t.Helper()
	key, id := testKey(server)
	_, client := testKey(2)
	rc := ServedReceipt{RequestID: "req-1", Model: "m", Server: id, Client: client, TokensIn: 5, TokensOut: 16,
		TimeMs: 1_700_000_000_123, RequestHash: h("request"), Seed: -7, OutputHash: h(output)}
	if err := rc.Sign(key); err != nil {
		t.Fatal(err)
	}
	return rc
}

func inferenceResult(t testing.TB, auditor int, rc *ServedReceipt, got Hash) Result {
	t.Helper()
	key, id := testKey(auditor)
	r := NewInferenceResult(id, rc, got)
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	return r
}

// sortedResults orders results by auditor, as a proof must.
func sortedResults(rs []Result) []Result {
	slices.SortFunc(rs, func(a, b Result) int {
		return cmp.Compare(a.Auditor, b.Auditor)
	})
	return rs
}

func TestServedReceiptRoundTrip(t *testing.T) {
	rc := signedReceipt(t, 1, "text")
	got, err := DecodeServedReceipt(rc.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != rc.ID() || got.Verify() != nil || got.Seed != -7 {
		t.Fatalf("receipt did not survive the round trip: %+v", got)
	}
	forged := rc
	forged.OutputHash = h("other text")
	if err := forged.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("receipt with another output verified: %v", err)
	}
	bad := []struct {
		name string
		edit func(*ServedReceipt)
	}{
		{"empty request id", func(r *ServedReceipt) { r.RequestID = "" }},
		{"long model", func(r *ServedReceipt) { r.Model = string(make([]byte, MaxReceiptIDBytes+1)) }},
		{"negative tokens", func(r *ServedReceipt) { r.TokensOut = -1 }},
		{"no time", func(r *ServedReceipt) { r.TimeMs = 0 }},
		{"no client", func(r *ServedReceipt) { r.Client = "" }},
	}
	for _, tc := range bad {
		r := rc
		tc.edit(&r)
		if err := r.CheckShape(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
		if _, err := DecodeServedReceipt(r.Encode()); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
	if _, err := DecodeServedReceipt(append(rc.Encode(), 0)); err == nil {
		t.Error("trailing byte decoded")
	}
}

func TestJudgeInference(t *testing.T) {
	p := DefaultParams()
	cheat := signedReceipt(t, 1, "cheap model's text")
	honest := signedReceipt(t, 1, "text")
	var committee []gridmind.NodeID
	for i := 10; i < 15; i++ {
		_, id := testKey(i)
		committee = append(committee, id)
	}
	rerun := h("text") // what every replica of the weights produces
	results := func(rc *ServedReceipt, outputs map[int]Hash) []Result {
		var rs []Result
		for a, got := range outputs {
			rs = append(rs, inferenceResult(t, a, rc, got))
		}
		return sortedResults(rs)
	}
	tests := []struct {
		name    string
		rc      *ServedReceipt
		outputs map[int]Hash
		want    Verdict
		agree   int
	}{
		{"three replicas disagree with the server", &cheat, map[int]Hash{10: rerun, 11: rerun, 12: rerun}, Fraud, 3},
		{"a vouching minority does not save it", &cheat, map[int]Hash{10: rerun, 11: rerun, 12: rerun, 13: cheat.OutputHash}, Fraud, 3},
		{"mismatches on different outputs prove nothing", &cheat, map[int]Hash{10: rerun, 11: h("x"), 12: h("y")}, Undecided, 0},
		{"the replicas reproduce the honest server", &honest, map[int]Hash{10: rerun, 11: rerun, 12: rerun, 13: h("a liar")}, Cleared, 3},
		{"two of five", &cheat, map[int]Hash{10: rerun, 11: rerun}, Undecided, 0},
	}
	for _, tc := range tests {
		j, err := JudgeInference(p, tc.rc, results(tc.rc, tc.outputs), committee)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if j.Verdict != tc.want || len(j.Agreeing) != tc.agree {
			t.Errorf("%s: %s with %d agreeing, want %s with %d", tc.name, j.Verdict, len(j.Agreeing), tc.want, tc.agree)
		}
	}

	good := results(&cheat, map[int]Hash{10: rerun, 11: rerun, 12: rerun})
	forged := cheat
	forged.OutputHash = rerun
	errs := []struct {
		name      string
		rc        *ServedReceipt
		rs        []Result
		committee []gridmind.NodeID
		p         Params
		want      error
	}{
		{"receipt not signed by its server", &forged, good, committee, p, ErrBadCommitment},
		{"results about another receipt", &honest, good, committee, p, ErrBadResult},
		{"auditor off the committee", &cheat, good, committee[1:], p, ErrNotCommittee},
		{"unsorted results", &cheat, []Result{good[2], good[0], good[1]}, committee, p, ErrBadResult},
	}
	for _, tc := range errs {
		if _, err := JudgeInference(tc.p, tc.rc, tc.rs, tc.committee); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	tol := p
	tol.Mode, tol.TolerancePPM = ModeTolerance, 1000
	if _, err := JudgeInference(tol, &cheat, good, committee); err == nil {
		t.Error("judged inference with a tolerance")
	}
	// The server cannot sit on its own committee.
	key, server := testKey(1)
	self := NewInferenceResult(server, &cheat, cheat.OutputHash)
	if err := self.Sign(key); err != nil {
		t.Fatal(err)
	}
	if _, err := JudgeInference(p, &cheat, []Result{self}, append(committee, server)); !errors.Is(err, ErrBadResult) {
		t.Errorf("server's own result: %v", err)
	}
}

func TestInferenceCommitteeIsTheDrawAndSkipsTheServer(t *testing.T) {
	rc := signedReceipt(t, 1, "text")
	var candidates []gridmind.NodeID
	for i := 0; i < 20; i++ {
		_, id := testKey(i)
		candidates = append(candidates, id)
	}
	beacon := h("beacon")
	a := InferenceCommittee(beacon, &rc, candidates, 5)
	reversed := slices.Clone(candidates)
	slices.Reverse(reversed)
	if b := InferenceCommittee(beacon, &rc, reversed, 5); !slices.Equal(a, b) {
		t.Errorf("candidate order changed the committee: %v vs %v", a, b)
	}
	if len(a) != 5 || slices.Contains(a, rc.Server) {
		t.Fatalf("committee %v: want 5 members without the server", a)
	}
	if other := InferenceCommittee(h("another beacon"), &rc, candidates, 5); slices.Equal(a, other) {
		t.Error("another beacon drew the same committee")
	}
}

// FuzzDecodeInferenceProof: any input decodes or fails cleanly, never
// panics, and whatever decodes re-encodes to the same bytes.
func FuzzDecodeInferenceProof(f *testing.F) {
	rc := signedReceipt(f, 1, "cheap")
	rs := sortedResults([]Result{inferenceResult(f, 10, &rc, h("text")), inferenceResult(f, 11, &rc, h("text"))})
	p := InferenceProof{Receipt: rc, Results: rs}
	good := p.Encode()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeInferenceProof(b)
		if err != nil {
			return
		}
		if again := p.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		_, _ = JudgeInference(DefaultParams(), &p.Receipt, p.Results, nil)
	})
}

func TestInferenceProofRoundTrip(t *testing.T) {
	rc := signedReceipt(t, 1, "cheap")
	p := InferenceProof{Receipt: rc, Results: []Result{inferenceResult(t, 10, &rc, h("text"))}}
	got, err := DecodeInferenceProof(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Receipt.ID() != rc.ID() || len(got.Results) != 1 || got.Results[0].Verify() != nil {
		t.Fatal("proof did not survive the round trip")
	}
	if _, err := DecodeInferenceProof(p.Encode()[:10]); err == nil {
		t.Error("truncated proof decoded")
	}
	empty := InferenceProof{Receipt: rc}
	if _, err := DecodeInferenceProof(empty.Encode()); err == nil {
		t.Error("proof without results decoded")
	}
}
