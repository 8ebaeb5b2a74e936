package verify

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
)

// Verdict is what a set of audit results proves about a commitment.
type Verdict uint8

const (
	// Undecided: fewer than Quorum results agree either way.
	Undecided Verdict = iota
	// Fraud: at least Quorum committee members reproduced the work and got
	// the same output, which is not the one the worker signed (bitwise), or
	// were all farther than the tolerance from it.
	Fraud
	// Cleared: at least Quorum committee members reproduced exactly what
	// the worker signed (or came within the tolerance).
	Cleared
)

func (v Verdict) String() string {
	switch v {
	case Undecided:
		return "undecided"
	case Fraud:
		return "fraud"
	case Cleared:
		return "cleared"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Judgement is a verdict and who it rests on.
type Judgement struct {
	Verdict    Verdict
	Part       Part
	Mismatches int               // results that disagree with the claim
	Matches    int               // results that agree with it
	Agreeing   []gridmind.NodeID // the auditors whose results carry the verdict, sorted
}

// Errors Judge returns for evidence that cannot be judged at all.
var (
	ErrBadCommitment = errors.New("verify: bad commitment")
	ErrBadResult     = errors.New("verify: bad result")
	ErrNotCommittee  = errors.New("verify: auditor is not on the drawn committee")
)

// Judge decides what results prove about c, re-executed at part, given the
// committee drawn for it (Committee). It checks every signature and that
// every result is about this commitment and part, in the params' mode,
// from a distinct committee member; results must be sorted by auditor.
// It never runs a model: equal hashes (or a signed distance) are all it
// compares.
func Judge(p Params, c *Commitment, part Part, results []Result, committee []gridmind.NodeID) (Judgement, error) {
	if err := p.Validate(); err != nil {
		return Judgement{}, err
	}
	if err := c.Verify(); err != nil {
		return Judgement{}, fmt.Errorf("%w: %w", ErrBadCommitment, err)
	}
	claimed, ok := c.Claimed(part)
	if !ok {
		return Judgement{}, fmt.Errorf("%w: part %d of a commitment with %d segments", ErrBadResult, part, c.Segments())
	}
	return judge(p, c.Worker, c.ID(), part, claimed, results, committee)
}

// judge is Judge once the claim is known to hold: worker signed that part
// of the work identified by id produced claimed.
func judge(p Params, worker gridmind.NodeID, id Hash, part Part, claimed Hash, results []Result, committee []gridmind.NodeID) (Judgement, error) {
	if len(results) == 0 || len(results) > p.CommitteeSize {
		return Judgement{}, fmt.Errorf("%w: %d results, want 1 to %d", ErrBadResult, len(results), p.CommitteeSize)
	}
	j := Judgement{Part: part}
	byOutput := map[Hash][]gridmind.NodeID{}
	var mismatched, matched []gridmind.NodeID
	for i := range results {
		r := &results[i]
		if i > 0 && r.Auditor <= results[i-1].Auditor {
			return Judgement{}, fmt.Errorf("%w: results must be sorted by auditor, each once", ErrBadResult)
		}
		if !slices.Contains(committee, r.Auditor) {
			return Judgement{}, fmt.Errorf("%w: %s", ErrNotCommittee, r.Auditor.Short())
		}
		if r.Auditor == worker {
			return Judgement{}, fmt.Errorf("%w: the worker audits itself", ErrBadResult)
		}
		if err := r.Verify(); err != nil {
			return Judgement{}, fmt.Errorf("%w: %w", ErrBadResult, err)
		}
		switch {
		case r.Commitment != id:
			return Judgement{}, fmt.Errorf("%w: result of %s is about another commitment", ErrBadResult, r.Auditor.Short())
		case r.Part != part:
			return Judgement{}, fmt.Errorf("%w: result of %s re-ran part %d, the draw says %d", ErrBadResult, r.Auditor.Short(), r.Part, part)
		case r.Mode != p.Mode:
			return Judgement{}, fmt.Errorf("%w: result of %s compares %s, the rules say %s", ErrBadResult, r.Auditor.Short(), r.Mode, p.Mode)
		}
		if p.Mode == ModeBitwise {
			if r.Got == claimed {
				matched = append(matched, r.Auditor)
			} else {
				mismatched = append(mismatched, r.Auditor)
				byOutput[r.Got] = append(byOutput[r.Got], r.Auditor)
			}
			continue
		}
		if r.DistPPM > p.TolerancePPM {
			mismatched = append(mismatched, r.Auditor)
		} else {
			matched = append(matched, r.Auditor)
		}
	}
	j.Mismatches, j.Matches = len(mismatched), len(matched)
	agreeing := mismatched
	if p.Mode == ModeBitwise {
		// Honest re-executions of a deterministic computation agree with
		// each other bit for bit: fraud needs Quorum of them on one output.
		agreeing = nil
		for _, ids := range byOutput { // at most one group can reach the quorum: 2m > k
			if len(ids) >= p.Quorum {
				agreeing = ids
			}
		}
	}
	switch {
	case len(agreeing) >= p.Quorum:
		j.Verdict, j.Agreeing = Fraud, slices.Clone(agreeing)
	case len(matched) >= p.Quorum:
		j.Verdict, j.Agreeing = Cleared, slices.Clone(matched)
	}
	slices.Sort(j.Agreeing)
	return j, nil
}

// ErrNotEquivocation: the two results do not prove that their auditor
// said two different things about the same work.
var ErrNotEquivocation = errors.New("verify: not an equivocation")

// Equivocation checks that a and b, both validly signed by the same
// auditor about the same commitment and part in the same mode, report
// different outputs (or distances). An honest auditor re-executes once and
// reports once; two different reports of one deterministic computation
// mean at least one is a lie, whichever way the committee voted.
func Equivocation(a, b *Result) error {
	switch {
	case a.Auditor != b.Auditor:
		return fmt.Errorf("%w: results of two auditors", ErrNotEquivocation)
	case a.Commitment != b.Commitment || a.Part != b.Part || a.Mode != b.Mode:
		return fmt.Errorf("%w: the results are about different work", ErrNotEquivocation)
	case a.Got == b.Got && a.DistPPM == b.DistPPM:
		return fmt.Errorf("%w: the results agree", ErrNotEquivocation)
	}
	if err := a.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResult, err)
	}
	if err := b.Verify(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResult, err)
	}
	return nil
}
