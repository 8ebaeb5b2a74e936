package verify

import (
	"bytes"
	"testing"
)

// FuzzDecodeProof: any input decodes or fails cleanly, never panics, and
// whatever decodes re-encodes to the same bytes (one byte form per proof).
func FuzzDecodeProof(f *testing.F) {
	c := signedCommitment(f, 1, 4)
	idx := []int{10, 11}
	var rs []Result
	for _, i := range idx {
		rs = append(rs, signedResult(f, i, &c, 0, h("x")))
	}
	if rs[1].Auditor < rs[0].Auditor {
		rs[0], rs[1] = rs[1], rs[0]
	}
	p := Proof{Commitment: c, Results: rs}
	good := p.Encode()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		if again := p.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		_, _ = Judge(DefaultParams(), &p.Commitment, WholeRound, p.Results, nil)
	})
}

func TestProofRoundTrip(t *testing.T) {
	c := signedCommitment(t, 1, 0)
	p := Proof{Commitment: c, Results: []Result{signedResult(t, 10, &c, WholeRound, h("x"))}}
	got, err := DecodeProof(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Commitment.ID() != c.ID() || len(got.Results) != 1 || got.Results[0].Verify() != nil {
		t.Fatal("proof did not survive the round trip")
	}
}

// FuzzDecodeCommitment: any input decodes or fails cleanly, and whatever
// decodes has a valid shape and re-encodes to the same bytes; seeds
// include a round shifted to the real weights and one with segments.
func FuzzDecodeCommitment(f *testing.F) {
	shifted := signedCommitment(f, 1, 0)
	shifted.ShiftAt, shifted.Target = 3, h("theta-7-real")
	key, _ := testKey(1)
	if err := shifted.Sign(key); err != nil {
		f.Fatal(err)
	}
	for _, c := range []Commitment{signedCommitment(f, 1, 0), signedCommitment(f, 2, 4), shifted} {
		b := c.Encode()
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommitment(b)
		if err != nil {
			return
		}
		if err := c.CheckShape(); err != nil {
			t.Fatalf("decoded a commitment of a bad shape: %v", err)
		}
		if again := c.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		_ = c.Verify()
	})
}
