package verify

import (
	"crypto/ed25519"
	"fmt"

	"github.com/gridmind/gridmind"
)

// Mode says how an auditor compared its re-execution with the claim.
type Mode uint8

const (
	// ModeBitwise: equal hashes or not. This is the mode on the CPU
	// backend, which is bitwise deterministic under a seed on one machine
	// type.
	ModeBitwise Mode = 1
	// ModeTolerance: the auditor computed the relative L2 distance
	// ‖Δ_auditor − Δ_claimed‖ / ‖Δ_claimed‖ in parts per million; the job's
	// Params.TolerancePPM is the line between match and mismatch. For
	// backends or machines on which bitwise equality cannot hold.
	ModeTolerance Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeBitwise:
		return "bitwise"
	case ModeTolerance:
		return "tolerance"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// MaxResultBytes bounds an encoded, signed result.
const MaxResultBytes = 256

// Result is an auditor's signed report of one re-execution.
type Result struct {
	Auditor    gridmind.NodeID
	Commitment Hash // Commitment.ID() of the work re-executed
	Part       Part // WholeRound or a segment
	Mode       Mode
	Got        Hash   // the output hash the auditor computed (Claimed's counterpart)
	DistPPM    uint64 // ModeTolerance only: relative L2 distance, ppm (0 in bitwise mode)
	Sig        []byte
}

const resultDomain = "gridmind/verify/result/v1\x00"

func (r *Result) encodeBody(e *encoder) {
	e.node(r.Auditor)
	e.hash(r.Commitment)
	e.uvarint(uint64(int64(r.Part) + 1)) // WholeRound (−1) is 0 on the wire
	e.byte1(byte(r.Mode))
	e.hash(r.Got)
	e.uvarint(r.DistPPM)
}

// SigningBytes is what the auditor signs.
func (r *Result) SigningBytes() []byte {
	e := encoder{buf: append(make([]byte, 0, 160), resultDomain...)}
	r.encodeBody(&e)
	return e.buf
}

// Encode is the wire form: the signed fields, then the signature.
func (r *Result) Encode() []byte {
	e := encoder{buf: make([]byte, 0, 160)}
	r.encodeBody(&e)
	e.bytes(r.Sig)
	return e.buf
}

func decodeResult(d *decoder) Result {
	var r Result
	r.Auditor = d.node("auditor")
	r.Commitment = d.hash("commitment")
	r.Part = Part(int64(d.count("part", MaxCheckpoints)) - 1)
	r.Mode = Mode(d.byte1("mode"))
	r.Got = d.hash("got")
	r.DistPPM = d.uvarint("distance")
	r.Sig = d.bytes("signature", ed25519.SignatureSize)
	return r
}

// DecodeResult parses a result strictly (not its signature: see Verify).
func DecodeResult(b []byte) (Result, error) {
	if len(b) > MaxResultBytes {
		return Result{}, fmt.Errorf("verify: result of %d bytes exceeds %d", len(b), MaxResultBytes)
	}
	d := decoder{buf: b}
	r := decodeResult(&d)
	if err := d.finish("result"); err != nil {
		return Result{}, err
	}
	return r, r.CheckShape()
}

// CheckShape validates the fields on their own.
func (r *Result) CheckShape() error {
	switch {
	case r.Auditor.Validate() != nil:
		return fmt.Errorf("verify: result: auditor: %v", r.Auditor.Validate())
	case r.Part < WholeRound || r.Part >= MaxCheckpoints:
		return fmt.Errorf("verify: result: part %d out of range", r.Part)
	case r.Mode != ModeBitwise && r.Mode != ModeTolerance:
		return fmt.Errorf("verify: result: unknown mode %d", r.Mode)
	case r.Mode == ModeBitwise && r.DistPPM != 0:
		return fmt.Errorf("verify: result: a bitwise result carries no distance")
	}
	return nil
}

// Sign fills r.Sig with key, which must be r.Auditor's.
func (r *Result) Sign(key ed25519.PrivateKey) error {
	if err := signer(key, r.Auditor); err != nil {
		return err
	}
	if err := r.CheckShape(); err != nil {
		return err
	}
	r.Sig = ed25519.Sign(key, r.SigningBytes())
	return nil
}

// Verify checks the shape and the auditor's signature.
func (r *Result) Verify() error {
	if err := r.CheckShape(); err != nil {
		return err
	}
	return verifySig(r.Auditor, r.SigningBytes(), r.Sig)
}

// NewResult is what an auditor reports after re-running part p of c and
// getting output hash got (and, in tolerance mode, distance distPPM). It
// is unsigned; call Sign.
func NewResult(auditor gridmind.NodeID, c *Commitment, p Part, mode Mode, got Hash, distPPM uint64) Result {
	if mode == ModeBitwise {
		distPPM = 0
	}
	return Result{Auditor: auditor, Commitment: c.ID(), Part: p, Mode: mode, Got: got, DistPPM: distPPM}
}
