package verify

import "fmt"

// Proof is what an accuser files: the accused's own signed commitment and
// the committee's signed results. Judge decides what it proves.
type Proof struct {
	Commitment Commitment
	Results    []Result // sorted by auditor, each once
}

// MaxProofBytes bounds an encoded proof.
const MaxProofBytes = MaxCommitmentBytes + 4 + MaxCommittee*(MaxResultBytes+2)

// Encode is the proof's canonical wire form.
func (p *Proof) Encode() []byte {
	e := encoder{buf: make([]byte, 0, 1024)}
	e.bytes(p.Commitment.Encode())
	encodeResults(&e, p.Results)
	return e.buf
}

// DecodeProof parses a proof strictly, with every length bounded before
// anything is allocated. Signatures are checked by Judge.
func DecodeProof(b []byte) (Proof, error) {
	if len(b) > MaxProofBytes {
		return Proof{}, fmt.Errorf("verify: proof of %d bytes exceeds %d", len(b), MaxProofBytes)
	}
	d := decoder{buf: b}
	var p Proof
	var err error
	raw := d.take("commitment", d.count("commitment length", MaxCommitmentBytes))
	if d.err == nil {
		if p.Commitment, err = DecodeCommitment(raw); err != nil {
			return Proof{}, err
		}
	}
	if p.Results, err = decodeResults(&d); err != nil {
		return Proof{}, err
	}
	if err := d.finish("proof"); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// encodeResults writes a committee's results: a count, then each result's
// encoding as a length-prefixed field (both proofs end with them).
func encodeResults(e *encoder, rs []Result) {
	e.uvarint(uint64(len(rs)))
	for i := range rs {
		e.bytes(rs[i].Encode())
	}
}

// decodeResults reads what encodeResults wrote: at least one result, at
// most MaxCommittee, each bounded before it is taken. A malformed count or
// length is left in d's error; a malformed result is returned.
func decodeResults(d *decoder) ([]Result, error) {
	n := d.count("results", MaxCommittee)
	if n == 0 && d.err == nil {
		d.fail("results: none")
	}
	var out []Result
	for i := 0; i < n && d.err == nil; i++ {
		raw := d.take("result", d.count("result length", MaxResultBytes))
		if d.err != nil {
			break
		}
		r, err := DecodeResult(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
