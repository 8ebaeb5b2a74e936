package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/testutil"
)

// protocolTopK is the top-k codec the protocol scenarios also run with
// (forEachCodec): with the clusters' blocks of 64 its indices go as
// bitmaps, and 3-bit codes straddle bytes.
var protocolTopK = mustTopK(16, 3)

func mustTopK(k, bits int) Codec {
	c, err := TopKCodec(k, bits)
	if err != nil {
		panic(err)
	}
	return c
}

func TestTopKCodecNames(t *testing.T) {
	for _, k := range TopKCounts {
		for bits := MinTopKBits; bits <= MaxTopKBits; bits++ {
			c := mustTopK(k, bits)
			if !c.IsTopK() || !c.Quantizes() {
				t.Fatalf("%s: not a quantizing top-k codec", c)
			}
			if gk, gb := c.TopK(); gk != k || gb != bits {
				t.Fatalf("TopKCodec(%d, %d).TopK() = %d, %d", k, bits, gk, gb)
			}
			got, err := ParseCodec(c.String())
			if err != nil || got != c {
				t.Fatalf("ParseCodec(%q) = %v, %v; want %v", c.String(), got, err, c)
			}
		}
	}
	for _, c := range []Codec{CodecInt8, CodecInt4, CodecFloat32, 0, 0x7f} {
		if c.IsTopK() {
			t.Errorf("%#x reads as top-k", uint8(c))
		}
	}
	for _, s := range []string{"topk", "topk:4", "topk:0:2", "topk:17:2", "topk:257:2", "topk:4:0", "topk:4:5", "topk:x:2", "topk:4:2:1", "topk:4:2 "} {
		if _, err := ParseCodec(s); err == nil {
			t.Errorf("ParseCodec(%q) accepted", s)
		}
	}
}

// topKVector is a vector with the features that matter: a spread of
// magnitudes, exact ties, zero blocks and negative zeros.
func topKVector(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch rng.Intn(10) {
		case 0:
			x[i] = 0.25 // ties
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		default:
			x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.Intn(6)-4)))
		}
	}
	if n > 300 {
		clear(x[100:300]) // whole zero blocks for small block sizes
	}
	return x
}

// checkTopKBlock checks that values keep exactly the min(k, len) largest
// magnitudes of corrected in a block (ties to the lower index).
func checkTopKBlock(t *testing.T, values []int8, corrected []float32, k int, scale float32) {
	t.Helper()
	if scale == 0 {
		for i, v := range values {
			if v != 0 {
				t.Fatalf("zero-scale block keeps element %d", i)
			}
		}
		return
	}
	order := make([]int, len(corrected))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ma, mb := math.Float32bits(corrected[a])&0x7fffffff, math.Float32bits(corrected[b])&0x7fffffff
		switch {
		case ma > mb:
			return -1
		case ma < mb:
			return 1
		}
		return 0
	})
	keep := min(k, len(corrected))
	for rank, i := range order {
		if kept := values[i] != 0; kept != (rank < keep) {
			t.Fatalf("element %d (rank %d of %d, k %d) kept %v", i, rank, len(order), keep, kept)
		}
	}
}

func TestTopKRoundTripIsBitExact(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, bs := range []int{1, 7, 64, 256, 1000} {
		for _, n := range []int{0, 1, 5, 255, 256, 257, 3000} {
			for _, codec := range []Codec{mustTopK(1, 2), mustTopK(4, 2), mustTopK(5, 3), mustTopK(32, 4), mustTopK(4, 1), mustTopK(48, 2), mustTopK(256, 1), mustTopK(128, 4)} {
				x := topKVector(rng, n)
				q, err := quantize(x, bs, codec)
				if err != nil {
					t.Fatal(err)
				}
				k, _ := codec.TopK()
				for b := range q.Scales {
					lo, hi := b*bs, min((b+1)*bs, n)
					checkTopKBlock(t, q.Values[lo:hi], x[lo:hi], k, q.Scales[b])
				}
				want := make([]float32, n)
				if err := q.Dequantize(want); err != nil {
					t.Fatal(err)
				}
				wire := EncodeQuantized(nil, q)
				got, err := DecodeVector(wire, n)
				if err != nil {
					t.Fatalf("bs %d n %d %s: %v", bs, n, codec, err)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("bs %d n %d %s: element %d decodes to %v, Dequantize gives %v", bs, n, codec, i, got[i], want[i])
					}
				}
				// Every part of whole blocks decodes to its slice of the whole.
				if nb := len(q.Scales); nb >= 2 {
					part := q.Blocks(1, nb)
					got, err := DecodeVector(EncodeQuantized(nil, part), part.Len())
					if err != nil || !slices.Equal(got, want[bs:]) {
						t.Fatalf("bs %d n %d %s: a part does not decode to its slice (%v)", bs, n, codec, err)
					}
				}
			}
		}
	}
}

// TestTopKEncodingIsPinned: the bytes of a fixed vector never change, on
// any machine or in any later version (workers sign and hash them).
func TestTopKEncodingIsPinned(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	x := make([]float32, 4096+100)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 1e-3)
	}
	h := sha256.New()
	for _, codec := range []Codec{mustTopK(4, 2), mustTopK(7, 3), mustTopK(32, 4), mustTopK(256, 1), mustTopK(96, 2)} {
		fb := ErrorFeedback{Codec: codec}
		for range 3 {
			q, err := fb.Compress(x, DefaultBlockSize)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(EncodeQuantized(nil, q))
			h.Write(appendFloats(nil, fb.Residual()))
		}
	}
	const want = "3c0195445c0de29e5dca1fcccf2a9737e714ed5f2be02b8d66886e069e3536b6"
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("encodings hash to %s, want %s", got, want)
	}
}

// TestTopKErrorFeedbackKeepsTheSum: what was sent plus what is carried is
// always what came in; an element is only delayed, never lost.
func TestTopKErrorFeedbackKeepsTheSum(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n, rounds = 2000, 60
	fb := ErrorFeedback{Codec: mustTopK(4, 2)}
	in := make([]float64, n)
	sent := make([]float64, n)
	decoded := make([]float32, n)
	for r := range rounds {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			in[i] += float64(x[i])
		}
		before := slices.Clone(fb.Residual())
		q, err := fb.Compress(x, DefaultBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Dequantize(decoded); err != nil {
			t.Fatal(err)
		}
		for b := range q.Scales {
			lo, hi := b*DefaultBlockSize, min((b+1)*DefaultBlockSize, n)
			corrected := slices.Clone(x[lo:hi])
			if before != nil {
				for i := range corrected {
					corrected[i] += before[lo+i]
				}
			}
			checkTopKBlock(t, q.Values[lo:hi], corrected, 4, q.Scales[b])
		}
		var worst float64
		for i := range decoded {
			sent[i] += float64(decoded[i])
			worst = max(worst, math.Abs(sent[i]+float64(fb.Residual()[i])-in[i]))
		}
		// Each round adds at most a few float32 roundings of values of order 10.
		if worst > 1e-4*float64(r+1) {
			t.Fatalf("round %d: sent + carried is %g away from the inputs' sum", r, worst)
		}
	}
	// Most of the sum has gone out: the carried error stays bounded.
	var carried, total float64
	for i := range in {
		carried += math.Abs(float64(fb.Residual()[i]))
		total += math.Abs(in[i])
	}
	if carried > total {
		t.Errorf("carried error %.1f exceeds the inputs' summed magnitude %.1f", carried, total)
	}
}

func TestTopKRefusesNonFinite(t *testing.T) {
	x := []float32{1, float32(math.Inf(1)), 3}
	fb := ErrorFeedback{Codec: mustTopK(1, 2)}
	if _, err := fb.Compress(x, 2); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("Compress of an infinity: %v", err)
	}
	if fb.Residual() != nil {
		t.Error("a failed Compress changed the residual")
	}
	// The largest float32: its scale is capped so every value decodes finite.
	big := []float32{math.MaxFloat32, -math.MaxFloat32, 1}
	q, err := quantize(big, 4, mustTopK(2, 4))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeVector(EncodeQuantized(nil, q), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if !finite32(v) {
			t.Fatalf("decoded %v", got)
		}
	}
}

// topKWire builds a top-k vector by hand: scales, then indices, then codes.
func topKWire(codec Codec, n, bs int, scales []uint16, rest ...byte) []byte {
	b := []byte{byte(codec)}
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, uint32(bs))
	for _, s := range scales {
		b = binary.LittleEndian.AppendUint16(b, s)
	}
	return append(b, rest...)
}

func TestTopKDecodeRefusesMalformed(t *testing.T) {
	one := uint16(0x3f80) // 1.0
	k2b2 := mustTopK(2, 2)
	k2b4 := mustTopK(2, 4)
	k4b2 := mustTopK(4, 2)
	for _, tc := range []struct {
		name string
		wire []byte
		n    int
		want string
	}{
		{"valid", topKWire(k2b2, 16, 16, []uint16{one}, 1, 5, 0b1101), 16, ""},
		{"valid, a zero block sends nothing", topKWire(k2b2, 32, 16, []uint16{0, one}, 1, 5, 0b1101), 32, ""},
		{"valid bitmap", topKWire(k4b2, 8, 8, []uint16{one}, 0b1001_0011, 0xff), 8, ""},
		{"length is not the part's", topKWire(k2b2, 16, 16, []uint16{one}, 1, 5, 0), 17, "elements, want 17"},
		{"no block size", []byte{byte(k2b2), 8, 0, 0, 0}, 8, "lacks its block size"},
		{"block size 0", topKWire(k2b2, 8, 0, nil), 8, "block size 0"},
		{"scales cut", topKWire(k2b2, 32, 16, []uint16{one})[:12], 32, "too few for its 2 scales"},
		{"index out of range", topKWire(k2b2, 16, 16, []uint16{one}, 1, 16, 0), 16, "out of range"},
		{"index out of a short last block", topKWire(k2b2, 26, 16, []uint16{one, one}, 1, 5, 0, 10, 0), 26, "out of range"},
		{"duplicate index", topKWire(k2b2, 16, 16, []uint16{one}, 5, 5, 0), 16, "must increase"},
		{"unsorted indices", topKWire(k2b2, 16, 16, []uint16{one}, 5, 1, 0), 16, "must increase"},
		{"bitmap with too few bits", topKWire(k4b2, 8, 8, []uint16{one}, 0b0000_0011, 0x0f), 8, "marks 2 elements, want 4"},
		{"bitmap past the block", topKWire(k4b2, 6, 8, []uint16{one}, 0b1100_0011, 0xff), 6, "past its 6"},
		{"padding bits", topKWire(k2b2, 16, 16, []uint16{one}, 1, 5, 0xf0), 16, "padding"},
		{"padding bits, 4-bit codes", topKWire(k2b4, 3, 16, []uint16{one}, 0, 2, 0x11, 0x01), 3, "bytes after its scales"},
		{"negative scale", topKWire(k2b2, 16, 16, []uint16{0xbf80}, 1, 5, 0), 16, "bad top-k scale"},
		{"infinite scale", topKWire(k2b2, 16, 16, []uint16{0x7f80}, 1, 5, 0), 16, "bad top-k scale"},
		{"NaN scale", topKWire(k2b2, 16, 16, []uint16{0x7fc0}, 1, 5, 0), 16, "bad top-k scale"},
		{"scale whose values overflow", topKWire(k2b4, 16, 16, []uint16{0x7f7f}, 1, 5, 0), 16, "bad top-k scale"},
		{"trailing byte", topKWire(k2b2, 16, 16, []uint16{one}, 1, 5, 0, 0), 16, "bytes after its scales"},
		{"codes cut", topKWire(k2b2, 16, 16, []uint16{one}, 1, 5), 16, "bytes after its scales"},
		{"unknown codec byte", topKWire(0x7f, 16, 16, []uint16{one}, 1, 5, 0), 16, "unknown codec"},
		{"valid, every element kept", topKWire(mustTopK(16, 1), 16, 16, []uint16{one}, 0x0f, 0xf0), 16, ""},
		{"every element kept, codes cut", topKWire(mustTopK(16, 1), 16, 16, []uint16{one}, 0x0f), 16, "bytes after its scales"},
		{"offsets of two bytes", topKWire(k2b2, 300, 300, []uint16{one}, 1, 0, 43, 1, 0b1101), 300, ""},
		{"two-byte offset past the block", topKWire(k2b2, 300, 300, []uint16{one}, 1, 0, 44, 1, 0), 300, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := DecodeVector(tc.wire, tc.n)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && len(v) != tc.n:
				t.Fatalf("decoded %d elements", len(v))
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The valid vector above: codes 0b01 and 0b11 at 1 and 5 (2c − 3: −1, 3).
	v, err := DecodeVector(topKWire(k2b2, 16, 16, []uint16{one}, 1, 5, 0b1101), 16)
	if want := []float32{0, -1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; err != nil || !slices.Equal(v, want) {
		t.Errorf("decoded %v, %v; want %v", v, err, want)
	}
}

// TestTopKReducedPartsAreDeterministic: a reducer's output depends only on
// the contributions and its residual, bit for bit.
func TestTopKReducedPartsAreDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	codec := mustTopK(4, 2)
	const n = 3000
	var wires [][]byte
	for range 4 {
		fb := ErrorFeedback{Codec: codec}
		q, err := fb.Compress(topKVector(rng, n), DefaultBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		wires = append(wires, EncodeQuantized(nil, q))
	}
	reduce := func() []byte {
		var inputs [][]float32
		for _, w := range wires {
			v, err := DecodeVector(w, n)
			if err != nil {
				t.Fatal(err)
			}
			inputs = append(inputs, v)
		}
		combined := make([]float32, n)
		if err := (CenteredClip{}).Combine(combined, inputs); err != nil {
			t.Fatal(err)
		}
		q, err := quantize(combined, DefaultBlockSize, codec)
		if err != nil {
			t.Fatal(err)
		}
		return EncodeQuantized(nil, q)
	}
	first := reduce()
	for range 3 {
		if !slices.Equal(reduce(), first) {
			t.Fatal("the same contributions reduced to different bytes")
		}
	}
}

// TestTopKRoundsConverge runs the clusters' four fake workers (each moves
// halfway to its own target per round) with plain averaging as the outer
// step. Top-k with error feedback gets near the mean target and then
// hovers: each worker's pseudo-gradient stays large (its own target is
// elsewhere) and is sent a few elements at a time, so θ carries the
// workers' residuals, a floor that int4's dense grid does not have. With
// Nesterov momentum 0.9 on top of that delay the same run drifts away
// (measured: 24 → 36 over 30 rounds), which is why the top-k benchmarks
// use plain averaging.
func TestTopKRoundsConverge(t *testing.T) {
	cl := newCluster(t, 4, 0, func(c *Config) { c.Codec, c.Outer = protocolTopK, Nesterov{LR: 1} })
	meanTarget := make([]float32, 1000)
	_ = Mean{}.Combine(meanTarget, [][]float32{cl.nodes[0].target, cl.nodes[1].target, cl.nodes[2].target, cl.nodes[3].target})
	dist := func(theta []float32) float64 {
		var s float64
		for i := range theta {
			d := float64(theta[i] - meanTarget[i])
			s += d * d
		}
		return math.Sqrt(s)
	}
	start := dist(cl.nodes[0].c.State().Theta)
	const rounds = 30
	if !cl.runUntil(10*time.Minute, cl.allCompleted(rounds-1)) {
		cl.dumpErrors()
		t.Fatal("rounds did not complete")
	}
	for r := uint64(0); r < rounds; r++ {
		cl.checkAgreement(r)
	}
	end := dist(cl.nodes[0].completes[rounds-1].State.Theta)
	t.Logf("distance to the mean target: %.3f → %.3f", start, end)
	if end > start/3 {
		t.Errorf("distance to the mean target went from %.3f to %.3f; want a 3× drop", start, end)
	}
}

// TestTopKProtocolVector checks docs/PROTOCOL.md's top-k example both ways.
func TestTopKProtocolVector(t *testing.T) {
	v := testutil.DocVector(t, testutil.ProtocolDoc(t), "vector:topk")
	codec, err := ParseCodec(v["codec"])
	if err != nil {
		t.Fatal(err)
	}
	var values []float32
	for _, f := range strings.Fields(v["values"]) {
		x, err := strconv.ParseFloat(f, 32)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, float32(x))
	}
	q, err := quantize(values, len(values), codec)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(EncodeQuantized(nil, q)); got != v["encoded"] {
		t.Errorf("encoded %s, the document says %s", got, v["encoded"])
	}
	wire, err := hex.DecodeString(v["encoded"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeVector(wire, len(values))
	if err != nil || !slices.Equal(got, values) {
		t.Errorf("decoded %v, %v; want %v", got, err, values)
	}
}
