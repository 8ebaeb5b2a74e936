package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"
)

// The fast codec and combine rules must give exactly the bits of the
// reference versions in codec_ref_test.go: the bytes a worker sends and
// the θ it applies are hashed, and every worker must agree.

// trickyVector mixes the values that exercise rounding: exact halfway
// points of the quantization grid, signed zeros, subnormals, values near
// the float32 limit and ordinary noise, at the given scale.
func trickyVector(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	scale := math.Pow(10, float64(rng.Intn(60)-40))
	for i := range x {
		switch rng.Intn(12) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		case 2: // a halfway point of a grid of step s: (m + 1/2)·s
			s := float32(scale / 127)
			x[i] = (float32(rng.Intn(254)-127) + 0.5) * s
		case 3:
			x[i] = float32(rng.Intn(15)-7) * float32(scale/7) / 2
		case 4:
			x[i] = math.Float32frombits(uint32(rng.Intn(1 << 23))) // subnormal
		case 5:
			if rng.Intn(20) == 0 {
				x[i] = float32(rng.NormFloat64() * 1e37)
			} else {
				x[i] = float32(rng.NormFloat64() * scale)
			}
		default:
			x[i] = float32(rng.NormFloat64() * scale)
		}
	}
	return x
}

// tieVector fills each block of x so that its scale is a power of two
// and most elements sit exactly halfway between two grid points, where
// rounding half away from zero decides.
func tieVector(rng *rand.Rand, n, blockSize, levels int) []float32 {
	x := make([]float32, n)
	for lo := 0; lo < n; lo += blockSize {
		step := float32(math.Ldexp(1, rng.Intn(200)-140))
		for i := lo; i < min(lo+blockSize, n); i++ {
			m := float32(rng.Intn(2*levels) - levels)
			x[i] = (m + 0.5) * step
			if rng.Intn(5) == 0 {
				x[i] = m * step
			}
		}
		x[lo] = float32(levels) * step
		if rng.Intn(2) == 0 {
			x[lo] = -x[lo]
		}
	}
	return x
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v (%#x), reference %v (%#x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func sameQuantized(t *testing.T, what string, got, want Quantized) {
	t.Helper()
	if got.Codec != want.Codec || got.BlockSize != want.BlockSize || len(got.Values) != len(want.Values) {
		t.Fatalf("%s: got %s/%d/%d, want %s/%d/%d", what, got.Codec, got.BlockSize, len(got.Values), want.Codec, want.BlockSize, len(want.Values))
	}
	sameBits(t, what+" scales", got.Scales, want.Scales)
	for i := range got.Values {
		if got.Values[i] != want.Values[i] {
			t.Fatalf("%s: value %d is %d, reference %d (x/scale halfway?)", what, i, got.Values[i], want.Values[i])
		}
	}
}

var equivSizes = []struct{ n, blockSize int }{
	{0, 256}, {1, 256}, {255, 256}, {256, 256}, {257, 256}, {1000, 256}, {4099, 256},
	{7, 1}, {33, 3}, {100, 7}, {1000, 64}, {3000, 1000}, {513, 512},
}

func TestQuantizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(17))
	for trial := range 40 {
		for _, sz := range equivSizes {
			for _, codec := range quantizingCodecs {
				x := trickyVector(rng, sz.n)
				if trial%2 == 1 {
					x = tieVector(rng, sz.n, sz.blockSize, codec.levels())
				}
				got, gotErr := quantize(x, sz.blockSize, codec)
				want, wantErr := refQuantize(x, sz.blockSize, codec)
				if (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("trial %d %s n=%d: error %v, reference %v", trial, codec, sz.n, gotErr, wantErr)
				}
				sameQuantized(t, codec.String(), got, want)
				gotOut, wantOut := make([]float32, sz.n), make([]float32, sz.n)
				if err := got.Dequantize(gotOut); err != nil {
					t.Fatal(err)
				}
				if err := refDequantize(want, wantOut); err != nil {
					t.Fatal(err)
				}
				sameBits(t, "dequantize", gotOut, wantOut)
				if e, w := EncodeQuantized(nil, got), map[Codec]func([]byte, Quantized) []byte{CodecInt8: refEncodeInt8, CodecInt4: refEncodeInt4}[codec](nil, want); !bytes.Equal(e, w) {
					t.Fatalf("%s n=%d: encodings differ", codec, sz.n)
				}
			}
		}
	}
}

func TestErrorFeedbackMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(18))
	for _, codec := range quantizingCodecs {
		for _, sz := range equivSizes {
			fb := ErrorFeedback{Codec: codec}
			var residual []float32
			for round := range 6 {
				x := trickyVector(rng, sz.n)
				got, gotErr := fb.Compress(x, sz.blockSize)
				want, wantErr := refCompress(&residual, codec, x, sz.blockSize)
				if (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("%s round %d: error %v, reference %v", codec, round, gotErr, wantErr)
				}
				if gotErr != nil {
					continue
				}
				sameQuantized(t, "compress", got, want)
				sameBits(t, "residual", fb.Residual(), residual)
			}
		}
	}
}

func TestDecodeVectorMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(19))
	for range 20 {
		for _, sz := range equivSizes {
			x := trickyVector(rng, sz.n)
			wires := [][]byte{refEncodeFloat32(nil, x)}
			if e := EncodeFloat32(nil, x); !bytes.Equal(e, wires[0]) {
				t.Fatalf("float32 n=%d: encodings differ", sz.n)
			}
			for _, codec := range quantizingCodecs {
				q, err := refQuantize(x, sz.blockSize, codec)
				if err != nil {
					t.Fatal(err)
				}
				wires = append(wires, EncodeQuantized(nil, q))
			}
			for _, w := range wires {
				checkDecodeAgrees(t, w, sz.n)
				// Damaged copies: a flipped byte, a huge scale, a truncation.
				d := bytes.Clone(w)
				if len(d) > 0 {
					d[rng.Intn(len(d))] ^= byte(1 << rng.Intn(8))
				}
				checkDecodeAgrees(t, d, sz.n)
				if len(w) >= 13 && w[0] != byte(CodecFloat32) {
					d = bytes.Clone(w)
					binary.LittleEndian.PutUint32(d[9:], math.Float32bits(3e38))
					checkDecodeAgrees(t, d, sz.n)
				}
				checkDecodeAgrees(t, w[:len(w)/2], sz.n)
			}
		}
	}
}

func checkDecodeAgrees(t *testing.T, wire []byte, n int) {
	t.Helper()
	if len(wire) > 0 && Codec(wire[0]).IsTopK() { // the reference predates top-k: it has its own
		checkTopKDecodeAgrees(t, wire, n)
		return
	}
	got, gotErr := DecodeVector(wire, n)
	want, wantErr := refDecodeVector(wire, n)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("decode of %d bytes: error %v, reference %v", len(wire), gotErr, wantErr)
	}
	if gotErr == nil {
		sameBits(t, "decode", got, want)
	}
}

func FuzzDecodeVectorMatchesReference(f *testing.F) {
	f.Add(EncodeInt8(nil, mustQuantize(f, []float32{1, 2, 3, 4, 5}, 2)), 5)
	f.Add(EncodeInt4(nil, mustQuantizeInt4(f, []float32{1, -2, 3, -4, 5}, 2)), 5)
	f.Add(EncodeFloat32(nil, []float32{1, 2}), 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		checkDecodeAgrees(t, b, n)
	})
}

func FuzzQuantizeMatchesReference(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, blockSize int) {
		if blockSize <= 0 || blockSize > 300 {
			return
		}
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		for _, codec := range quantizingCodecs {
			got, gotErr := quantize(x, blockSize, codec)
			want, wantErr := refQuantize(x, blockSize, codec)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("error %v, reference %v", gotErr, wantErr)
			}
			if gotErr == nil {
				sameQuantized(t, codec.String(), got, want)
			}
		}
	})
}

func TestCombineMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(20))
	for _, k := range []int{1, 2, 3, 4, 5, 8, 12, 13, 16} {
		for _, n := range []int{0, 1, 5, 300, 2049} {
			inputs := make([][]float32, k)
			for i := range inputs {
				inputs[i] = trickyVector(rng, n)
				if i > 0 && rng.Intn(3) == 0 { // equal values across inputs, signed zeros in particular
					for j := range inputs[i] {
						if rng.Intn(2) == 0 {
							inputs[i][j] = inputs[rng.Intn(i)][j]
						}
						if rng.Intn(4) == 0 {
							inputs[i][j] = float32(math.Copysign(0, float64(rng.Intn(2)*2-1)))
						}
					}
				}
			}
			type rule struct {
				c   Combiner
				ref func(dst []float32, in [][]float32) error
			}
			rules := []rule{
				{Mean{}, refMean},
				{Median{}, refMedian},
				{TrimmedMean{Fraction: 0.2}, func(d []float32, in [][]float32) error { return refTrimmedMean(TrimmedMean{Fraction: 0.2}, d, in) }},
				{TrimmedMean{Fraction: 0.4}, func(d []float32, in [][]float32) error { return refTrimmedMean(TrimmedMean{Fraction: 0.4}, d, in) }},
				{CenteredClip{}, func(d []float32, in [][]float32) error { return refCenteredClip(CenteredClip{}, d, in) }},
				{CenteredClip{Iterations: 1}, func(d []float32, in [][]float32) error { return refCenteredClip(CenteredClip{Iterations: 1}, d, in) }},
			}
			for _, r := range rules {
				got, want := make([]float32, n), make([]float32, n)
				gotErr, wantErr := r.c.Combine(got, inputs), r.ref(want, inputs)
				if (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("%s k=%d n=%d: error %v, reference %v", r.c, k, n, gotErr, wantErr)
				}
				sameBits(t, r.c.String(), got, want)
			}
		}
	}
}

func TestStateHashMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	for _, n := range []int{0, 1, 1023, 1024, 1025, 5000} {
		s := &GlobalState{Round: uint64(n), Theta: trickyVector(rng, n), Velocity: trickyVector(rng, n), Participants: testIDs(int64(n), 3)}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Hash(), Hash(sha256.Sum256(append([]byte(stateDomain), b...))); got != want {
			t.Fatalf("n=%d: hash %s, want %s", n, got.Short(), want.Short())
		}
	}
	bad := &GlobalState{Theta: []float32{1}, Velocity: nil}
	if got, want := bad.Hash(), Hash(sha256.Sum256([]byte(stateDomain))); got != want {
		t.Fatal("a state that does not marshal hashes the domain alone")
	}
}

func TestScreenMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	screens := []Screen{DefaultScreen(), {MaxNormRatio: 2, MinNormRatio: 0.5}, {Direction: true, MinCosine: 0.5, Margin: 0.1}}
	for _, k := range []int{3, 4, 5, 8, 9} {
		for trial := range 30 {
			n := 1 + rng.Intn(700)
			base := randomVector(rng, n, 1)
			inputs := make([][]float32, k)
			for i := range inputs {
				inputs[i] = make([]float32, n)
				for j := range inputs[i] {
					inputs[i][j] = base[j] + float32(rng.NormFloat64()*float64(trial%4))
				}
				switch rng.Intn(6) {
				case 0:
					for j := range inputs[i] {
						inputs[i][j] = -inputs[i][j]
					}
				case 1:
					for j := range inputs[i] {
						inputs[i][j] *= 10
					}
				case 2:
					clear(inputs[i])
				}
			}
			squares, dots := make([]float64, k), make([]float64, k)
			sumProducts(squares, inputs, nil)
			sumProducts(dots, inputs, base)
			for i, in := range inputs {
				if squares[i] != refDot(in, in) || dots[i] != refDot(in, base) {
					t.Fatalf("k=%d input %d: sums of products %v, %v; reference %v, %v", k, i, squares[i], dots[i], refDot(in, in), refDot(in, base))
				}
			}
			for _, s := range screens {
				got, want := s.Apply(inputs), refScreenApply(s, inputs)
				if !slices.Equal(got, want) {
					t.Fatalf("k=%d trial %d screen %s: verdicts %v, reference %v", k, trial, s, got, want)
				}
			}
		}
	}
}

// TestMedianNetworks runs the min/max networks on every column of values
// from {-1, -0, 0, 1, 2} (sorting networks are correct for all inputs when
// they are for such small alphabets; -0 checks the sign of a zero median),
// against the sort.
func TestMedianNetworks(t *testing.T) {
	values := []float32{-1, float32(math.Copysign(0, -1)), 0, 1, 2}
	for _, k := range []int{4, 8} {
		column := make([]float32, k)
		total := 1
		for range k {
			total *= len(values)
		}
		for code := range total {
			for i, c := 0, code; i < k; i, c = i+1, c/len(values) {
				column[i] = values[c%len(values)]
			}
			var got float32
			var ok bool
			if k == 4 {
				got, ok = medianOf4(column[0], column[1], column[2], column[3])
			} else {
				got, ok = medianOf8(column[0], column[1], column[2], column[3], column[4], column[5], column[6], column[7])
			}
			sorted := slices.Clone(column)
			slices.Sort(sorted)
			if want := columnMedian(sorted); ok && math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("median of %v: %v, want %v", column, got, want)
			}
			if !ok && (sorted[k/2-1] != 0 || sorted[k/2] != 0) {
				t.Fatalf("median of %v: the network gave up without two middle zeros", column)
			}
			inputs := make([][]float32, k)
			for i := range inputs {
				inputs[i] = column[i : i+1]
			}
			if !ok && zeroMedian(inputs, 0) && math.Float32bits(columnMedian(sorted)) != 0 {
				t.Fatalf("median of %v: zeroMedian says +0, the sort gives %v", column, columnMedian(sorted))
			}
		}
	}
}

// TestCombineSparseMatchesReference combines decoded top-k parts, mostly
// +0 with a few values and a few -0, where the median's middle values are
// zeros in most columns.
func TestCombineSparseMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(31))
	for _, k := range []int{4, 5, 8} {
		for trial := range 20 {
			n := 1 + rng.Intn(3000)
			inputs := make([][]float32, k)
			for i := range inputs {
				inputs[i] = make([]float32, n)
				for j := range inputs[i] {
					switch r := rng.Intn(40); {
					case r < 3:
						inputs[i][j] = float32(rng.NormFloat64())
					case r == 3 && trial%2 == 1:
						inputs[i][j] = float32(math.Copysign(0, -1))
					}
				}
			}
			for _, rule := range []struct {
				c   Combiner
				ref func(dst []float32, in [][]float32) error
			}{
				{Median{}, refMedian},
				{CenteredClip{}, func(d []float32, in [][]float32) error { return refCenteredClip(CenteredClip{}, d, in) }},
			} {
				got, want := make([]float32, n), make([]float32, n)
				if err := rule.c.Combine(got, inputs); err != nil {
					t.Fatal(err)
				}
				if err := rule.ref(want, inputs); err != nil {
					t.Fatal(err)
				}
				sameBits(t, rule.c.String(), got, want)
			}
			got := DefaultScreen().Apply(inputs)
			if want := refScreenApply(DefaultScreen(), inputs); !slices.Equal(got, want) {
				t.Fatalf("screen %v, reference %v", got, want)
			}
		}
	}
}

// TestCombineScreenedMatchesCombine checks that starting from the
// screen's median gives the bits of combining from scratch.
func TestCombineScreenedMatchesCombine(t *testing.T) {
	rng := rand.New(rand.NewSource(43))
	for _, k := range []int{3, 4, 5, 8} {
		for _, n := range []int{1, 7, 300, 2049} {
			inputs := make([][]float32, k)
			for i := range inputs {
				inputs[i] = trickyVector(rng, n)
				if i%2 == 1 {
					inputs[i] = tieHeavyVector(rng, n)
				}
			}
			verdicts, median := DefaultScreen().apply(inputs, nil)
			if median == nil {
				t.Fatalf("k=%d n=%d: the default screen computed no median", k, n)
			}
			if want := DefaultScreen().Apply(inputs); !slices.Equal(verdicts, want) {
				t.Fatalf("apply %v, Apply %v", verdicts, want)
			}
			for _, c := range []Combiner{Median{}, CenteredClip{}, CenteredClip{Iterations: 1}, Mean{}, TrimmedMean{Fraction: 0.25}} {
				got, want := make([]float32, n), make([]float32, n)
				if err := combineScreened(c, got, inputs, median, true); err != nil {
					t.Fatal(err)
				}
				if err := c.Combine(want, inputs); err != nil {
					t.Fatal(err)
				}
				sameBits(t, c.String(), got, want)
			}
		}
	}
}

// TestCompressReducedIsRequantize checks a reducer's one-pass
// requantization against its definition (requantize) for int4 and
// top-k codecs, over several rounds so the residual carries: the same
// values, scales and residual wherever the one pass does not refuse,
// including sums next to the float32 range, whose blocks' scales ×
// levels can round past it.
func TestCompressReducedIsRequantize(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	huge := func(n int) []float32 {
		x := spreadVector(rng, n)
		for i := range x {
			if rng.Intn(4) == 0 {
				x[i] = float32(math.Copysign(3.4e38*(1-rng.Float64()*1e-6), rng.NormFloat64()))
			}
		}
		return x
	}
	codecs := []Codec{CodecInt4, mustTopK(4, 2), mustTopK(32, 2), mustTopK(MaxTopK, 1), mustTopK(16, 3)}
	onePasses := 0
	for _, n := range []int{1, 7, 64, 100, 257, 1000} {
		largest := make([]float32, n) // every block's scale × levels at the edge
		for i := range largest {
			largest[i] = float32(math.Copysign(math.MaxFloat32, float64(i%3-1)))
		}
		inputs := [][]float32{trickyVector(rng, n), spreadVector(rng, n), tieHeavyVector(rng, n), huge(n), largest, trickyVector(rng, n)}
		for _, codec := range codecs {
			for _, bs := range []int{8, 64, 256} {
				fast, slow := make([]float32, n), make([]float32, n)
				for round, x := range inputs {
					want, err := requantize(x, slow, bs, codec, true)
					if err != nil {
						t.Fatalf("%s n=%d round %d: requantize: %v", codec, n, round, err)
					}
					q, next, err := compressReduced(x, fast, nil, nil, bs, codec)
					if err != nil { // the reducer falls back to requantize
						copy(fast, slow)
						continue
					}
					onePasses++
					what := fmt.Sprintf("%s n=%d bs=%d round %d", codec, n, bs, round)
					sameQuantized(t, what, q, want)
					sameBits(t, what+" residual", next, slow)
					copy(fast, next)
				}
			}
		}
	}
	if onePasses == 0 {
		t.Fatal("the one pass refused every input")
	}
}
