package train

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/cpu"
)

// GRIDMIND_SCALAR=1 runs this package's tests and benchmarks on the
// scalar loops only, to measure the kernels against them.
func init() {
	if os.Getenv("GRIDMIND_SCALAR") != "" {
		vectorized = false
	}
}

// bothPaths runs f with the kernels and then with the scalar loops only.
func bothPaths[T any](t *testing.T, f func() T) (vec, scalar T) {
	t.Helper()
	if !vectorized {
		t.Skip("the AVX2 kernels do not run here (no AVX2, not amd64, or GRIDMIND_SCALAR set): nothing to compare")
	}
	defer func() { vectorized = true }()
	vec = f()
	vectorized = false
	return vec, f()
}

func TestKernelsRunWhereTheCPUHasAVX2(t *testing.T) {
	if os.Getenv("GRIDMIND_SCALAR") != "" {
		t.Skip("GRIDMIND_SCALAR is set")
	}
	if want := cpu.X86.HasAVX2 && kernelsBuilt; vectorized != want {
		t.Fatalf("vectorized = %v on a CPU with AVX2 = %v (kernels built: %v)", vectorized, cpu.X86.HasAVX2, kernelsBuilt)
	}
}

// roundInput is round r's input to an error feedback fed x: x·(r+1).
func roundInput(x []float32, r int) []float32 {
	in := make([]float32, len(x))
	for i, v := range x {
		in[i] = v * float32(r+1)
	}
	return in
}

// sameResultBothWays runs f both ways: the same values, or the same error.
func sameResultBothWays(t *testing.T, what string, f func() ([]float32, error)) {
	t.Helper()
	type result struct {
		values []float32
		err    string
	}
	vec, scalar := bothPaths(t, func() result {
		v, err := f()
		if err != nil {
			return result{err: err.Error()}
		}
		return result{values: v}
	})
	if vec.err != scalar.err {
		t.Fatalf("%s: error %q, scalar %q", what, vec.err, scalar.err)
	}
	sameBits(t, what, vec.values, scalar.values)
}

// sameCombineBothWays combines inputs by rule both ways and compares the bits.
func sameCombineBothWays(t *testing.T, rule Combiner, inputs [][]float32) {
	t.Helper()
	vec, scalar := bothPaths(t, func() []float32 {
		dst := make([]float32, len(inputs[0]))
		if err := rule.Combine(dst, inputs); err != nil {
			t.Fatal(err)
		}
		return dst
	})
	sameBits(t, rule.String(), vec, scalar)
}

// kernelVectors are inputs of every length around the kernels' groups of
// eight, of the kinds that break an unfaithful lane: ±0, subnormals,
// halfway points, huge and tiny values, ties, spread binades, and now
// and then a NaN or an infinity.
func kernelVectors(rng *rand.Rand) [][]float32 {
	var out [][]float32
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 255, 256, 257, 1000, 4099} {
		out = append(out, trickyVector(rng, n), tieHeavyVector(rng, n), spreadVector(rng, n), withNonFinite(rng, trickyVector(rng, n)))
	}
	return out
}

func TestSignMagnitudesKernelMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, x := range kernelVectors(rng) {
		carried := spreadVector(rng, len(x))
		for _, c := range [][]float32{nil, carried} {
			type result struct {
				maxBits, minBits uint32
				sum              float64
				corrected        []float32
			}
			vec, scalar := bothPaths(t, func() result {
				corrected := make([]float32, len(x))
				mx, mn, sum := signMagnitudes(corrected, x, c)
				return result{mx, mn, sum, corrected}
			})
			sameBits(t, "corrected", vec.corrected, scalar.corrected)
			if vec.maxBits != scalar.maxBits || vec.minBits != scalar.minBits {
				t.Fatalf("n=%d: max/min bits %#x/%#x, scalar %#x/%#x", len(x), vec.maxBits, vec.minBits, scalar.maxBits, scalar.minBits)
			}
			if scalar.maxBits < 0x7f800000 && sumIsExact(len(x), scalar.maxBits, scalar.minBits) && vec.sum != scalar.sum {
				t.Fatalf("n=%d: exact sum %v, scalar %v", len(x), vec.sum, scalar.sum)
			}
		}
	}
}

// TestTopKKernelsMatchScalar compresses (three rounds of error
// feedback) and decodes with codecs that keep every value of a block
// and with sparse ones (whose magnitudes pass a guess from the block
// before), both ways, and compares every bit.
func TestTopKKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var codecs []Codec
	for bits := MinTopKBits; bits <= MaxTopKBits; bits++ {
		codecs = append(codecs, mustTopK(MaxTopK, bits)) // k ≥ the block: every value kept
	}
	// Sparse: a few per block, selected among those that pass the guess.
	codecs = append(codecs, mustTopK(4, 2), mustTopK(32, 2), mustTopK(16, 3), mustTopK(2, 1))
	for _, x := range kernelVectors(rng) {
		for _, codec := range codecs {
			for _, bs := range []int{8, 64, 256, 100} {
				type round struct {
					q        Quantized
					residual []float32
					wire     []byte
					decoded  []float32
					err      string
				}
				vec, scalar := bothPaths(t, func() (out []round) {
					fb := ErrorFeedback{Codec: codec}
					for r := range 3 {
						q, err := fb.Compress(roundInput(x, r), bs)
						if err != nil {
							out = append(out, round{err: err.Error()})
							continue
						}
						wire := EncodeQuantized(nil, q)
						decoded, err := DecodeVector(wire, len(x))
						if err != nil {
							t.Fatalf("decoding what we encoded: %v", err)
						}
						out = append(out, round{q: q, residual: append([]float32(nil), fb.residual...), wire: wire, decoded: decoded})
					}
					return out
				})
				for r := range vec {
					what := codec.String()
					if vec[r].err != scalar[r].err {
						t.Fatalf("%s n=%d round %d: error %q, scalar %q", what, len(x), r, vec[r].err, scalar[r].err)
					}
					sameQuantized(t, what, vec[r].q, scalar[r].q)
					sameBits(t, what+" residual", vec[r].residual, scalar[r].residual)
					sameBits(t, what+" decoded", vec[r].decoded, scalar[r].decoded)
					if !bytes.Equal(vec[r].wire, scalar[r].wire) {
						t.Fatalf("%s n=%d round %d: encodings differ", what, len(x), r)
					}
				}
			}
		}
	}
}

func TestMeanKernelMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, x := range kernelVectors(rng) {
		for k := 1; k <= 9; k++ {
			inputs := [][]float32{x}
			for len(inputs) < k {
				inputs = append(inputs, withNonFinite(rng, trickyVector(rng, len(x))))
			}
			sameCombineBothWays(t, Mean{}, inputs)
		}
	}
}

// FuzzDecodeKernelMatchesScalar decodes any bytes both ways: the same
// values or the same error.
func FuzzDecodeKernelMatchesScalar(f *testing.F) {
	rng := rand.New(rand.NewSource(4))
	for bits := MinTopKBits; bits <= MaxTopKBits; bits++ {
		q, err := quantize(trickyVector(rng, 300), 64, mustTopK(64, bits))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EncodeQuantized(nil, q), 300)
	}
	for _, codec := range []Codec{CodecInt8, CodecInt4, mustTopK(4, 2)} { // int4 in blocks that start mid-byte too
		for _, bs := range []int{37, 64} {
			q, err := quantize(trickyVector(rng, 301), bs, codec)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(EncodeQuantized(nil, q), 301)
		}
	}
	f.Fuzz(func(t *testing.T, wire []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		sameResultBothWays(t, "decoded", func() ([]float32, error) { return DecodeVector(wire, n) })
	})
}

// TestCentredClipKernelMatchesScalar runs CenteredClip over four, five
// and eight inputs (one far off, so clipping bites) both ways: the
// kernels for four inputs' steps and any four inputs' distances.
func TestCentredClipKernelMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, x := range kernelVectors(rng) {
		for _, iterations := range []int{1, 3, 5} {
			k := 4 + 4*(iterations/5) + iterations%3 // 5, 4 and 8 inputs
			inputs := [][]float32{x}
			for len(inputs) < k {
				in := trickyVector(rng, len(x))
				if len(inputs) == 3 {
					for i := range in {
						in[i] *= 1e3
					}
				}
				inputs = append(inputs, in)
			}
			sameCombineBothWays(t, CenteredClip{Iterations: iterations}, inputs)
		}
	}
}

// TestQuantKernelsMatchScalar quantizes (plainly and with three rounds of
// error feedback) in int8 and int4, encodes and decodes, both ways; the
// tie vectors put most elements exactly halfway, where the kernel hands
// its group to the scalar loop.
func TestQuantKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	vectors := kernelVectors(rng)
	for _, bs := range []int{8, 64, 256} {
		vectors = append(vectors, tieVector(rng, 1000, bs, 127), tieVector(rng, 1000, bs, 7))
		for _, levels := range []int{127, 7} {
			vectors = append(vectors, nearTieVector(rng, 1000, bs, levels, true), nearTieVector(rng, 4096, bs, levels, false))
		}
	}
	for _, x := range vectors {
		for _, codec := range []Codec{CodecInt8, CodecInt4} {
			for _, bs := range []int{8, 64, 100, 256} {
				type result struct {
					plain    Quantized
					rounds   []Quantized
					residual []float32
					decoded  [][]float32
					errs     string
				}
				vec, scalar := bothPaths(t, func() (out result) {
					q, err := quantize(x, bs, codec)
					if err != nil {
						out.errs += err.Error()
					}
					out.plain = q
					fb := ErrorFeedback{Codec: codec}
					for r := range 3 {
						q, err := fb.Compress(roundInput(x, r), bs)
						if err != nil {
							out.errs += err.Error()
							continue
						}
						out.rounds = append(out.rounds, q)
						decoded, err := DecodeVector(EncodeQuantized(nil, q), len(x))
						if err != nil {
							t.Fatalf("decoding what we encoded: %v", err)
						}
						out.decoded = append(out.decoded, decoded)
					}
					out.residual = fb.residual
					return out
				})
				what := codec.String()
				if vec.errs != scalar.errs || len(vec.rounds) != len(scalar.rounds) {
					t.Fatalf("%s n=%d: errors %q, scalar %q", what, len(x), vec.errs, scalar.errs)
				}
				if scalar.plain.Values != nil {
					sameQuantized(t, what+" plain", vec.plain, scalar.plain)
				}
				for r := range vec.rounds {
					sameQuantized(t, what, vec.rounds[r], scalar.rounds[r])
					sameBits(t, what+" decoded", vec.decoded[r], scalar.decoded[r])
				}
				sameBits(t, what+" residual", vec.residual, scalar.residual)
			}
		}
	}
}

// TestSumKernelMatchesScalar compares the screen's sums (norms and dot
// products with a centre, four inputs at a time) both ways.
func TestSumKernelMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, x := range kernelVectors(rng) {
		inputs := [][]float32{x}
		for len(inputs) < 6 {
			inputs = append(inputs, trickyVector(rng, len(x)))
		}
		with := spreadVector(rng, len(x))
		for _, w := range [][]float32{nil, with} {
			vec, scalar := bothPaths(t, func() []float64 {
				out := make([]float64, len(inputs))
				sumProducts(out, inputs, w)
				return out
			})
			for i := range vec {
				if math.Float64bits(vec[i]) != math.Float64bits(scalar[i]) {
					t.Fatalf("n=%d with=%v: sum %d is %v, scalar %v", len(x), w != nil, i, vec[i], scalar[i])
				}
			}
		}
	}
}

// TestMedianKernelMatchesScalar takes the median of 3 to 16 inputs both
// ways (four and eight have kernels of their own, the rest a sorting
// network), over columns with ties of ±0 (as sparse parts have),
// NaNs and infinities among ordinary ones, and over sparse inputs: groups
// of columns of +0 the kernels keep, and now and then a −0 they must not.
func TestMedianKernelMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for _, k := range []int{3, 4, 5, 6, 7, 8, 9, 12, 16} {
		for _, x := range kernelVectors(rng) {
			for _, kind := range []func(*rand.Rand, int) []float32{trickyVector, tieHeavyVector, sparseVector} {
				inputs := [][]float32{x}
				for len(inputs) < k {
					inputs = append(inputs, withNonFinite(rng, kind(rng, len(x))))
				}
				sameCombineBothWays(t, Median{}, inputs)
			}
		}
	}
}

// TestMedianNetworksSort checks every network medianNetAVX2 runs by the
// zero–one principle: a network of compare-exchanges sorts every input
// if it sorts every input of zeros and ones.
func TestMedianNetworksSort(t *testing.T) {
	for k := 3; k <= maxNetInputs; k++ {
		net := medianNets[k]
		if len(net) == 0 || len(net)%2 != 0 {
			t.Fatalf("k=%d: network of %d offsets", k, len(net))
		}
		for bits := range 1 << k {
			var row [maxNetInputs]int
			for i := range k {
				row[i] = bits >> i & 1
			}
			for p := 0; p < len(net); p += 2 {
				a, b := net[p]/(4*lanes), net[p+1]/(4*lanes)
				if a >= b || b >= k {
					t.Fatalf("k=%d: compare-exchange of rows %d and %d", k, a, b)
				}
				row[a], row[b] = min(row[a], row[b]), max(row[a], row[b])
			}
			if !slices.IsSorted(row[:k]) {
				t.Fatalf("k=%d: input %0*b comes out as %v", k, k, bits, row[:k])
			}
		}
	}
}

// TestRecycledFeedbackMatchesFresh runs a coordinator's recycling error
// feedback beside a plain one for several rounds, one of them failing on
// a NaN (which must leave the residual as it was) and later ones with a
// block of zeros: the same values and residuals, and the recycled
// buffers (residual, and the values of the result before last) are
// really reused.
func TestRecycledFeedbackMatchesFresh(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, codec := range []Codec{CodecInt8, CodecInt4, mustTopK(MaxTopK, 1), mustTopK(8, 2)} {
		fresh, recycled := ErrorFeedback{Codec: codec}, ErrorFeedback{Codec: codec, recycle: true}
		reused, reusedValues := false, false
		var results [][]int8 // the recycled feedback's values, call by call
		for r := range 7 {
			x := trickyVector(rng, 1000)
			if r == 3 {
				x[500] = float32(math.NaN())
			}
			if r >= 5 { // a block of zeros, nothing carried: its recycled values must be cleared
				clear(x[64:128])
				fresh.Reset()
				recycled.Reset()
			}
			before := recycled.spare
			qf, errf := fresh.Compress(x, 64)
			qr, errr := recycled.Compress(x, 64)
			if (errf == nil) != (errr == nil) {
				t.Fatalf("%s round %d: errors %v and %v", codec, r, errf, errr)
			}
			if errf == nil {
				sameQuantized(t, codec.String(), qr, qf)
				reused = reused || (before != nil && &recycled.residual[0] == &before[0])
				results = append(results, qr.Values)
				if n := len(results); n > 2 {
					reusedValues = reusedValues || &results[n-1][0] == &results[n-3][0]
					if &results[n-1][0] == &results[n-2][0] {
						t.Fatalf("%s round %d: the values of the last result were reused at once", codec, r)
					}
				}
			}
			sameBits(t, codec.String()+" residual", recycled.residual, fresh.residual)
		}
		if !reused || !reusedValues {
			t.Fatalf("%s: the recycling feedback never reused its spare residual (%v) or values (%v)", codec, reused, reusedValues)
		}
	}
}

// TestDequantizeAndPseudoGradientKernelsMatchScalar compares
// Quantized.Dequantize (every codec) and PseudoGradient (with a
// difference overflowing or a NaN now and then: the same error naming
// the same element) both ways.
func TestDequantizeAndPseudoGradientKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, x := range kernelVectors(rng) {
		for _, codec := range []Codec{CodecInt8, CodecInt4, mustTopK(MaxTopK, 1), mustTopK(8, 3)} {
			q, err := quantize(x, 64, codec)
			if err != nil {
				continue // a non-finite x
			}
			vec, scalar := bothPaths(t, func() []float32 {
				out := make([]float32, len(x))
				if err := q.Dequantize(out); err != nil {
					t.Fatal(err)
				}
				return out
			})
			sameBits(t, codec.String()+" dequantized", vec, scalar)
		}
		local := trickyVector(rng, len(x))
		if len(x) > 0 && rng.Intn(3) == 0 {
			local[rng.Intn(len(x))] = -3e38 // x − local may overflow
		}
		sameResultBothWays(t, "pseudo-gradient", func() ([]float32, error) { return PseudoGradient(x, local) })
	}
}

// TestInt4KernelsMatchScalar packs int8 values of the whole range (the
// encoder clamps them to −7..7) both ways, and decodes the result both
// ways in blocks that start in low and in high nibbles (odd block
// sizes), and with a refused nibble 0x8 planted at each position of a
// group: the same bytes, values and errors.
func TestInt4KernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 100, 257, 1000, 4099} {
		for _, bs := range []int{1, 7, 8, 37, 64, 256} {
			q := Quantized{Codec: CodecInt4, BlockSize: bs, Scales: make([]float32, NumBlocks(n, bs)), Values: make([]int8, n)}
			for i := range q.Scales {
				q.Scales[i] = float32(rng.ExpFloat64())
			}
			for i := range q.Values {
				q.Values[i] = int8(rng.Intn(256) - 128)
			}
			vec, scalar := bothPaths(t, func() []byte { return EncodeQuantized(nil, q) })
			if !bytes.Equal(vec, scalar) {
				t.Fatalf("n=%d bs=%d: int4 encodings differ", n, bs)
			}
			sameResultBothWays(t, "int4 decoded", func() ([]float32, error) { return DecodeVector(vec, n) })
			if n < 2 {
				continue
			}
			bad := slices.Clone(vec)
			at := len(bad) - (n+1)/2 + rng.Intn(n/2) // a byte of values
			if rng.Intn(2) == 0 {
				bad[at] = bad[at]&0xf0 | 0x08
			} else {
				bad[at] = bad[at]&0x0f | 0x80
			}
			sameResultBothWays(t, "int4 with a nibble 0x8", func() ([]float32, error) { return DecodeVector(bad, n) })
		}
	}
}

// sparseVector is mostly +0, as a decoded top-k part is, with a few
// ordinary values, a rare −0 and a rarer infinity.
func sparseVector(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r := rng.Intn(400); {
		case r == 0:
			x[i] = float32(math.Copysign(0, -1))
		case r == 1:
			x[i] = float32(math.Inf(1 - 2*rng.Intn(2)))
		case r < 60:
			x[i] = float32(rng.NormFloat64())
		}
	}
	return x
}

// nearTieVector has products x/scale a little off a half, on both sides
// of the float32 rounding kernel's margin (nearHalf32): 2⁻⁸ to 2⁻²⁴ away.
// With dyadic, each block's scale is a power of two and the products
// are exact; otherwise the scale is not, and the float32 and float64
// products differ in their last bits.
func nearTieVector(rng *rand.Rand, n, blockSize, levels int, dyadic bool) []float32 {
	x := make([]float32, n)
	for lo := 0; lo < n; lo += blockSize {
		scale := math.Ldexp(1, rng.Intn(100)-60)
		if !dyadic {
			scale *= 1 + rng.Float64()
		}
		hi := min(lo+blockSize, n)
		for i := lo; i < hi; i++ {
			m := float64(rng.Intn(2*levels) - levels)
			off := math.Ldexp(1, -8-rng.Intn(17))
			if rng.Intn(2) == 0 {
				off = -off
			}
			x[i] = float32((m + 0.5 + off) * scale)
		}
		x[lo] = float32(float64(levels) * scale) // the block's largest: its scale
	}
	return x
}

// TestScalarBuildDeclaresWhatThePackageUses stands in for compiling the
// package for another CPU (which needs that CPU's standard library): every
// name kernels_amd64.go declares that another file of the package uses
// must also be declared by kernels_other.go, or the build for arm64 and
// every CPU but amd64 breaks (as it once did, over lanes).
func TestScalarBuildDeclaresWhatThePackageUses(t *testing.T) {
	declared := func(file string) map[string]bool {
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = true
						}
					case *ast.TypeSpec:
						names[s.Name.Name] = true
					}
				}
			}
		}
		return names
	}
	vector, scalar := declared("kernels_amd64.go"), declared("kernels_other.go")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if file == "kernels_amd64.go" || file == "kernels_other.go" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && vector[id.Name] && !scalar[id.Name] {
				t.Errorf("%s uses %s, which only kernels_amd64.go declares", file, id.Name)
				delete(vector, id.Name) // once is enough
			}
			return true
		})
	}
}
