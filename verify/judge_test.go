package verify

import (
	"errors"
	"testing"

	"github.com/gridmind/gridmind"
)

// committeeOf is auditors 10, 11, 12 (sorted by id, as results must be).
func committeeOf(t *testing.T) ([]int, []gridmind.NodeID) {
	idx := []int{10, 11, 12}
	var ids []gridmind.NodeID
	for _, i := range idx {
		_, id := testKey(i)
		ids = append(ids, id)
	}
	// sort idx by id
	for a := 0; a < len(ids); a++ {
		for b := a + 1; b < len(ids); b++ {
			if ids[b] < ids[a] {
				ids[a], ids[b] = ids[b], ids[a]
				idx[a], idx[b] = idx[b], idx[a]
			}
		}
	}
	return idx, ids
}

// params3 is a committee of three, two agreeing (what these tests build).
func params3() Params {
	p := DefaultParams()
	p.CommitteeSize, p.Quorum = 3, 2
	return p
}

func TestJudge(t *testing.T) {
	p := params3()
	c := signedCommitment(t, 1, 0)
	claimed, _ := c.Claimed(WholeRound)
	honest := h("the real output")
	idx, committee := committeeOf(t)
	res := func(got ...Hash) []Result {
		var out []Result
		for i, g := range got {
			out = append(out, signedResult(t, idx[i], &c, WholeRound, g))
		}
		return out
	}
	cases := []struct {
		name    string
		results []Result
		want    Verdict
		agree   int
	}{
		{"two of three reproduce another output", res(honest, honest), Fraud, 2},
		{"three of three", res(honest, honest, honest), Fraud, 3},
		{"two match", res(claimed, claimed), Cleared, 2},
		{"one mismatch is not proof", res(honest), Undecided, 0},
		{"mismatches that disagree with each other", res(honest, h("noise"), claimed), Undecided, 0},
		{"one match, two agreeing mismatches", res(claimed, honest, honest), Fraud, 2},
	}
	for _, tc := range cases {
		j, err := Judge(p, &c, WholeRound, tc.results, committee)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if j.Verdict != tc.want || len(j.Agreeing) != tc.agree {
			t.Errorf("%s: verdict %s with %d agreeing, want %s with %d", tc.name, j.Verdict, len(j.Agreeing), tc.want, tc.agree)
		}
	}
}

func TestJudgeRefusesBadEvidence(t *testing.T) {
	p := params3()
	c := signedCommitment(t, 1, 2)
	idx, committee := committeeOf(t)
	good := func() []Result {
		return []Result{signedResult(t, idx[0], &c, WholeRound, h("x")), signedResult(t, idx[1], &c, WholeRound, h("x"))}
	}
	other := signedCommitment(t, 2, 0)
	_, outsider := testKey(99)
	cases := map[string]struct {
		mutate func(c *Commitment, rs []Result) []Result
		want   error
	}{
		"forged commitment": {func(c *Commitment, rs []Result) []Result { c.Delta[0]++; return rs }, ErrBadCommitment},
		"forged result":     {func(c *Commitment, rs []Result) []Result { rs[0].Got[0]++; return rs }, ErrBadResult},
		"unsorted":          {func(c *Commitment, rs []Result) []Result { rs[0], rs[1] = rs[1], rs[0]; return rs }, ErrBadResult},
		"duplicate":         {func(c *Commitment, rs []Result) []Result { return []Result{rs[0], rs[0]} }, ErrBadResult},
		"other commitment": {func(c *Commitment, rs []Result) []Result {
			return []Result{signedResult(t, idx[0], &other, WholeRound, h("x"))}
		}, ErrBadResult},
		"wrong part": {func(c *Commitment, rs []Result) []Result {
			return []Result{signedResult(t, idx[0], c, 1, h("x"))}
		}, ErrBadResult},
		"not on committee": {func(c *Commitment, rs []Result) []Result {
			rs[0].Auditor = outsider
			return rs
		}, ErrNotCommittee},
		"no results": {func(c *Commitment, rs []Result) []Result { return nil }, ErrBadResult},
	}
	for name, tc := range cases {
		cc := c
		cc.Checkpoints = append([]Hash(nil), c.Checkpoints...)
		rs := tc.mutate(&cc, good())
		if _, err := Judge(p, &cc, WholeRound, rs, committee); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestJudgeToleranceModeIsExplicit(t *testing.T) {
	p := params3()
	p.Mode, p.TolerancePPM = ModeTolerance, 1000 // 0.1% relative L2
	c := signedCommitment(t, 1, 0)
	idx, committee := committeeOf(t)
	res := func(dists ...uint64) []Result {
		var out []Result
		for i, d := range dists {
			key, id := testKey(idx[i])
			r := NewResult(id, &c, WholeRound, ModeTolerance, h("whatever"), d)
			if err := r.Sign(key); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	for _, tc := range []struct {
		dists []uint64
		want  Verdict
	}{
		{[]uint64{999, 1000}, Cleared},  // within the tolerance (inclusive): match
		{[]uint64{1001, 50_000}, Fraud}, // above it: mismatch
		{[]uint64{1001, 10}, Undecided}, // one each
	} {
		j, err := Judge(p, &c, WholeRound, res(tc.dists...), committee)
		if err != nil || j.Verdict != tc.want {
			t.Errorf("distances %v: %s %v, want %s", tc.dists, j.Verdict, err, tc.want)
		}
	}
	// A bitwise result in a tolerance job (or the reverse) is refused, never read as "close".
	bitwise := []Result{signedResult(t, idx[0], &c, WholeRound, h("x"))}
	if _, err := Judge(p, &c, WholeRound, bitwise, committee); !errors.Is(err, ErrBadResult) {
		t.Errorf("bitwise result under tolerance rules: %v", err)
	}
	p.TolerancePPM = 0
	if err := p.Validate(); err == nil {
		t.Error("tolerance mode with a zero tolerance validates")
	}
}

func TestParamsNeedAMajorityQuorum(t *testing.T) {
	for _, tc := range []struct{ k, m int }{{3, 1}, {4, 2}, {3, 4}, {0, 0}} {
		p := DefaultParams()
		p.CommitteeSize, p.Quorum = tc.k, tc.m
		if p.Validate() == nil {
			t.Errorf("quorum %d of %d validates", tc.m, tc.k)
		}
	}
}

func TestEquivocation(t *testing.T) {
	c := signedCommitment(t, 1, 0)
	claimed, _ := c.Claimed(WholeRound)
	match := signedResult(t, 10, &c, WholeRound, claimed)
	mismatch := signedResult(t, 10, &c, WholeRound, h("other"))
	if err := Equivocation(&match, &mismatch); err != nil {
		t.Fatalf("a match and a mismatch by one auditor: %v", err)
	}
	same := signedResult(t, 10, &c, WholeRound, claimed)
	other := signedResult(t, 11, &c, WholeRound, h("other"))
	otherCommit := signedCommitment(t, 2, 0)
	elsewhere := signedResult(t, 10, &otherCommit, WholeRound, h("other"))
	forged := mismatch
	forged.Got[0] ^= 1
	for name, pair := range map[string][2]Result{
		"agree": {match, same}, "two auditors": {match, other}, "two commitments": {match, elsewhere},
	} {
		if err := Equivocation(&pair[0], &pair[1]); !errors.Is(err, ErrNotEquivocation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := Equivocation(&match, &forged); !errors.Is(err, ErrBadResult) {
		t.Errorf("forged second result: %v", err)
	}
}
