package verify

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
)

// Bounds on what a commitment may hold, checked before anything is
// allocated when decoding.
const (
	MaxJobBytes    = 128
	MaxSteps       = 1 << 20 // inner steps per round
	MaxCheckpoints = 256     // segments per round
	// MaxCommitmentBytes bounds an encoded, signed commitment.
	MaxCommitmentBytes = 2*MaxJobBytes + 32*(8+MaxCheckpoints) + 128
)

// ErrBadSignature: a signed statement does not verify.
var ErrBadSignature = errors.New("verify: bad signature")

// Commitment is what a training worker signs about one round: enough for
// anyone holding θ_r and the corpus to reproduce its pseudo-gradient and
// compare bit for bit.
type Commitment struct {
	Job    string          // the ledger's job id
	Round  uint64          // the round r
	Worker gridmind.NodeID // who trained (and signs)
	Start  Hash            // hash of θ_r, the state the worker trained from
	Shard  Hash            // ShardID(job, round, index, workers): the data it was dealt
	Steps  uint32          // H, the inner steps it ran

	OptBefore      Hash // StateHash of the local state (parameters + AdamW moments and step) before the H steps
	OptAfter       Hash // ... and after
	ResidualBefore Hash // error-feedback residual of the quantizer before the round
	ResidualAfter  Hash // ... and after quantizing Δ
	Delta          Hash // hash of the pseudo-gradient Δ = θ_r − θ_i it sent

	// SegmentSteps s > 0 means the worker also committed, in Checkpoints,
	// to the hash of its local state (parameters and optimizer) after every
	// s inner steps: len(Checkpoints) = ceil(Steps/s). An auditor may then
	// re-run one segment, from checkpoint j−1 (or Start and OptBefore for
	// j = 0) to checkpoint j, at 1/len(Checkpoints) of the cost.
	SegmentSteps uint32
	Checkpoints  []Hash

	// ShiftAt s > 0 means the worker began from an estimate of the
	// round's weights (a round trained ahead, while the previous round's
	// all-reduce ran) and, once the real weights (hash Target) were
	// known, after s steps moved its parameters by Target − θ_start
	// (Shift), keeping the optimizer state; then Δ = Target − θ_end. Δ is
	// still exactly what its steps moved the parameters: the shift drops
	// out. Whole-round audits only (no checkpoints).
	ShiftAt uint32
	Target  Hash

	Sig []byte // ed25519 by Worker over SigningBytes
}

const commitDomain = "gridmind/verify/commit/v1\x00"

// Segments is the number of checkpointed segments (0 without checkpoints).
func (c *Commitment) Segments() int { return len(c.Checkpoints) }

func (c *Commitment) encodeBody(e *encoder) {
	e.str(c.Job)
	e.uvarint(c.Round)
	e.node(c.Worker)
	e.hash(c.Start)
	e.hash(c.Shard)
	e.uvarint(uint64(c.Steps))
	e.hash(c.OptBefore)
	e.hash(c.OptAfter)
	e.hash(c.ResidualBefore)
	e.hash(c.ResidualAfter)
	e.hash(c.Delta)
	e.uvarint(uint64(c.SegmentSteps))
	e.uvarint(uint64(len(c.Checkpoints)))
	for _, h := range c.Checkpoints {
		e.hash(h)
	}
	e.uvarint(uint64(c.ShiftAt))
	if c.ShiftAt > 0 {
		e.hash(c.Target)
	}
}

// SigningBytes is what the worker signs: a domain tag and every field but
// the signature.
func (c *Commitment) SigningBytes() []byte {
	e := encoder{buf: append(make([]byte, 0, 512), commitDomain...)}
	c.encodeBody(&e)
	return e.buf
}

// ID identifies the commitment: the hash of what was signed (not of the
// signature, so a second valid signature does not make a second id).
func (c *Commitment) ID() Hash { return HashBytes("gridmind/verify/commit-id/v1", c.SigningBytes()) }

// Encode is the wire form: the signed fields, then the signature.
func (c *Commitment) Encode() []byte {
	e := encoder{buf: make([]byte, 0, 512)}
	c.encodeBody(&e)
	e.bytes(c.Sig)
	return e.buf
}

// DecodeCommitment parses a commitment strictly and checks its shape (not
// its signature: see Verify).
func DecodeCommitment(b []byte) (Commitment, error) {
	if len(b) > MaxCommitmentBytes {
		return Commitment{}, fmt.Errorf("verify: commitment of %d bytes exceeds %d", len(b), MaxCommitmentBytes)
	}
	d := decoder{buf: b}
	c := decodeCommitment(&d)
	if err := d.finish("commitment"); err != nil {
		return Commitment{}, err
	}
	return c, c.CheckShape()
}

func decodeCommitment(d *decoder) Commitment {
	var c Commitment
	c.Job = d.str("job", MaxJobBytes)
	c.Round = d.uvarint("round")
	c.Worker = d.node("worker")
	c.Start = d.hash("start")
	c.Shard = d.hash("shard")
	c.Steps = uint32(d.count("steps", MaxSteps))
	c.OptBefore = d.hash("optimizer before")
	c.OptAfter = d.hash("optimizer after")
	c.ResidualBefore = d.hash("residual before")
	c.ResidualAfter = d.hash("residual after")
	c.Delta = d.hash("delta")
	c.SegmentSteps = uint32(d.count("segment steps", MaxSteps))
	if n := d.count("checkpoints", MaxCheckpoints); n > 0 && d.err == nil {
		c.Checkpoints = make([]Hash, n)
		for i := range c.Checkpoints {
			c.Checkpoints[i] = d.hash("checkpoint")
		}
	}
	if c.ShiftAt = uint32(d.count("shift step", MaxSteps)); c.ShiftAt > 0 {
		c.Target = d.hash("target")
	}
	c.Sig = d.bytes("signature", ed25519.SignatureSize)
	return c
}

// CheckShape validates the fields on their own (no signature).
func (c *Commitment) CheckShape() error {
	switch {
	case len(c.Job) == 0 || len(c.Job) > MaxJobBytes:
		return fmt.Errorf("verify: commitment: job of %d bytes, want 1 to %d", len(c.Job), MaxJobBytes)
	case c.Worker.Validate() != nil:
		return fmt.Errorf("verify: commitment: worker: %v", c.Worker.Validate())
	case c.Steps == 0 || c.Steps > MaxSteps:
		return fmt.Errorf("verify: commitment: %d steps, want 1 to %d", c.Steps, MaxSteps)
	case c.SegmentSteps > c.Steps:
		return fmt.Errorf("verify: commitment: segments of %d steps in a round of %d", c.SegmentSteps, c.Steps)
	case c.ShiftAt >= c.Steps:
		return fmt.Errorf("verify: commitment: shift after step %d of a round of %d", c.ShiftAt, c.Steps)
	case c.ShiftAt > 0 && c.SegmentSteps > 0:
		return fmt.Errorf("verify: commitment: a shift after step %d with segments of %d steps (a shifted round is audited whole)", c.ShiftAt, c.SegmentSteps)
	}
	want := 0
	if c.SegmentSteps > 0 {
		want = int((c.Steps + c.SegmentSteps - 1) / c.SegmentSteps)
	}
	if want > MaxCheckpoints {
		return fmt.Errorf("verify: commitment: %d segments, at most %d", want, MaxCheckpoints)
	}
	if len(c.Checkpoints) != want {
		return fmt.Errorf("verify: commitment: %d checkpoints for %d steps in segments of %d, want %d", len(c.Checkpoints), c.Steps, c.SegmentSteps, want)
	}
	return nil
}

// Sign fills c.Sig with key, which must be c.Worker's.
func (c *Commitment) Sign(key ed25519.PrivateKey) error {
	if err := signer(key, c.Worker); err != nil {
		return err
	}
	if err := c.CheckShape(); err != nil {
		return err
	}
	c.Sig = ed25519.Sign(key, c.SigningBytes())
	return nil
}

// Verify checks the shape and the worker's signature.
func (c *Commitment) Verify() error {
	if err := c.CheckShape(); err != nil {
		return err
	}
	return verifySig(c.Worker, c.SigningBytes(), c.Sig)
}

// Part names what an auditor re-executes: the whole round (WholeRound) or
// one checkpointed segment (0 ≤ Part < Segments()).
type Part int32

// WholeRound re-runs all H steps from Start and compares Delta, OptAfter
// and ResidualAfter.
const WholeRound Part = -1

// Claimed is the hash the commitment claims for part p: for the whole
// round, the hash of (Delta, OptAfter, ResidualAfter); for segment j,
// Checkpoints[j]. ok is false when p is not a part of c.
func (c *Commitment) Claimed(p Part) (h Hash, ok bool) {
	if p == WholeRound {
		return RoundOutput(c.Delta, c.OptAfter, c.ResidualAfter), true
	}
	if p < 0 || int(p) >= len(c.Checkpoints) {
		return Hash{}, false
	}
	return c.Checkpoints[p], true
}

// RoundOutput is what a whole-round re-execution produces, as one hash:
// the auditor computes it from its own Δ, optimizer state and residual.
func RoundOutput(delta, optAfter, residualAfter Hash) Hash {
	return newHasher("gridmind/verify/round-output/v1").hash(delta).hash(optAfter).hash(residualAfter).sum()
}

// SegmentInput is the state hash segment p starts from: OptBefore for the
// first segment, else the checkpoint before it.
func (c *Commitment) SegmentInput(p Part) (state Hash, ok bool) {
	switch {
	case p == 0 && len(c.Checkpoints) > 0:
		return c.OptBefore, true
	case p > 0 && int(p) < len(c.Checkpoints):
		return c.Checkpoints[p-1], true
	}
	return Hash{}, false
}

// SegmentRange returns the inner steps [first, last) of segment p.
func (c *Commitment) SegmentRange(p Part) (first, last uint32, ok bool) {
	if p < 0 || int(p) >= len(c.Checkpoints) {
		return 0, 0, false
	}
	first = uint32(p) * c.SegmentSteps
	return first, min(first+c.SegmentSteps, c.Steps), true
}

// Matches reports whether an auditor's re-execution of part p, which
// produced got (RoundOutput of its Δ, optimizer and residual hashes for
// WholeRound, its state hash for a segment), reproduces the claim
// bit for bit.
func (c *Commitment) Matches(p Part, got Hash) bool {
	claimed, ok := c.Claimed(p)
	return ok && claimed == got
}
