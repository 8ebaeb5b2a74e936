package train

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"testing"
)

// FuzzDecodeTopK feeds the decoder arbitrary bytes as a part of n
// elements (seeds: testdata/fuzz/FuzzDecodeTopK and below). Whatever it
// accepts must be n finite values, at most k per block, each an odd
// multiple (up to 2^b − 1) of its block's scale, and must be the only
// encoding of those values: encoding them again gives the same bytes.
func FuzzDecodeTopK(f *testing.F) {
	rng := rand.New(rand.NewSource(11))
	for _, tc := range []struct {
		codec  Codec
		n, bs  int
		zeroed bool
	}{{mustTopK(4, 2), 1000, 256, false}, {mustTopK(16, 3), 200, 64, false}, {mustTopK(2, 4), 700, 300, true}, {mustTopK(32, 4), 33, 8, false}, {mustTopK(256, 1), 600, 256, false}, {mustTopK(96, 2), 600, 256, true}} {
		x := topKVector(rng, tc.n)
		if tc.zeroed {
			clear(x[:tc.bs])
		}
		q, err := quantize(x, tc.bs, tc.codec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EncodeQuantized(nil, q), tc.n)
	}
	f.Add(topKWire(mustTopK(2, 2), 16, 16, []uint16{0x3f80}, 5, 1, 0), 16)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<20 || len(b) == 0 || !Codec(b[0]).IsTopK() {
			return
		}
		v, err := DecodeVector(b, n)
		if err != nil {
			return
		}
		if len(v) != n {
			t.Fatalf("decoded %d elements, want %d", len(v), n)
		}
		codec := Codec(b[0])
		k, bits := codec.TopK()
		bs := int(binary.LittleEndian.Uint32(b[5:]))
		q := Quantized{Codec: codec, BlockSize: bs, Scales: make([]float32, NumBlocks(n, bs)), Values: make([]int8, n)}
		for blk := range q.Scales {
			scale := bf16(binary.LittleEndian.Uint16(b[9+2*blk:]))
			q.Scales[blk] = scale
			kept := 0
			for i := blk * bs; i < min((blk+1)*bs, n); i++ {
				if !finite32(v[i]) {
					t.Fatalf("element %d decodes to %v", i, v[i])
				}
				if v[i] == 0 && math.Signbit(float64(v[i])) {
					t.Fatalf("element %d decodes to -0", i)
				}
				if v[i] == 0 {
					continue
				}
				odd := v[i] / scale
				if odd != float32(int(odd)) || int(odd)%2 == 0 || int(odd) > 1<<bits-1 || int(odd) < 1-1<<bits {
					t.Fatalf("element %d is %v, not an odd multiple of the scale %v", i, v[i], scale)
				}
				q.Values[i] = int8(odd)
				kept++
			}
			if kept > k {
				t.Fatalf("block %d keeps %d values, k is %d", blk, kept, k)
			}
		}
		if again := EncodeQuantized(nil, q); !bytes.Equal(again, b) {
			t.Fatalf("a second encoding of the same values:\n%x\n%x", b, again)
		}
	})
}
