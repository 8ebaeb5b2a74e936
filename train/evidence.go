package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
)

// EvidenceKind names a provable breach of the round protocol.
type EvidenceKind uint8

const (
	// EvidencePartMismatch: a participant signed a part that does not
	// belong to the pseudo-gradient it committed to (or does not decode).
	EvidencePartMismatch EvidenceKind = iota + 1
	// EvidenceEquivocation: a reducer signed two different results for the
	// same part, attempt and membership.
	EvidenceEquivocation
	// EvidenceImpersonation: a participant signed a result for a part and
	// attempt that the membership gives to another reducer.
	EvidenceImpersonation
)

func (k EvidenceKind) String() string {
	switch k {
	case EvidencePartMismatch:
		return "part-mismatch"
	case EvidenceEquivocation:
		return "equivocation"
	case EvidenceImpersonation:
		return "impersonation"
	}
	return fmt.Sprintf("evidence(%d)", uint8(k))
}

// Evidence is self-contained: everything needed to check it is inside,
// signed by the offender, so a peer or the ledger can verify it without
// trusting whoever files it and without running a model.
type Evidence struct {
	Kind     EvidenceKind
	Job      string
	Offender gridmind.NodeID
	Round    uint64

	// EvidencePartMismatch: the offender's commitment, the announcement's
	// participants and roots (so the membership hash, the part split and the
	// offender's root can be recomputed), and the signed part.
	Commitment   Commitment
	Participants []gridmind.NodeID
	Roots        []Hash
	Part         uint32
	Attempt      uint32
	Proof        []Hash
	PartSig      []byte
	Payload      []byte

	// EvidenceEquivocation: the membership and two conflicting headers.
	// EvidenceImpersonation: the membership's preimage (Start,
	// Participants, Roots) and the offender's header in A.
	Membership Hash
	A, B       ReducedHeader
	Start      Hash
}

// ErrNotEvidence: the evidence does not prove what it claims.
var ErrNotEvidence = errors.New("train: not evidence")

// Verify checks the evidence; nil means the offender provably broke the protocol.
func (e *Evidence) Verify() error {
	if len(e.Job) > MaxJobLen {
		return fmt.Errorf("%w: job name of %d bytes", ErrNotEvidence, len(e.Job))
	}
	switch e.Kind {
	case EvidencePartMismatch:
		return e.verifyMismatch()
	case EvidenceEquivocation:
		a, b := e.A, e.B
		if a.Reducer != e.Offender || b.Reducer != e.Offender || a.Part != b.Part || a.Attempt != b.Attempt {
			return fmt.Errorf("%w: the headers are not for the same slot of %s", ErrNotEvidence, e.Offender.Short())
		}
		if a.Result == b.Result {
			return fmt.Errorf("%w: the two results are the same", ErrNotEvidence)
		}
		if err := a.Verify(e.Job, e.Round, e.Membership); err != nil {
			return fmt.Errorf("%w: first header: %v", ErrNotEvidence, err)
		}
		if err := b.Verify(e.Job, e.Round, e.Membership); err != nil {
			return fmt.Errorf("%w: second header: %v", ErrNotEvidence, err)
		}
		return nil
	case EvidenceImpersonation:
		n := len(e.Participants)
		if n == 0 || !slices.IsSorted(e.Participants) || len(e.Roots) != n || e.A.Reducer != e.Offender || int(e.A.Part) >= n || int(e.A.Attempt) >= n {
			return fmt.Errorf("%w: malformed impersonation", ErrNotEvidence)
		}
		if e.Participants[(int(e.A.Part)+int(e.A.Attempt))%n] == e.Offender {
			return fmt.Errorf("%w: %s does reduce part %d at attempt %d", ErrNotEvidence, e.Offender.Short(), e.A.Part, e.A.Attempt)
		}
		membership := MembershipHash(e.Round, e.Start, e.Participants, e.Roots)
		if err := e.A.Verify(e.Job, e.Round, membership); err != nil {
			return fmt.Errorf("%w: header: %v", ErrNotEvidence, err)
		}
		return nil
	}
	return fmt.Errorf("%w: kind %d unknown", ErrNotEvidence, e.Kind)
}

func (e *Evidence) verifyMismatch() error {
	c := e.Commitment
	if c.Worker != e.Offender || c.Round != e.Round {
		return fmt.Errorf("%w: the commitment is not the offender's for round %d", ErrNotEvidence, e.Round)
	}
	if c.NumParams <= 0 || c.BlockSize <= 0 || c.BlockSize > MaxBlockSize || !slices.IsSorted(e.Participants) || len(e.Roots) != len(e.Participants) {
		return fmt.Errorf("%w: malformed commitment or membership", ErrNotEvidence)
	}
	if err := c.Verify(e.Job); err != nil {
		return fmt.Errorf("%w: commitment: %v", ErrNotEvidence, err)
	}
	i, ok := slices.BinarySearch(e.Participants, e.Offender)
	if !ok || e.Roots[i] != c.Root {
		return fmt.Errorf("%w: the membership does not carry the offender's root", ErrNotEvidence)
	}
	n := len(e.Participants)
	if int(e.Part) >= n || int(e.Attempt) >= n {
		return fmt.Errorf("%w: part %d attempt %d of %d", ErrNotEvidence, e.Part, e.Attempt, n)
	}
	membership := MembershipHash(e.Round, c.Start, e.Participants, e.Roots)
	if err := verifySig(e.Offender, partBytes(e.Job, e.Offender, e.Round, membership, e.Part, e.Attempt, e.Payload), e.PartSig); err != nil {
		return fmt.Errorf("%w: part: %v", ErrNotEvidence, err)
	}
	if CheckPart(c, n, int(e.Part), e.Payload, e.Proof) == nil {
		return fmt.Errorf("%w: the part matches the commitment", ErrNotEvidence)
	}
	return nil
}

// CheckPart reports whether payload is part j (of n) of the vector that c
// commits to, with proof; nil means it is.
func CheckPart(c Commitment, n, j int, payload []byte, proof []Hash) error {
	_, err := checkPart(c, n, j, payload, proof)
	return err
}

// checkPart is CheckPart that also returns the decoded values.
func checkPart(c Commitment, n, j int, payload []byte, proof []Hash) ([]float32, error) {
	return checkPartInto(c, n, j, payload, proof, nil)
}

// checkPartInto is checkPart decoding into out (nil: a new slice; else
// exactly the part's length).
func checkPartInto(c Commitment, n, j int, payload []byte, proof []Hash, out []float32) ([]float32, error) {
	bounds := PartBounds(c.NumParams, c.BlockSize, n)
	lo, hi := bounds[j], bounds[j+1]
	if len(payload) == 0 || Codec(payload[0]) != c.Codec {
		return nil, fmt.Errorf("train: part is not in the committed codec %s", c.Codec)
	}
	if out != nil && len(out) != hi-lo {
		out = nil
	}
	values, err := decodeVector(payload, hi-lo, out)
	if err != nil {
		return nil, err
	}
	first, leaves := partLeaves(values, lo, c.BlockSize)
	root, err := RootFromRange(NumBlocks(c.NumParams, c.BlockSize), first, leaves, proof)
	if err != nil {
		return nil, err
	}
	if root != c.Root {
		return nil, fmt.Errorf("train: part %d leads to root %s, committed %s", j, root.Short(), c.Root.Short())
	}
	return values, nil
}

const (
	evidenceMagic = "GMTE"
	// MaxEvidenceBytes bounds encoded evidence (a part of a large model
	// travels inside it).
	MaxEvidenceBytes = 64 << 20
)

// MarshalBinary encodes e: "GMTE" | 1 | kind | job | offender | round |
// commitment (worker, round, start, root, numParams u64, blockSize u32,
// codec, sig) | participants | roots | part, attempt u32 | proof | partSig |
// payload (u32 len) | membership | start | header A | header B.
func (e *Evidence) MarshalBinary() ([]byte, error) {
	if len(e.Job) > MaxJobLen || len(e.Participants) > MaxWorkers || len(e.Roots) > MaxWorkers || len(e.Proof) > MaxProofHashes || len(e.Payload) > MaxEvidenceBytes {
		return nil, errors.New("train: evidence exceeds its bounds")
	}
	c := e.Commitment
	b := append([]byte(evidenceMagic), 1, byte(e.Kind))
	b = appendString(b, e.Job)
	b = appendID(b, e.Offender)
	b = binary.LittleEndian.AppendUint64(b, e.Round)
	b = appendID(b, c.Worker)
	b = binary.LittleEndian.AppendUint64(b, c.Round)
	b = append(b, c.Start[:]...)
	b = append(b, c.Root[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.NumParams))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.BlockSize))
	b = append(b, byte(c.Codec))
	b = appendSig(b, c.Sig)
	b = appendIDs(b, e.Participants)
	b = appendHashes(b, e.Roots)
	b = binary.LittleEndian.AppendUint32(b, e.Part)
	b = binary.LittleEndian.AppendUint32(b, e.Attempt)
	b = appendHashes(b, e.Proof)
	b = appendSig(b, e.PartSig)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Payload)))
	b = append(b, e.Payload...)
	b = append(b, e.Membership[:]...)
	b = append(b, e.Start[:]...)
	for _, h := range []ReducedHeader{e.A, e.B} {
		b = appendID(b, h.Reducer)
		b = binary.LittleEndian.AppendUint32(b, h.Part)
		b = binary.LittleEndian.AppendUint32(b, h.Attempt)
		b = append(b, h.Result[:]...)
		b = appendSig(b, h.Sig)
	}
	return b, nil
}

// UnmarshalEvidence decodes what MarshalBinary wrote, strictly: bounded
// before allocating, no trailing bytes, known kind. It does not Verify.
func UnmarshalEvidence(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidenceBytes+64*1024 {
		return nil, fmt.Errorf("train: evidence of %d bytes", len(b))
	}
	r := reader{b: b}
	if string(r.bytes(4)) != evidenceMagic || r.u8() != 1 {
		return nil, errors.New("train: not evidence (bad magic or version)")
	}
	e := &Evidence{Kind: EvidenceKind(r.u8())}
	if n := int(r.u16()); r.err == nil && n > MaxJobLen {
		return nil, fmt.Errorf("train: evidence job name of %d bytes", n)
	} else {
		e.Job = string(r.bytes(n))
	}
	e.Offender = r.id()
	e.Round = r.u64()
	c := &e.Commitment
	c.Worker = r.id()
	c.Round = r.u64()
	copy(c.Start[:], r.bytes(32))
	copy(c.Root[:], r.bytes(32))
	np := r.u64()
	if np > 1<<40 {
		return nil, fmt.Errorf("train: evidence commits to %d parameters", np)
	}
	c.NumParams = int(np)
	c.BlockSize = int(r.u32())
	c.Codec = Codec(r.u8())
	c.Sig = r.sig()
	e.Participants = r.ids()
	e.Roots = r.hashes(MaxWorkers)
	e.Part = r.u32()
	e.Attempt = r.u32()
	e.Proof = r.hashes(MaxProofHashes)
	e.PartSig = r.sig()
	e.Payload = r.bytes(int(r.u32()))
	copy(e.Membership[:], r.bytes(32))
	copy(e.Start[:], r.bytes(32))
	for _, h := range []*ReducedHeader{&e.A, &e.B} {
		h.Reducer = r.id()
		h.Part = r.u32()
		h.Attempt = r.u32()
		copy(h.Result[:], r.bytes(32))
		h.Sig = r.sig()
	}
	if r.err != nil {
		return nil, fmt.Errorf("train: evidence: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("train: evidence: %d trailing bytes", len(r.b))
	}
	if e.Kind < EvidencePartMismatch || e.Kind > EvidenceImpersonation {
		return nil, fmt.Errorf("train: evidence kind %d unknown", e.Kind)
	}
	if e.Offender == "" {
		return nil, errors.New("train: evidence names no offender")
	}
	return e, nil
}
