package train

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"slices"
	"testing"
)

func randomVector(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

// roundTripBound is the documented bound: half a quantization step plus the
// float32 rounding of scale*value.
func roundTripBound(scale float32, levels int) float64 {
	return float64(scale)/2 + float64(levels)*float64(scale)*math.Pow(2, -24)
}

// quantizingCodecs are the codecs the table-driven tests run with.
var quantizingCodecs = []Codec{CodecInt8, CodecInt4}

func TestQuantizeRoundTripBound(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	tests := []struct {
		name      string
		x         []float32
		blockSize int
	}{
		{"gaussian", randomVector(rng, 1000, 1), 256},
		{"tiny values", randomVector(rng, 700, 1e-6), 64},
		{"huge values", randomVector(rng, 513, 1e30), 256},
		{"one block", randomVector(rng, 10, 3), 256},
		{"block of one", randomVector(rng, 17, 2), 1},
		{"zeros", make([]float32, 300), 256},
		{"outlier in block", append([]float32{1000}, randomVector(rng, 255, 0.001)...), 256},
		{"empty", nil, 256},
	}
	for _, codec := range quantizingCodecs {
		for _, tt := range tests {
			t.Run(codec.String()+"/"+tt.name, func(t *testing.T) {
				q, err := quantize(tt.x, tt.blockSize, codec)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := len(q.Scales), NumBlocks(len(tt.x), tt.blockSize); got != want {
					t.Fatalf("scales = %d, want %d", got, want)
				}
				levels := codec.levels()
				back := make([]float32, len(tt.x))
				if err := q.Dequantize(back); err != nil {
					t.Fatal(err)
				}
				for i, v := range tt.x {
					scale := q.Scales[i/tt.blockSize]
					if d := math.Abs(float64(v) - float64(back[i])); d > roundTripBound(scale, levels) {
						t.Fatalf("element %d: |%g - %g| = %g > scale/2 = %g", i, v, back[i], d, scale/2)
					}
					if int(q.Values[i]) < -levels || int(q.Values[i]) > levels {
						t.Fatalf("element %d quantized to %d, outside ±%d", i, q.Values[i], levels)
					}
				}
				// And through the wire form, whose size is what the codec promises.
				wire := EncodeQuantized(nil, q)
				valueBytes := len(tt.x)
				if codec == CodecInt4 {
					valueBytes = (len(tt.x) + 1) / 2
				}
				if want := vectorHeader + 4 + 4*len(q.Scales) + valueBytes; len(wire) != want {
					t.Errorf("wire form of %d elements is %d bytes, want %d", len(tt.x), len(wire), want)
				}
				dec, err := DecodeVector(wire, len(tt.x))
				if err != nil {
					t.Fatal(err)
				}
				for i := range back {
					if math.Float32bits(dec[i]) != math.Float32bits(back[i]) {
						t.Fatalf("element %d decodes to %g, dequantizes to %g", i, dec[i], back[i])
					}
				}
			})
		}
	}
}

// TestInt4WireLayout pins the documented nibble order and sign encoding.
func TestInt4WireLayout(t *testing.T) {
	// The largest magnitude is 7, so the scale is exactly 1.
	q, err := QuantizeInt4([]float32{1, -1, 7, -7, -3}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Values, []int8{1, -1, 7, -7, -3}) || q.Scales[0] != 1 {
		t.Fatalf("quantized to %v × %v", q.Values, q.Scales)
	}
	got := EncodeInt4(nil, q)
	want := []byte{
		3,          // codec int4
		5, 0, 0, 0, // n
		8, 0, 0, 0, // block size
		0, 0, 0x80, 0x3f, // scale 1.0
		0xf1, // element 0 (1) low, element 1 (-1 = 0xF) high
		0x97, // 7 low, -7 (0x9) high
		0x0d, // -3 (0xD) low, padding 0 high
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeInt4 = % x, want % x", got, want)
	}
	// Values outside the int4 grid are clamped rather than wrapped.
	if wide := EncodeInt4(nil, Quantized{BlockSize: 2, Scales: []float32{1}, Values: []int8{100, -100}}); wide[len(wide)-1] != 0x97 {
		t.Errorf("int8 values ±100 encode to %#x, want 0x97 (7, -7)", wide[len(wide)-1])
	}
}

func TestParseCodec(t *testing.T) {
	tests := []struct {
		in   string
		want Codec
		ok   bool
	}{
		{"int8", CodecInt8, true},
		{"int4", CodecInt4, true},
		{"float32", CodecFloat32, true},
		{"none", CodecFloat32, true},
		{"int2", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseCodec(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCodec(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && tt.want != CodecFloat32 && got.String() != tt.in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), tt.in)
		}
	}
	if _, err := quantize([]float32{1}, 4, CodecFloat32); err == nil {
		t.Error("quantizing with float32 was accepted")
	}
}

func TestQuantizeRefusesNonFiniteAndBadBlocks(t *testing.T) {
	for _, x := range [][]float32{{1, float32(math.NaN())}, {float32(math.Inf(1))}, {float32(math.Inf(-1)), 0}} {
		if _, err := Quantize(x, 256); !errors.Is(err, ErrNonFinite) {
			t.Errorf("Quantize(%v) error = %v, want ErrNonFinite", x, err)
		}
	}
	for _, bs := range []int{0, -1, MaxBlockSize + 1} {
		if _, err := Quantize([]float32{1}, bs); err == nil {
			t.Errorf("block size %d accepted", bs)
		}
	}
}

func TestErrorFeedbackCumulativeSumConverges(t *testing.T) {
	// One large element per block fixes the scale at 1/levels, so elements
	// of 0.001 always quantize to zero: without feedback their sum is lost
	// entirely; with feedback the sum sent tracks the true sum to within
	// one quantization step, however many rounds pass.
	const n, rounds = 512, 2000
	x := make([]float32, n)
	for i := range x {
		x[i] = 0.001
		if i%256 == 0 {
			x[i] = 1
		}
	}
	for _, codec := range quantizingCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			fb := ErrorFeedback{Codec: codec}
			step := 1 / float64(codec.levels())
			sentWith := make([]float64, n)
			sentWithout := make([]float64, n)
			buf := make([]float32, n)
			for r := 1; r <= rounds; r++ {
				q, err := fb.Compress(x, 256)
				if err != nil {
					t.Fatal(err)
				}
				if q.Codec != codec {
					t.Fatalf("compressed with %s, want %s", q.Codec, codec)
				}
				if err := q.Dequantize(buf); err != nil {
					t.Fatal(err)
				}
				for i, v := range buf {
					sentWith[i] += float64(v)
				}
				plain, _ := quantize(x, 256, codec)
				_ = plain.Dequantize(buf)
				for i, v := range buf {
					sentWithout[i] += float64(v)
				}
				if r == 10 || r == rounds {
					var worstWith, worstWithout float64
					for i := range x {
						truth := float64(x[i]) * float64(r)
						worstWith = max(worstWith, math.Abs(sentWith[i]-truth))
						worstWithout = max(worstWithout, math.Abs(sentWithout[i]-truth))
					}
					if worstWith > step {
						t.Errorf("round %d: with feedback the cumulative error is %g, want ≤ one step %g", r, worstWith, step)
					}
					if r == rounds && worstWithout < 0.001*rounds*0.99 {
						t.Errorf("without feedback the cumulative error is only %g; the test no longer shows the drift", worstWithout)
					}
				}
			}
			// The mean error per round goes to zero like 1/rounds.
			var worst float64
			for i := range x {
				worst = max(worst, math.Abs(sentWith[i]/rounds-float64(x[i])))
			}
			if worst > step/rounds {
				t.Errorf("mean per-round error %g, want ≤ %g", worst, step/rounds)
			}
		})
	}
}

func TestErrorFeedbackRefusesFloat32(t *testing.T) {
	fb := ErrorFeedback{Codec: CodecFloat32}
	if _, err := fb.Compress([]float32{1, 2}, 256); err == nil {
		t.Error("error feedback with the float32 codec was accepted")
	}
	if fb.Residual() != nil {
		t.Error("a failed compression changed the residual")
	}
}

func TestErrorFeedbackLengthChange(t *testing.T) {
	var fb ErrorFeedback
	if _, err := fb.Compress([]float32{1, 2}, 256); err != nil {
		t.Fatal(err)
	}
	if _, err := fb.Compress([]float32{1, 2, 3}, 256); err == nil {
		t.Error("a vector of another length was accepted")
	}
	fb.Reset()
	if _, err := fb.Compress([]float32{1, 2, 3}, 256); err != nil {
		t.Errorf("after Reset: %v", err)
	}
}

func TestDecodeVectorRefusesBadInput(t *testing.T) {
	good := EncodeInt8(nil, mustQuantize(t, []float32{1, -2, 3}, 2))
	hugeScale := bytes.Clone(good)
	// Scale of block 0 := MaxFloat32, so 127*scale overflows.
	copy(hugeScale[9:13], []byte{0xff, 0xff, 0x7f, 0x7f})
	nanScale := bytes.Clone(good)
	copy(nanScale[9:13], []byte{0x00, 0x00, 0xc0, 0x7f})
	tests := []struct {
		name string
		b    []byte
		n    int
	}{
		{"empty", nil, 0},
		{"wrong length", good, 4},
		{"truncated", good[:len(good)-1], 3},
		{"trailing", append(bytes.Clone(good), 0), 3},
		{"unknown codec", append([]byte{9}, good[1:]...), 3},
		{"overflowing scale", hugeScale, 3},
		{"nan scale", nanScale, 3},
		{"nan float", EncodeFloat32(nil, []float32{float32(math.NaN())}), 1},
		{"zero block size", append(append([]byte{1}, good[1:5]...), 0, 0, 0, 0), 3},
	}
	for _, tt := range tests {
		if _, err := DecodeVector(tt.b, tt.n); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if v, err := DecodeVector(good, 3); err != nil || len(v) != 3 {
		t.Errorf("good vector: %v %v", v, err)
	}
}

func TestDecodeVectorRefusesBadInt4(t *testing.T) {
	// Five elements in blocks of 4: two scales, three value bytes, the last
	// with a padding nibble.
	good := EncodeInt4(nil, mustQuantizeInt4(t, []float32{1, -2, 3, -4, 5}, 4))
	if len(good) != vectorHeader+4+8+3 {
		t.Fatalf("good vector is %d bytes", len(good))
	}
	values := len(good) - 3
	with := func(i int, b ...byte) []byte {
		out := bytes.Clone(good)
		copy(out[i:], b)
		return out
	}
	tests := []struct {
		name string
		b    []byte
		n    int
	}{
		{"wrong length", good, 4},
		{"more elements than bytes", with(1, 7), 7},
		{"truncated", good[:len(good)-1], 5},
		{"header only", good[:vectorHeader], 5},
		{"trailing", append(bytes.Clone(good), 0), 5},
		{"int8 length under int4 codec", append(bytes.Clone(good), 0, 0), 5},
		{"minus eight low nibble", with(values, 0xf8), 5},
		{"minus eight high nibble", with(values+1, 0x81), 5},
		{"non-zero padding nibble", with(values+2, 0x15), 5},
		{"padding nibble minus eight", with(values+2, 0x85), 5},
		{"overflowing scale", with(9, 0xff, 0xff, 0x7f, 0x7f), 5},
		{"nan scale", with(13, 0x00, 0x00, 0xc0, 0x7f), 5},
		{"negative scale", with(9, 0x00, 0x00, 0x80, 0xbf), 5},
		{"zero block size", with(5, 0, 0, 0, 0), 5},
		{"huge block size", with(5, 0xff, 0xff, 0xff, 0x7f), 5},
	}
	for _, tt := range tests {
		if _, err := DecodeVector(tt.b, tt.n); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	v, err := DecodeVector(good, 5)
	if err != nil {
		t.Fatalf("good vector: %v", err)
	}
	// Scale of block 0 is 4/7, of block 1 5/7: each value is exact on its grid.
	for i, want := range []float32{1, -2, 3, -4, 5} {
		if math.Abs(float64(v[i]-want)) > roundTripBound(5.0/7, int4Levels) {
			t.Errorf("element %d = %g, want ≈ %g", i, v[i], want)
		}
	}
}

func mustQuantizeInt4(t testing.TB, x []float32, bs int) Quantized {
	q, err := QuantizeInt4(x, bs)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustQuantize(t testing.TB, x []float32, bs int) Quantized {
	q, err := Quantize(x, bs)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func FuzzDecodeVector(f *testing.F) {
	f.Add(EncodeInt8(nil, mustQuantize(f, []float32{1, 2, 3, 4, 5}, 2)), 5)
	f.Add(EncodeFloat32(nil, []float32{1, 2}), 2)
	f.Add([]byte{1, 0, 0, 0, 0}, 0)
	f.Add(EncodeInt4(nil, mustQuantizeInt4(f, []float32{1, -2, 3, -4, 5}, 2)), 5)
	f.Add(EncodeInt4(nil, mustQuantizeInt4(f, []float32{0.5, -7, 7, 0}, 4)), 4)
	f.Add([]byte{3, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x80, 0x3f, 0x08}, 1) // -8: refused
	f.Add([]byte{3, 0, 0, 0, 0, 1, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		v, err := DecodeVector(b, n)
		if err == nil && len(v) != n {
			t.Fatalf("decoded %d elements, want %d", len(v), n)
		}
	})
}

// TestDecodeIntoAUsedBuffer decodes every codec (sparse top-k blocks and
// empty ones among them) into a buffer full of garbage: the same values
// as into a new one, so a reused buffer keeps nothing of its last use.
func TestDecodeIntoAUsedBuffer(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	codecs := []Codec{CodecInt8, CodecInt4, CodecFloat32, mustTopK(4, 2), mustTopK(32, 3), mustTopK(MaxTopK, 1)}
	for _, codec := range codecs {
		for _, n := range []int{1, 100, 1000} {
			x := trickyVector(rng, n)
			for i := range x[:n/3] { // whole blocks of zeros: empty top-k blocks
				x[i] = 0
			}
			var wire []byte
			if codec == CodecFloat32 {
				wire = EncodeFloat32(nil, x)
			} else {
				q, err := quantize(x, 64, codec)
				if err != nil {
					t.Fatal(err)
				}
				wire = EncodeQuantized(nil, q)
			}
			want, err := DecodeVector(wire, n)
			if err != nil {
				t.Fatal(err)
			}
			used := make([]float32, n)
			for i := range used {
				used[i] = float32(math.NaN())
			}
			got, err := decodeVector(wire, n, used)
			if err != nil {
				t.Fatal(err)
			}
			if &got[0] != &used[0] {
				t.Fatalf("%s: decoded into a new slice, not the one given", codec)
			}
			sameBits(t, codec.String()+" into a used buffer", got, want)
			if _, err := decodeVector(wire, n, make([]float32, n+1)); err == nil {
				t.Fatalf("%s: decoding %d elements into %d succeeded", codec, n, n+1)
			}
		}
	}
}
