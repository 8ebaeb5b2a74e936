package train

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"testing"
)

// The fast top-k compressor must give exactly the bits of the reference
// in topk_ref_test.go: the values, scales and encoding a worker commits
// to, and the residual it carries into the next round.

// tieHeavyVector draws magnitudes from a handful of values, so blocks hold
// many exact ties (±0 among them) and the threshold often falls in a run
// of equal magnitudes.
func tieHeavyVector(rng *rand.Rand, n int) []float32 {
	palette := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5, 3, 1e-40, -1e-40, 0x1p-149}
	x := make([]float32, n)
	for i := range x {
		x[i] = palette[rng.Intn(len(palette))] * float32(math.Ldexp(1, rng.Intn(3)))
	}
	return x
}

// spreadVector has magnitudes across many binades, so sums of magnitudes
// are not exact and must keep their order.
func spreadVector(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Ldexp(1, rng.Intn(80)-60))
	}
	return x
}

// withNonFinite puts a NaN or an infinity into a few vectors.
func withNonFinite(rng *rand.Rand, x []float32) []float32 {
	if len(x) > 0 && rng.Intn(8) == 0 {
		bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
		x[rng.Intn(len(x))] = bad[rng.Intn(len(bad))]
	}
	return x
}

var equivTopKCodecs = func() (out []Codec) {
	for _, k := range []int{1, 2, 3, 4, 5, 8, 13, 16, 20, 32, 40, 64, 128, 160, 224, 256} {
		for bits := MinTopKBits; bits <= MaxTopKBits; bits++ {
			out = append(out, mustTopK(k, bits))
		}
	}
	return out
}()

// checkTopKMatchesReference runs three rounds of error feedback on x (the
// later rounds on x scaled) with the fast and the reference compressor
// and compares every bit: values, scales, encoding, decoded values and
// the carried residual, or the error.
func checkTopKMatchesReference(t *testing.T, codec Codec, x []float32, blockSize int) {
	t.Helper()
	fast := ErrorFeedback{Codec: codec}
	var refResidual []float32
	for round := range 3 {
		in := x
		if round > 0 {
			in = make([]float32, len(x))
			for i, v := range x {
				in[i] = v * float32(round) / 3
			}
		}
		got, gotErr := fast.Compress(in, blockSize)
		want, wantErr := refTopKCompress(&refResidual, codec, in, blockSize)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("%s n=%d bs=%d round %d: error %v, reference %v", codec, len(x), blockSize, round, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		what := codec.String()
		sameQuantized(t, what, got, want)
		sameBits(t, what+" residual", fast.Residual(), refResidual)
		wire := EncodeQuantized(nil, got)
		if refWire := refEncodeTopK(nil, want); !bytes.Equal(wire, refWire) {
			t.Fatalf("%s n=%d bs=%d: encodings differ", what, len(x), blockSize)
		}
		decoded, err := DecodeVector(wire, len(x))
		if err != nil {
			t.Fatalf("%s: decoding its own encoding: %v", what, err)
		}
		dequantized := make([]float32, len(x))
		if err := want.Dequantize(dequantized); err != nil {
			t.Fatal(err)
		}
		sameBits(t, what+" decoded", decoded, dequantized)
		// quantize is a first round without a residual.
		if round == 0 {
			q, err := quantize(in, blockSize, codec)
			if err != nil {
				t.Fatal(err)
			}
			sameQuantized(t, what+" quantize", q, want)
		}
	}
}

func TestTopKCompressMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	sizes := append([]struct{ n, blockSize int }{{16, 16}, {17, 16}, {300, 300}, {2000, 1024}}, equivSizes...)
	kinds := 5
	if testing.Short() { // two of the five kinds of input per codec and size, in turn (the race run)
		kinds = 2
	}
	for c, codec := range equivTopKCodecs {
		for s, sz := range sizes {
			for trial := range kinds {
				var x []float32
				switch (c + s + trial) % 5 {
				case 0:
					x = topKVector(rng, sz.n)
				case 1:
					x = trickyVector(rng, sz.n)
				case 2:
					x = tieHeavyVector(rng, sz.n)
				case 3:
					x = spreadVector(rng, sz.n)
				default:
					x = withNonFinite(rng, benchVector(rng.Int63(), sz.n))
				}
				checkTopKMatchesReference(t, codec, x, sz.blockSize)
			}
		}
	}
}

// TestTopKThresholdTies pins the selection where the k-th largest
// magnitude is shared: the lower indices win, whatever the block size.
func TestTopKThresholdTies(t *testing.T) {
	for _, n := range []int{2, 16, 17, 256, 1000} {
		for _, k := range []int{1, 2, 7, n / 2, n - 1} {
			if k < 1 || k >= n {
				continue
			}
			mag := make([]uint32, n)
			for i := range mag {
				mag[i] = math.Float32bits(1)
			}
			mag[n-1] = math.Float32bits(2) // the largest, last
			s := newTopKScratch(n)
			kept := s.selectTop(mag, k, mag[n-1])
			want := []int32{}
			for i := range k - 1 {
				want = append(want, int32(i))
			}
			want = append(want, int32(n-1))
			if len(kept) != len(want) {
				t.Fatalf("n=%d k=%d: kept %v, want %v", n, k, kept, want)
			}
			for i := range want {
				if kept[i] != want[i] {
					t.Fatalf("n=%d k=%d: kept %v, want %v", n, k, kept, want)
				}
			}
		}
	}
}

// FuzzTopKCompressMatchesReference compresses arbitrary float32 bits
// (three rounds of error feedback) with the fast and the reference
// compressor and compares every bit.
func FuzzTopKCompressMatchesReference(f *testing.F) {
	seed := make([]byte, 0, 4*600)
	for _, v := range topKVector(rand.New(rand.NewSource(5)), 600) {
		seed = binary.LittleEndian.AppendUint32(seed, math.Float32bits(v))
	}
	f.Add(seed, byte(mustTopK(4, 2)), 256)
	f.Add(seed, byte(mustTopK(32, 2)), 64)
	f.Add(seed, byte(mustTopK(256, 1)), 256)
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x80, 1, 0, 0, 0}, byte(mustTopK(1, 1)), 3)
	f.Fuzz(func(t *testing.T, b []byte, codecByte byte, blockSize int) {
		codec := Codec(codecByte)
		if !codec.IsTopK() || blockSize <= 0 || blockSize > 1100 {
			return
		}
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		checkTopKMatchesReference(t, codec, x, blockSize)
	})
}

// TestSumMagnitudesIsSequential checks the sum the one-bit scale comes
// from, four sums at a time, against the plain sum in element order, bit
// for bit, wherever sumIsExact lets the compressor use it. A differing
// last bit rarely survives the scale's rounding to a bfloat16, so the
// compressor's tests alone would miss it.
func TestSumMagnitudesIsSequential(t *testing.T) {
	rng := rand.New(rand.NewSource(29))
	exact := 0
	for trial := range 2000 {
		n := 1 + rng.Intn(600)
		x := make([]float32, n)
		binades, offset := 1+rng.Intn(40), rng.Intn(150)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * math.Ldexp(1, rng.Intn(binades)-offset))
			if rng.Intn(10) == 0 {
				x[i] = 0
			}
		}
		maxBits, minBits, got := signMagnitudes(make([]float32, n), x, nil)
		if maxBits == 0 || !sumIsExact(n, maxBits, minBits) {
			continue
		}
		exact++
		var want float64
		for _, v := range x {
			want += math.Abs(float64(v))
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("trial %d (n %d, %d binades): sum %v, in order %v", trial, n, binades, got, want)
		}
	}
	if exact < 500 {
		t.Fatalf("only %d of 2000 blocks summed four at a time", exact)
	}
}

// checkTopKDecodeAgrees decodes arbitrary bytes as a top-k vector of n
// elements with the fast and the reference decoder: the same error, or
// the same bits.
func checkTopKDecodeAgrees(t *testing.T, wire []byte, n int) {
	t.Helper()
	if len(wire) < vectorHeader || !Codec(wire[0]).IsTopK() || int(binary.LittleEndian.Uint32(wire[1:])) != n {
		return
	}
	got, gotErr := decodeTopK(Codec(wire[0]), n, wire[vectorHeader:], nil)
	want, wantErr := refDecodeTopK(Codec(wire[0]), n, wire[vectorHeader:])
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("%x: error %v, reference %v", wire, gotErr, wantErr)
	}
	if gotErr == nil {
		sameBits(t, "decoded", got, want)
	}
}

func TestTopKDecodeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(37))
	for _, codec := range equivTopKCodecs {
		for _, sz := range equivSizes {
			q, err := quantize(topKVector(rng, sz.n), sz.blockSize, codec)
			if err != nil {
				t.Fatal(err)
			}
			wire := EncodeQuantized(nil, q)
			checkTopKDecodeAgrees(t, wire, sz.n)
			for range 20 { // damaged: a flipped bit, or cut short
				bad := bytes.Clone(wire)
				if i := vectorHeader + rng.Intn(len(bad)-vectorHeader+1); i < len(bad) && rng.Intn(3) > 0 {
					bad[i] ^= 1 << rng.Intn(8)
				} else {
					bad = bad[:i]
				}
				checkTopKDecodeAgrees(t, bad, sz.n)
			}
		}
	}
}

func FuzzTopKDecodeMatchesReference(f *testing.F) {
	rng := rand.New(rand.NewSource(41))
	for _, codec := range []Codec{mustTopK(4, 2), mustTopK(32, 3), mustTopK(256, 1), mustTopK(96, 4)} {
		q, err := quantize(topKVector(rng, 700), 256, codec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EncodeQuantized(nil, q), 700)
	}
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		checkTopKDecodeAgrees(t, b, n)
	})
}
