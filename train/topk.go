package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// This file holds the top-k codec: of every block it sends only the k
// largest magnitudes, each as a b-bit code (b = 2, 3 or 4) times the
// block's scale, and error feedback carries everything else to the next
// round. Top-k is taken per block rather than over the whole vector so
// that an index costs one byte (an offset inside a 256-value block), a
// block's k values share one 2-byte scale, and the values a worker commits
// to do not depend on how the round later splits the vector into parts
// (a part is a run of whole blocks).
//
// In memory a top-k vector is a Quantized whose Values hold, for the k
// selected elements of a block, an odd integer v in ±1, ±3, …, ±(2^b − 1),
// and 0 elsewhere; x[i] ≈ Scales[block]·v. The grid has no zero: a
// selected value is one of the block's largest, and 2^b levels around zero
// use every code. Each scale is a bfloat16 (the top half of a float32), so
// Dequantize and the wire decoder compute the same products bit for bit.

const (
	// topKFlag marks a top-k codec byte: 1 bb kkkkk, with bb = bits − 1
	// and kkkkk the index of k in TopKCounts. The codec byte travels in
	// every encoded vector and every signed commitment, so k and b are
	// bound to what a worker commits to.
	topKFlag = 0x80
	// MaxTopK is the most values a top-k codec keeps per block.
	MaxTopK = 256
	// MinTopKBits and MaxTopKBits bound the bits per kept value.
	MinTopKBits, MaxTopKBits = 1, 4
)

// TopKCounts lists the values per block a top-k codec may keep: every
// count to 16, then sparser steps to a whole block of 256.
var TopKCounts = [32]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256}

// TopKCodec is the codec that keeps the k (one of TopKCounts) largest
// magnitudes of every block, each in bits (MinTopKBits..MaxTopKBits) bits.
func TopKCodec(k, bits int) (Codec, error) {
	at := slices.Index(TopKCounts[:], k)
	if at < 0 {
		return 0, fmt.Errorf("train: top-k keeps %d values per block, want one of %v", k, TopKCounts)
	}
	if bits < MinTopKBits || bits > MaxTopKBits {
		return 0, fmt.Errorf("train: top-k values of %d bits, want %d to %d", bits, MinTopKBits, MaxTopKBits)
	}
	return Codec(topKFlag | (bits-MinTopKBits)<<5 | at), nil
}

// IsTopK reports whether c is a top-k codec.
func (c Codec) IsTopK() bool { return c&topKFlag != 0 }

// TopK returns a top-k codec's values per block and bits per value (0, 0
// for another codec).
func (c Codec) TopK() (k, bits int) {
	if !c.IsTopK() {
		return 0, 0
	}
	return TopKCounts[c&31], int(c>>5&3) + MinTopKBits
}

// parseTopK reads "topk:K:BITS".
func parseTopK(s string) (Codec, error) {
	fields := strings.Split(s, ":")
	if len(fields) != 3 || fields[0] != "topk" {
		return 0, fmt.Errorf("train: codec %q: want topk:K:BITS (K values of every block, BITS bits each)", s)
	}
	k, err1 := strconv.Atoi(fields[1])
	b, err2 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("train: codec %q: want topk:K:BITS with integers K and BITS", s)
	}
	return TopKCodec(k, b)
}

// topKLevels is the largest odd value of b-bit codes: 2^b − 1 (1 for
// one bit: the sign).
func topKLevels(bits int) int { return 1<<bits - 1 }

// topKMaxScale[b] is the largest bfloat16 scale whose largest value,
// scale·(2^b − 1), is finite: decoders refuse larger ones, so every
// decoded value is finite.
var topKMaxScale = func() (out [MaxTopKBits + 1]uint16) {
	for b := MinTopKBits; b <= MaxTopKBits; b++ {
		s := uint16(0x7f7f) // the largest finite bfloat16
		for !finite32(bf16(s) * float32(topKLevels(b))) {
			s--
		}
		out[b] = s
	}
	return out
}()

// bitReader reads codes of width bits, least significant first; the
// caller has checked that src holds them all.
type bitReader struct {
	src           []byte
	acc, mask     uint64
	filled, width uint
}

func (r *bitReader) next() int {
	if r.filled < r.width {
		r.acc |= uint64(r.src[0]) << r.filled
		r.src = r.src[1:]
		r.filled += 8
	}
	c := int(r.acc & r.mask)
	r.acc >>= r.width
	r.filled -= r.width
	return c
}

// next8 returns the next eight codes, the first in the lowest bits. It
// loads four bytes at a time while four remain. (next loads one: codes
// of a sparse block are few, and a four-byte load there measured slower.)
func (r *bitReader) next8() uint64 {
	width := 8 * r.width // at most 32
	for r.filled < width {
		if len(r.src) >= 4 {
			r.acc |= uint64(binary.LittleEndian.Uint32(r.src)) << r.filled
			r.src = r.src[4:]
			r.filled += 32
		} else {
			r.acc |= uint64(r.src[0]) << r.filled
			r.src = r.src[1:]
			r.filled += 8
		}
	}
	codes := r.acc & (1<<width - 1)
	r.acc >>= width
	r.filled -= width
	return codes
}

// bitWriter packs codes of up to 8 bits, least significant first, into
// dst, which has room for them all; it stores four bytes at a time.
type bitWriter struct {
	dst    []byte
	acc    uint64
	filled uint
}

func (w *bitWriter) write(code int8, width uint) {
	w.writeBits(uint32(uint8(code)), width)
}

// writeBits writes the low width (at most 32) bits of codes.
func (w *bitWriter) writeBits(codes uint32, width uint) {
	w.acc |= uint64(codes) << w.filled
	w.filled += width
	if w.filled >= 32 {
		binary.LittleEndian.PutUint32(w.dst, uint32(w.acc))
		w.dst = w.dst[4:]
		w.acc >>= 32
		w.filled -= 32
	}
}

// flush writes the last bits, the last byte padded with zero bits.
func (w *bitWriter) flush() {
	for w.filled > 0 {
		w.dst[0] = byte(w.acc)
		w.dst = w.dst[1:]
		w.acc >>= 8
		w.filled -= min(w.filled, 8)
	}
}

func bf16(s uint16) float32 { return math.Float32frombits(uint32(s) << 16) }

// bf16Up rounds a finite x ≥ 0 up to a bfloat16, at most limit.
func bf16Up(x float32, limit uint16) uint16 {
	b := math.Float32bits(x)
	s := uint16(b >> 16)
	if b&0xffff != 0 {
		s++
	}
	return min(s, limit)
}

// topKScratch is the working memory of compressTopKBlock, sized for one
// block and reused for every block of a vector.
type topKScratch struct {
	mag       []uint32 // the block's magnitudes, as float bits
	candidate []uint32 // magnitudes still in the running for the threshold
	kept      []int32
	// For a small k: the pass that reads a block keeps, as keys for
	// selectFew, the elements with a magnitude of at least guess, a
	// little below the last block's threshold. When k or more (but not
	// too many) pass, the k largest are among them.
	guess   uint32
	keys    [topKFewMax]uint64
	largest [topKFewMax]uint64
	passed  int
	// passed8 holds, per group of eight elements, the mask of those that
	// pass, as topKMagnitudesVec's kernel writes it.
	passed8 []byte
}

// passMask returns room for the masks of groups of eight elements.
func (s *topKScratch) passMask(groups int) []byte {
	if len(s.passed8) < groups {
		s.passed8 = make([]byte, groups)
	}
	return s.passed8[:groups]
}

func newTopKScratch(blockSize int) *topKScratch {
	return &topKScratch{mag: make([]uint32, blockSize), candidate: make([]uint32, blockSize), kept: make([]int32, blockSize), guess: math.MaxUint32}
}

// pass records element i of magnitude m, at least the guess.
func (s *topKScratch) pass(i int, m uint32) {
	if s.passed < len(s.keys) {
		// Larger magnitudes first, then lower indices.
		s.keys[s.passed] = uint64(m)<<32 | uint64(^uint32(i))
	}
	s.passed++
}

// setGuess sets the next block's guess an eighth of a binade below this
// block's threshold.
func (s *topKScratch) setGuess(threshold uint32) {
	s.guess = threshold - min(threshold, 1<<20)
}

// compressTopKBlock is compressBlock for a top-k codec: corrected = x +
// carried (carried may be nil), the k largest magnitudes of corrected
// (ties to the lower index) coded in values, everything else 0, and in
// corrected what the block loses, to be carried. It returns the block's
// scale, or false if the block holds an infinity or a NaN.
//
// With two or more bits the scale is the largest magnitude over 2^b − 1,
// rounded up to a bfloat16, and a value goes to the nearest odd multiple
// below it plus one (2·⌊x/2s⌋ + 1). With one bit a value is its sign
// times the scale, and the scale is the mean magnitude of the kept values
// (the one that loses least), summed in float64 in element order.
func compressTopKBlock(values []int8, corrected, x, carried []float32, k, bits int, scratch *topKScratch) (float32, bool) {
	n := len(x)
	corrected, values = corrected[:n], values[:n]
	mag := scratch.mag[:n]
	k = min(k, n)
	var maxBits, minBits uint32
	var sum float64 // of the magnitudes, for one bit and every value kept
	if 16*k > n {
		scratch.guess = math.MaxUint32 // above every finite magnitude: none passes
	}
	scratch.passed = 0
	switch {
	case k == n && bits == 1:
		maxBits, minBits, sum = signMagnitudes(corrected, x, carried)
	case carried == nil: // (minBits serves only the case above)
		maxBits = magnitudes(mag, corrected, x, scratch)
	default:
		maxBits = correctedMagnitudes(mag, corrected, x, carried, scratch)
	}
	clear(values)
	if maxBits >= 0x7f800000 {
		return 0, false
	}
	if maxBits == 0 { // sent as an empty block: the whole block is carried
		return 0, true
	}
	// kept lists the kept elements in increasing order; nil keeps all.
	var kept []int32
	if k < n {
		kept = scratch.selectTop(mag, k, maxBits)
	}
	levels := topKLevels(bits)
	var scale float32
	if bits == 1 {
		if kept == nil && !sumIsExact(n, maxBits, minBits) {
			sum = 0
			for _, v := range corrected {
				sum += math.Abs(float64(v))
			}
		} else if kept != nil {
			for _, i := range kept {
				sum += math.Abs(float64(corrected[i]))
			}
		}
		scale = bf16(bf16Up(float32(sum/float64(k)), topKMaxScale[bits]))
	} else {
		scale = bf16(bf16Up(float32(float64(math.Float32frombits(maxBits))/float64(levels)), topKMaxScale[bits]))
	}
	if scale == 0 { // magnitudes too small for a bfloat16: carried
		return 0, true
	}
	if bits == 1 && kept == nil {
		// Every value's sign, the common dense case, without branches (a
		// sign is a coin toss to the branch predictor): negative means the
		// sign bit set and a non-zero magnitude, as v < 0.
		odds := [2]int8{1, -1}
		steps := [2]float32{scale, -scale} // scale·odd, exactly
		for i := signCodesVec(values, corrected, scale); i < len(corrected); i++ {
			v := corrected[i]
			b := math.Float32bits(v)
			negative := b >> 31 & ((b&0x7fffffff + 0x7fffffff) >> 31)
			values[i] = odds[negative]
			corrected[i] = v - steps[negative]
		}
		return scale, true
	}
	step := 2 * float64(scale)
	code := func(i int) {
		v := corrected[i]
		odd := 1
		if bits == 1 {
			if v < 0 {
				odd = -1
			}
		} else {
			odd = min(max(2*int(math.Floor(float64(v)/step))+1, -levels), levels)
		}
		values[i] = int8(odd)
		corrected[i] = v - float32(scale*float32(odd)) // float32(): no fused multiply-add
	}
	if kept == nil {
		for i := range corrected {
			code(i)
		}
	} else {
		for _, i := range kept {
			code(int(i))
		}
	}
	return scale, true
}

// magnitudes copies x into corrected, writes the magnitude bits of x into
// mag (passing those at least s.guess to s.pass) and returns the largest.
// The order of IEEE floats without the sign bit is the order of their
// bits as integers, and any value ≥ 0x7f800000 is infinite or NaN.
func magnitudes(mag []uint32, corrected, x []float32, s *topKScratch) (maxBits uint32) {
	mag, corrected = mag[:len(x)], corrected[:len(x)]
	guess := s.guess
	i, max0 := topKMagnitudesVec(mag, corrected, x, nil, s)
	var max1 uint32
	for ; i+2 <= len(x); i += 2 {
		v0, v1 := x[i], x[i+1]
		corrected[i], corrected[i+1] = v0, v1
		m0, m1 := math.Float32bits(v0)&0x7fffffff, math.Float32bits(v1)&0x7fffffff
		mag[i], mag[i+1] = m0, m1
		max0, max1 = max(max0, m0), max(max1, m1)
		if m0 >= guess {
			s.pass(i, m0)
		}
		if m1 >= guess {
			s.pass(i+1, m1)
		}
	}
	for ; i < len(x); i++ {
		corrected[i] = x[i]
		m := math.Float32bits(x[i]) & 0x7fffffff
		mag[i] = m
		max0 = max(max0, m)
		if m >= guess {
			s.pass(i, m)
		}
	}
	return max(max0, max1)
}

// correctedMagnitudes is magnitudes of x + carried, which it writes
// into corrected.
func correctedMagnitudes(mag []uint32, corrected, x, carried []float32, s *topKScratch) (maxBits uint32) {
	mag, corrected, carried = mag[:len(x)], corrected[:len(x)], carried[:len(x)]
	guess := s.guess
	i, max0 := topKMagnitudesVec(mag, corrected, x, carried, s)
	var max1 uint32
	for ; i+2 <= len(x); i += 2 {
		v0, v1 := x[i]+carried[i], x[i+1]+carried[i+1]
		corrected[i], corrected[i+1] = v0, v1
		m0, m1 := math.Float32bits(v0)&0x7fffffff, math.Float32bits(v1)&0x7fffffff
		mag[i], mag[i+1] = m0, m1
		max0, max1 = max(max0, m0), max(max1, m1)
		if m0 >= guess {
			s.pass(i, m0)
		}
		if m1 >= guess {
			s.pass(i+1, m1)
		}
	}
	for ; i < len(x); i++ {
		v := x[i] + carried[i]
		corrected[i] = v
		m := math.Float32bits(v) & 0x7fffffff
		mag[i] = m
		max0 = max(max0, m)
		if m >= guess {
			s.pass(i, m)
		}
	}
	return max(max0, max1)
}

// signMagnitudes is magnitudes for a block that keeps every value's sign:
// x + carried (carried may be nil) into corrected, and the largest and
// smallest non-zero magnitude bits, and the sum of the magnitudes in
// float64, four sums at a time. That sum is the one in element order
// where sumIsExact says so. It reads each element once: the magnitude's
// bits give the float64 magnitude (exactly) without taking the value's
// absolute value again.
func signMagnitudes(corrected, x, carried []float32) (maxBits, minBits uint32, sum float64) {
	n := len(x)
	corrected = corrected[:n]
	if carried == nil {
		copy(corrected, x)
	} else {
		carried = carried[:n]
	}
	// m − 1 wraps a zero to the largest uint32, out of the minimum (the
	// kernel starts the minimum at 0x7fffffff, as where it does nothing).
	var s1, s2, s3 float64
	i, maxAll, minAll, s0 := signMagnitudesVec(corrected, x, carried)
	for ; i+4 <= n; i += 4 {
		out := corrected[i : i+4 : i+4]
		var v0, v1, v2, v3 float32
		if carried == nil {
			v0, v1, v2, v3 = out[0], out[1], out[2], out[3]
		} else {
			in, carry := x[i:i+4:i+4], carried[i:i+4:i+4]
			v0, v1, v2, v3 = in[0]+carry[0], in[1]+carry[1], in[2]+carry[2], in[3]+carry[3]
			out[0], out[1], out[2], out[3] = v0, v1, v2, v3
		}
		m0, m1 := math.Float32bits(v0)&0x7fffffff, math.Float32bits(v1)&0x7fffffff
		m2, m3 := math.Float32bits(v2)&0x7fffffff, math.Float32bits(v3)&0x7fffffff
		maxAll = max(maxAll, m0, m1, m2, m3)
		minAll = min(minAll, m0-1, m1-1, m2-1, m3-1)
		s0 += float64(math.Float32frombits(m0))
		s1 += float64(math.Float32frombits(m1))
		s2 += float64(math.Float32frombits(m2))
		s3 += float64(math.Float32frombits(m3))
	}
	for ; i < n; i++ {
		v := x[i]
		if carried != nil {
			v += carried[i]
		}
		corrected[i] = v
		m := math.Float32bits(v) & 0x7fffffff
		maxAll, minAll = max(maxAll, m), min(minAll, m-1)
		s0 += float64(math.Float32frombits(m))
	}
	return maxAll, minAll + 1, s0 + s1 + s2 + s3
}

// sumIsExact reports whether every sum of magnitudes from a block of n
// finite values, the largest and smallest non-zero of which have the bits
// maxBits and minBits, is exact in float64, so that any order of
// addition gives the same bits: it is when every partial sum is a
// multiple of the smallest magnitude's unit in the last place below 2⁵³
// such units.
func sumIsExact(n int, maxBits, minBits uint32) bool {
	// Exponents of the largest value's next power of two times n, and of
	// the smallest's ulp (subnormals share the smallest normal's ulp).
	top := int(maxBits>>23) + bits.Len(uint(n))
	ulp := max(int(minBits>>23), 1) - 23
	return minBits <= maxBits && top-ulp <= 52
}

// selectTop returns, in increasing order, the indices of the k (< len(mag))
// largest magnitudes, ties to the lower index: those above the k-th
// largest magnitude and the first of those equal to it.
func (s *topKScratch) selectTop(mag []uint32, k int, maxBits uint32) []int32 {
	if 16*k <= len(mag) {
		if s.passed >= k && s.passed <= len(s.keys) { // the guess held
			return s.keepLargest(s.keys[:s.passed], k)
		}
		if kept, ok := s.selectFew(mag, k); ok {
			return kept
		}
	}
	threshold, ties := s.threshold(mag, k, maxBits)
	s.setGuess(threshold)
	kept := s.kept[:len(mag)]
	n := 0
	if 16*k <= len(mag) { // few kept: a branch that is rarely taken costs less
		for i, m := range mag {
			if m >= threshold && (m > threshold || ties > 0) {
				ties -= b2i(m == threshold)
				kept[n] = int32(i)
				n++
			}
		}
		return kept[:n]
	}
	for i, m := range mag {
		// Without branches: whether an element is kept is a coin toss
		// when k is a large share of the block.
		kept[n] = int32(i)
		tie := b2i(m == threshold) & b2i(ties > 0)
		ties -= tie
		n += b2i(m > threshold) | tie
	}
	return kept[:n]
}

// selectFew is selectTop for a k of at most a sixteenth of the block
// when the guess did not hold: cut the block into k runs, and the
// smallest of the runs' largest magnitudes is at most the k-th largest
// (each run holds one value at least that large). Of the few elements not
// below it, keepLargest keeps the k largest. It gives up (false) when
// more than topKFewMax elements pass.
func (s *topKScratch) selectFew(mag []uint32, k int) ([]int32, bool) {
	n := len(mag)
	floor := uint32(math.MaxUint32)
	for run := range k {
		floor = min(floor, maxOf(mag[run*n/k:(run+1)*n/k]))
	}
	if floor == 0 { // a run of zeros (a sparse block): every element passes
		return nil, false
	}
	s.passed = 0
	for i, m := range mag {
		if m >= floor {
			if s.passed == len(s.keys) {
				return nil, false
			}
			s.pass(i, m)
		}
	}
	return s.keepLargest(s.keys[:s.passed], k), true
}

// keepLargest returns, in increasing order, the elements of the k largest
// keys (k ≤ len(keys)), and sets the next guess from the k-th.
func (s *topKScratch) keepLargest(keys []uint64, k int) []int32 {
	// Insertion into the k largest so far, in decreasing order: most keys
	// are smaller than the k-th and cost one comparison.
	largest := s.largest[:k]
	copy(largest, keys[:k])
	slices.Sort(largest)
	slices.Reverse(largest)
	for _, key := range keys[k:] {
		if key < largest[k-1] {
			continue
		}
		j := k - 1
		for ; j > 0 && largest[j-1] < key; j-- {
			largest[j] = largest[j-1]
		}
		largest[j] = key
	}
	s.setGuess(uint32(largest[k-1] >> 32))
	kept := s.kept[:k]
	for j, key := range largest {
		kept[j] = int32(^uint32(key))
	}
	slices.Sort(kept)
	return kept
}

// topKFewMax is the most elements selectFew sorts.
const topKFewMax = 64

// maxOf is the largest of x (0 for none), with two maxima in flight.
func maxOf(x []uint32) uint32 {
	var m0, m1 uint32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		m0, m1 = max(m0, x[i]), max(m1, x[i+1])
	}
	if i < len(x) {
		m0 = max(m0, x[i])
	}
	return max(m0, m1)
}

// topKSortMax: threshold sorts this many candidates or fewer.
const topKSortMax = 16

// threshold returns the k-th largest of mag (k < len(mag), maxBits the
// largest) and how many of the values equal to it are among the k
// largest. It narrows the range the threshold lies in by a histogram of
// 256 bins over the candidates, keeping only those in the bin that holds
// it, until few enough remain to sort: each round divides the range by
// 256, so there are at most four.
func (s *topKScratch) threshold(mag []uint32, k int, maxBits uint32) (uint32, int) {
	candidates := mag
	need := k // the largest need candidates are among the k largest
	lo, hi := uint32(0), maxBits
	for {
		if len(candidates) <= topKSortMax {
			var sorted [topKSortMax]uint32
			sortedDown := sorted[:len(candidates)]
			copy(sortedDown, candidates)
			slices.Sort(sortedDown)
			slices.Reverse(sortedDown)
			threshold := sortedDown[need-1]
			above := 0
			for _, m := range sortedDown[:need] {
				above += b2i(m > threshold)
			}
			return threshold, need - above
		}
		if lo == hi {
			return lo, need
		}
		shift := uint(max(bits.Len32(hi-lo), 8) - 8)
		var histogram [256]uint32
		for _, m := range candidates {
			histogram[(m-lo)>>shift]++
		}
		bin := int((hi - lo) >> shift)
		for ; int(histogram[bin]) < need; bin-- {
			need -= int(histogram[bin])
		}
		binLo := lo + uint32(bin)<<shift
		width := min(hi-binLo, 1<<shift-1)
		// Keep the bin's candidates, in place: the write index never
		// passes the read index.
		kept := s.candidate[:len(candidates)]
		n := 0
		for _, m := range candidates {
			kept[n] = m
			n += b2i(m-binLo <= width)
		}
		candidates = kept[:n]
		lo, hi = binLo, binLo+width
	}
}

// quantizeTopK compresses x with a top-k codec and no carried error.
func quantizeTopK(x []float32, blockSize int, codec Codec) (Quantized, error) {
	q, err := newQuantized(len(x), blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	k, bits := codec.TopK()
	corrected := make([]float32, min(blockSize, len(x)))
	scratch := newTopKScratch(min(blockSize, len(x)))
	for b := range q.Scales {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(x))
		scale, ok := compressTopKBlock(q.Values[lo:hi], corrected, x[lo:hi], nil, k, bits, scratch)
		if !ok {
			return Quantized{}, firstNonFinite(x[lo:hi], lo)
		}
		q.Scales[b] = scale
	}
	return q, nil
}

// Wire form of a top-k vector (little-endian):
//
//	codec(1) | n uint32 | blockSize uint32 | scales [nb]uint16 | indices | codes
//
// A scale is a bfloat16 ≥ 0; a block with scale 0 sends nothing else. Every
// other block sends k' = min(k, its length) indices (none when k' is its
// length: every element is kept), as whichever is smaller (offsets when
// equal): k' offsets into the
// block, strictly increasing, one byte each (two, little-endian, for
// blocks over 256), or a bitmap of ⌈length/8⌉ bytes, bit i (of byte i/8,
// least significant first) for element i, with exactly k' bits set and
// the bits past the block's length 0. Then the codes of every kept value,
// in element order, b bits each, packed least significant bit first, the
// last byte padded with zero bits; code c stands for (2c − (2^b − 1))·scale.

// topKIndexBytes is how many bytes the indices of a sent block of length
// elements take, and whether they go as a bitmap. A block that keeps
// every element sends none.
func topKIndexBytes(length, k, blockSize int) (int, bool) {
	if k >= length {
		return 0, false
	}
	width := 1
	if blockSize > 256 {
		width = 2
	}
	offsets, bitmap := min(k, length)*width, (length+7)/8
	if bitmap < offsets {
		return bitmap, true
	}
	return offsets, false
}

// EncodeTopK appends the wire form of q, which must come from a top-k
// codec's compressor (k' odd values per block with a non-zero scale, none
// in a block with scale 0, scales that are bfloat16 values).
func EncodeTopK(dst []byte, q Quantized) []byte {
	k, bits := q.Codec.TopK()
	if k == 0 {
		panic(fmt.Sprintf("train: EncodeTopK of a %s vector", q.Codec))
	}
	n, bs := len(q.Values), q.BlockSize
	indexBytes, kept := 0, 0
	for b, s := range q.Scales {
		if s != 0 {
			length := min(bs, n-b*bs)
			size, _ := topKIndexBytes(length, k, bs)
			indexBytes += size
			kept += min(k, length)
		}
	}
	dst = slices.Grow(dst, vectorHeader+4+2*len(q.Scales)+indexBytes+(kept*bits+7)/8)
	dst = append(dst, byte(q.Codec))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bs))
	for _, s := range q.Scales {
		sb := math.Float32bits(s)
		if sb&0xffff != 0 || sb>>31 != 0 {
			panic(fmt.Sprintf("train: top-k scale %v is not a bfloat16 ≥ 0", s))
		}
		dst = binary.LittleEndian.AppendUint16(dst, uint16(sb>>16))
	}
	body := len(dst)
	dst = dst[:body+indexBytes+(kept*bits+7)/8]
	clear(dst[body:])
	indices := dst[body : body+indexBytes]
	codes := bitWriter{dst: dst[body+indexBytes:]}
	levels, width := int8(topKLevels(bits)), uint(bits)
	at := make([]int32, min(bs, n)) // the kept elements of a block
	masks := make([]uint32, len(at)/32)
	for b, s := range q.Scales {
		lo := b * bs
		block := q.Values[lo:min(lo+bs, n)]
		want := 0
		if s != 0 {
			want = min(k, len(block))
		}
		size, bitmap := topKIndexBytes(len(block), k, bs)
		if want > 0 && size == 0 { // every element kept: codes only
			if bits == 1 && packSigns(&codes, block) {
				continue
			}
			if i := slices.Index(block, 0); i >= 0 {
				panic(fmt.Sprintf("train: top-k block %d keeps %d values, want %d", b, i, want))
			}
			// Eight codes at a time, put together apart from the writer.
			i := 0
			for ; i+8 <= len(block); i += 8 {
				e := block[i : i+8 : i+8]
				// (v + levels)/2, for v + levels ≥ 0.
				code := func(v int8) uint32 { return uint32(uint8(v+levels) >> 1) }
				low := code(e[0]) | code(e[1])<<width | code(e[2])<<(2*width) | code(e[3])<<(3*width)
				high := code(e[4]) | code(e[5])<<width | code(e[6])<<(2*width) | code(e[7])<<(3*width)
				codes.writeBits(low|high<<(4*width), 8*width)
			}
			for _, v := range block[i:] {
				codes.write((v+levels)/2, width)
			}
			continue
		}
		// The kept elements' offsets: with a branch rarely taken in a
		// sparse block, without one in a denser block, where it would be
		// a coin toss.
		count := 0
		if 16*want <= len(block) {
			// Thirty-two values at a time where the kernel runs, then
			// eight: the top bit of each non-zero byte (its low seven
			// bits plus 0x7f carry into it, or it was set).
			i := nonZeroMasksVec(block, masks)
			for g, m := range masks[:i/32] {
				for ; m != 0 && count < len(at); m &= m - 1 {
					at[count] = int32(32*g + lowestBit(m))
					count++
				}
			}
			for ; i+8 <= len(block); i += 8 {
				w := load8(block[i:])
				for nz := (w&0x7f7f7f7f7f7f7f7f + 0x7f7f7f7f7f7f7f7f | w) & 0x8080808080808080; nz != 0 && count < len(at); nz &= nz - 1 {
					at[count] = int32(i + lowestByte(nz))
					count++
				}
			}
			for ; i < len(block); i++ {
				if block[i] != 0 && count < len(at) {
					at[count] = int32(i)
					count++
				}
			}
		} else {
			for i, v := range block {
				at[count] = int32(i)
				count += b2i(v != 0)
				if count == len(at) { // a block of nothing but non-zeros (caught below)
					break
				}
			}
		}
		if count != want {
			panic(fmt.Sprintf("train: top-k block %d keeps %d values, want %d", b, count, want))
		}
		for j, i := range at[:count] {
			switch {
			case bitmap:
				indices[i/8] |= 1 << (i % 8)
			case bs > 256:
				binary.LittleEndian.PutUint16(indices[2*j:], uint16(i))
			default:
				indices[j] = byte(i)
			}
			codes.write((block[i]+levels)/2, width)
		}
		if want > 0 {
			indices = indices[size:]
		}
	}
	codes.flush()
	return dst
}

// packSigns writes the one-bit codes of a block that keeps every value
// (1 for a value of 1, 0 for −1), eight at a time: the compiler reads
// eight int8 values as one uint64 (see load8), and one multiplication
// gathers their sign bits. It writes nothing and returns false unless
// every value is 1 or −1; the caller then takes the long way, which
// refuses a zero.
func packSigns(codes *bitWriter, block []int8) bool {
	const (
		low  = 0x0101010101010101
		high = 0x8080808080808080
	)
	// A byte is 0x01 or 0xff when its bit 0 is set and bits 1 to 7 are
	// equal: no bit of w ^ w<<1 in 2..7 of any byte.
	var bad uint64
	i := 0
	for ; i+8 <= len(block); i += 8 {
		w := load8(block[i : i+8 : i+8])
		bad |= (w^w<<1)&(high|high>>1|high>>2|high>>3|high>>4|high>>5) | ^w&low
	}
	for _, v := range block[i:] {
		bad |= uint64(b2i(v != 1 && v != -1))
	}
	if bad != 0 {
		return false
	}
	// signs gathers the inverted sign bits of eight values, the first
	// in bit 0: bit 8j of the shifted word lands in bit 56 + j of the
	// product, and nothing else reaches bits 56 to 63.
	signs := func(e []int8) uint32 { return uint32((^load8(e) & high >> 7 * 0x0102040810204080) >> 56) }
	i = 0
	for ; i+32 <= len(block); i += 32 {
		e := block[i : i+32 : i+32]
		codes.writeBits(signs(e[0:8])|signs(e[8:16])<<8|signs(e[16:24])<<16|signs(e[24:32])<<24, 32)
	}
	for ; i+8 <= len(block); i += 8 {
		codes.writeBits(signs(block[i:i+8:i+8]), 8)
	}
	for _, v := range block[i:] {
		codes.write((v+1)/2, 1)
	}
	return true
}

// lowestBit is the index of the lowest set bit of m (m ≠ 0).
func lowestBit(m uint32) int { return bits.TrailingZeros32(m) }

// lowestByte is the index of the lowest byte of w with its top bit set.
func lowestByte(w uint64) int { return bits.TrailingZeros64(w) / 8 }

// load8 reads e[0..7] as one little-endian word, e[0] in the low byte;
// the compiler turns it into a single 8-byte load.
func load8(e []int8) uint64 {
	e = e[:8]
	return uint64(uint8(e[0])) | uint64(uint8(e[1]))<<8 | uint64(uint8(e[2]))<<16 | uint64(uint8(e[3]))<<24 |
		uint64(uint8(e[4]))<<32 | uint64(uint8(e[5]))<<40 | uint64(uint8(e[6]))<<48 | uint64(uint8(e[7]))<<56
}

// compressReduced is a reducer's requantization of a combined part in
// int4 or a top-k codec: combined plus the reducer's carried residual,
// compressed, in one pass, with requantize's bits
// (TestCompressReducedIsRequantize). It returns the result and the new
// residual (residual itself is not changed), or an error if the sum
// overflows or a block's largest value would leave the float32 range
// (requantize saturates and zeroes those). The new residual goes into
// spare and the values into spareValues when they have the length (their
// contents are overwritten).
func compressReduced(combined, residual, spare []float32, spareValues []int8, blockSize int, codec Codec) (Quantized, []float32, error) {
	if codec != CodecInt4 && !codec.IsTopK() {
		return Quantized{}, nil, fmt.Errorf("train: compressReduced in %s", codec)
	}
	fb := ErrorFeedback{Codec: codec, residual: residual, recycle: true, spare: spare, spareValues: spareValues}
	q, err := fb.Compress(combined, blockSize)
	if err != nil {
		return Quantized{}, nil, err
	}
	return q, fb.residual, nil
}

// decodeTopK reads and decodes the body of a top-k vector of n elements
// (everything after the codec and length). It checks the whole layout
// against the declared length before it allocates the n decoded values,
// and refuses any second encoding of a vector.
func decodeTopK(codec Codec, n int, body []byte, out []float32) ([]float32, error) {
	k, valueBits := codec.TopK()
	bs, body, err := readBlockSize(codec, body)
	if err != nil {
		return nil, err
	}
	nb := NumBlocks(n, bs)
	if len(body) < 2*nb {
		return nil, fmt.Errorf("train: %s vector of %d elements in blocks of %d has %d bytes, too few for its %d scales", codec, n, bs, len(body), nb)
	}
	scales, rest := body[:2*nb], body[2*nb:]
	indexBytes, kept := 0, 0
	for b := range nb {
		s := binary.LittleEndian.Uint16(scales[2*b:])
		if s == 0 {
			continue
		}
		if s>>15 != 0 || s > topKMaxScale[valueBits] {
			return nil, fmt.Errorf("train: bad top-k scale %#04x in block %d (want a bfloat16 in 0..%v)", s, b, bf16(topKMaxScale[valueBits]))
		}
		length := min(bs, n-b*bs)
		size, _ := topKIndexBytes(length, k, bs)
		indexBytes += size
		kept += min(k, length)
	}
	codeBytes := (kept*valueBits + 7) / 8
	if len(rest) != indexBytes+codeBytes {
		return nil, fmt.Errorf("train: %s vector of %d elements in blocks of %d has %d bytes after its scales, want %d", codec, n, bs, len(rest), indexBytes+codeBytes)
	}
	indices, codes := rest[:indexBytes], rest[indexBytes:]
	reused := out != nil // then what no code covers is zeroed here
	if !reused {
		out = make([]float32, n)
	}
	levels := topKLevels(valueBits)
	var grid [1 << MaxTopKBits]float32 // code → value in the current block
	mask := uint64(1)<<valueBits - 1
	codeReader := bitReader{src: codes, width: uint(valueBits), mask: mask}
	for b := range nb {
		s := binary.LittleEndian.Uint16(scales[2*b:])
		if s == 0 {
			if reused {
				clear(out[b*bs : min((b+1)*bs, n)])
			}
			continue
		}
		scale := bf16(s)
		for c := range 1 << valueBits {
			grid[c] = scale * float32(2*c-levels)
		}
		lo := b * bs
		length := min(bs, n-lo)
		block := out[lo : lo+length]
		want := min(k, length)
		size, bitmap := topKIndexBytes(length, k, bs)
		idx := indices[:size]
		indices = indices[size:]
		if reused && size != 0 { // a sparse block: only the kept are written
			clear(block)
		}
		if size == 0 {
			// Eight codes at a time: one read, then eight lookups that
			// do not wait on each other.
			i := decodeDenseVec(block, &codeReader, &grid, valueBits)
			for ; i+8 <= len(block); i += 8 {
				word := codeReader.next8()
				e := block[i : i+8 : i+8]
				w := uint(valueBits)
				e[0], e[1] = grid[word&mask&15], grid[word>>w&mask&15]
				e[2], e[3] = grid[word>>(2*w)&mask&15], grid[word>>(3*w)&mask&15]
				e[4], e[5] = grid[word>>(4*w)&mask&15], grid[word>>(5*w)&mask&15]
				e[6], e[7] = grid[word>>(6*w)&mask&15], grid[word>>(7*w)&mask&15]
			}
			for ; i < len(block); i++ {
				block[i] = grid[codeReader.next()]
			}
			continue
		}
		if bitmap {
			count := 0
			for i, byt := range idx {
				if i == len(idx)-1 && length%8 != 0 && byt>>(length%8) != 0 {
					return nil, fmt.Errorf("train: top-k block %d: bitmap marks elements past its %d", b, length)
				}
				count += bits.OnesCount8(byt)
			}
			if count != want {
				return nil, fmt.Errorf("train: top-k block %d: bitmap marks %d elements, want %d", b, count, want)
			}
			for i, byt := range idx {
				for byt != 0 {
					t := bits.TrailingZeros8(byt)
					block[8*i+t] = grid[codeReader.next()]
					byt &= byt - 1
				}
			}
			continue
		}
		prev := -1
		for j := range want {
			var at int
			if bs > 256 {
				at = int(binary.LittleEndian.Uint16(idx[2*j:]))
			} else {
				at = int(idx[j])
			}
			if at >= length {
				return nil, fmt.Errorf("train: top-k block %d: index %d out of range (block of %d)", b, at, length)
			}
			if at <= prev {
				return nil, fmt.Errorf("train: top-k block %d: index %d after %d (indices must increase: no duplicates, sorted)", b, at, prev)
			}
			prev = at
			block[at] = grid[codeReader.next()]
		}
	}
	if codeReader.acc != 0 {
		return nil, fmt.Errorf("train: %s vector has non-zero padding bits", codec)
	}
	return out, nil
}
