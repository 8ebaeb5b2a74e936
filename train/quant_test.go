package train

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
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
func roundTripBound(scale float32) float64 {
	return float64(scale)/2 + 127*float64(scale)*math.Pow(2, -24)
}

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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Quantize(tt.x, tt.blockSize)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(q.Scales), NumBlocks(len(tt.x), tt.blockSize); got != want {
				t.Fatalf("scales = %d, want %d", got, want)
			}
			back := make([]float32, len(tt.x))
			if err := q.Dequantize(back); err != nil {
				t.Fatal(err)
			}
			for i, v := range tt.x {
				scale := q.Scales[i/tt.blockSize]
				if d := math.Abs(float64(v) - float64(back[i])); d > roundTripBound(scale) {
					t.Fatalf("element %d: |%g - %g| = %g > scale/2 = %g", i, v, back[i], d, scale/2)
				}
			}
			// And through the wire form.
			dec, err := DecodeVector(EncodeInt8(nil, q), len(tt.x))
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
	// One large element per block fixes the scale at 1/127, so elements of
	// 0.001 always quantize to zero: without feedback their sum is lost
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
	var fb ErrorFeedback
	sentWith := make([]float64, n)
	sentWithout := make([]float64, n)
	buf := make([]float32, n)
	for r := 1; r <= rounds; r++ {
		q, err := fb.Compress(x, 256)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Dequantize(buf); err != nil {
			t.Fatal(err)
		}
		for i, v := range buf {
			sentWith[i] += float64(v)
		}
		plain, _ := Quantize(x, 256)
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
			step := 1.0 / 127
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
	if worst > 1.0/127/rounds {
		t.Errorf("mean per-round error %g, want ≤ %g", worst, 1.0/127/rounds)
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
