package train

import (
	"math/rand"
	"slices"
	"testing"
)

func TestRangeProofsForEveryRange(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{1, 2, 3, 5, 8, 13, 33} {
		values := randomVector(rng, n*4-1, 1)
		leaves := BlockLeaves(values, 4)
		if len(leaves) != n {
			t.Fatalf("%d leaves, want %d", len(leaves), n)
		}
		root := MerkleRoot(leaves)
		for from := 0; from <= n; from++ {
			for to := from; to <= n; to++ {
				proof := RangeProof(leaves, from, to)
				got, err := RootFromRange(n, from, leaves[from:to], proof)
				if err != nil || got != root {
					t.Fatalf("n=%d [%d,%d): root %s err %v, want %s", n, from, to, got.Short(), err, root.Short())
				}
				if to > from {
					// Any other leaf in the range breaks the proof.
					forged := append([]Hash(nil), leaves[from:to]...)
					forged[0][0] ^= 1
					if got, err := RootFromRange(n, from, forged, proof); err == nil && got == root {
						t.Fatalf("n=%d [%d,%d): a forged leaf gives the root", n, from, to)
					}
				}
				if len(proof) > 0 {
					if _, err := RootFromRange(n, from, leaves[from:to], proof[1:]); err == nil {
						t.Fatalf("n=%d [%d,%d): a short proof was accepted", n, from, to)
					}
				}
			}
		}
	}
}

func TestCheckPartAcceptsOnlyTheCommittedPart(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, codec := range []Codec{CodecInt8, CodecInt4, CodecFloat32} {
		const n, block, parts = 1000, 64, 3
		delta := randomVector(rng, n, 1)
		var payloads [][]byte
		decoded := delta
		var q Quantized
		if codec.Quantizes() {
			var fb ErrorFeedback
			fb.Codec = codec
			var err error
			if q, err = fb.Compress(delta, block); err != nil {
				t.Fatal(err)
			}
			decoded = make([]float32, n)
			_ = q.Dequantize(decoded)
		}
		leaves := BlockLeaves(decoded, block)
		c := Commitment{Root: MerkleRoot(leaves), NumParams: n, BlockSize: block, Codec: codec}
		bounds := PartBounds(n, block, parts)
		nb := NumBlocks(n, block)
		for j := range parts {
			var p []byte
			if codec.Quantizes() {
				p = EncodeQuantized(nil, q.Blocks(j*nb/parts, (j+1)*nb/parts))
			} else {
				p = EncodeFloat32(nil, delta[bounds[j]:bounds[j+1]])
			}
			payloads = append(payloads, p)
			proof := RangeProof(leaves, bounds[j]/block, NumBlocks(bounds[j+1], block))
			if err := CheckPart(c, parts, j, p, proof); err != nil {
				t.Fatalf("%s part %d: %v", codec, j, err)
			}
			if j > 0 && CheckPart(c, parts, j, payloads[j-1], proof) == nil {
				t.Fatalf("%s: part %d accepted in place of %d", codec, j-1, j)
			}
		}
	}
}

// A worker's commitment comes from QuantizedLeaves; receivers check parts
// against BlockLeaves of what they decode. The two must agree for every
// codec, whole blocks or a short last one.
func TestQuantizedLeavesAreTheDecodedBlocksLeaves(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, codec := range []Codec{CodecInt8, CodecInt4, mustTopK(4, 2), mustTopK(32, 3), mustTopK(256, 1)} {
		for _, n := range []int{1, 255, 256, 257, 3*DefaultBlockSize + 17} {
			q, err := quantize(randomVector(rng, n, 1), DefaultBlockSize, codec)
			if err != nil {
				t.Fatal(err)
			}
			decoded := make([]float32, n)
			if err := q.Dequantize(decoded); err != nil {
				t.Fatal(err)
			}
			got, err := QuantizedLeaves(q)
			if err != nil {
				t.Fatal(err)
			}
			if want := BlockLeaves(decoded, DefaultBlockSize); !slices.Equal(got, want) {
				t.Errorf("%s, %d values: the leaves differ from the decoded vector's", codec, n)
			}
		}
	}
	if _, err := QuantizedLeaves(Quantized{Codec: CodecInt8, BlockSize: 4, Values: make([]int8, 9), Scales: make([]float32, 2)}); err == nil {
		t.Error("a vector with too few scales gave leaves")
	}
}
