package diloco

import (
	"bytes"
	"testing"
)

// FuzzUnmarshalAuditInputs: saved round inputs from disk or a peer decode
// within the limit or fail cleanly, never panic, and whatever decodes
// re-encodes to the same bytes (seeds: with and without a shift target).
func FuzzUnmarshalAuditInputs(f *testing.F) {
	for _, in := range []*AuditInputs{
		{Commitment: []byte{1, 2}, State: []byte{3}, Residual: []float32{1.5}},
		{Commitment: []byte{1, 2}, State: []byte{3}, Residual: []float32{1.5}, Target: []float32{2.5, -1}},
		{},
	} {
		b, err := in.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		if len(b) > 1 {
			f.Add(b[:len(b)-1])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := UnmarshalAuditInputs(b, 1<<16)
		if err != nil {
			return
		}
		again, err := in.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded inputs do not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
