package train

import (
	"encoding/binary"
	"math/bits"

	"golang.org/x/sys/cpu"
)

// The codec's hottest loops run eight floats at a time with AVX2 where
// the CPU has it (kernels_amd64.s; the gc compiler does not vectorise).
// Each kernel does a prefix of whole groups of eight and returns how far
// it got; the scalar loop it stands in for does the rest. Every result
// is bit for bit the scalar one: a lane does the scalar element's IEEE
// operations in the same order, and the one sum whose order differs is
// used only where every order gives the same bits (sumIsExact).
// kernels_test.go compares both paths. Tests may switch vectorized off;
// every *Vec wrapper checks it and then does nothing, so callers call
// them unconditionally.
var vectorized = cpu.X86.HasAVX2

// kernelsBuilt says that this build has the kernels (amd64).
const kernelsBuilt = true

// lanes is the kernels' width in float32s.
const lanes = 8

//go:noescape
func signMagnitudesAVX2(dst, x, carried []float32) (maxBits, minBits1 uint32, sum float64)

//go:noescape
func signCodesAVX2(values []int8, corrected []float32, scale float32)

//go:noescape
func decodeWordsAVX2(dst []float32, src []byte, stride int, grid *[1 << MaxTopKBits]float32, width int)

//go:noescape
func meanAVX2(dst []float32, inputs [][]float32)

//go:noescape
func roundF32AVX2(values []int8, x []float32, p *roundParams32, residual bool) int

//go:noescape
func dequantizeInt8AVX2(dst []float32, src []byte, scale float32)

//go:noescape
func sums4AVX2(sums *[4]float64, inputs [][]float32, with []float32, lo, n, mode int)

//go:noescape
func median4AVX2(dst []float32, inputs [][]float32, lo int) int

//go:noescape
func copyInt8AVX2(dst []byte, src []int8)

//go:noescape
func dequantizeInt8sAVX2(dst []float32, src []int8, scale float32)

//go:noescape
func subtractAVX2(dst, a, b []float32) int

//go:noescape
func medianNetAVX2(dst []float32, inputs [][]float32, lo int, net []int, scratch *[maxNetInputs * lanes]float32, mid int, even bool) int

//go:noescape
func median8AVX2(dst []float32, inputs [][]float32, lo int) int

//go:noescape
func nonZeroMasksAVX2(values []int8, masks *uint32)

//go:noescape
func moveCentreAVX2(centre []float32, step []float64, k float64)

//go:noescape
func addStep1AVX2(step []float64, in []float32, scale float64, centre []float32)

//go:noescape
func addSteps4AVX2(step []float64, inputs [][]float32, scales *[4]float64, centre []float32, lo int)

//go:noescape
func clipPass4AVX2(centre []float32, inputs [][]float32, scales, sums *[4]float64, measure bool)

// signMagnitudesVec is the loop of signMagnitudes over whole groups of
// eight: corrected = x + carried (corrected already holds x when carried
// is nil), the largest magnitude bits, the smallest of (magnitude bits −
// 1) and the sum of the magnitudes in float64 in some order.
func signMagnitudesVec(corrected, x, carried []float32) (done int, maxBits, minBits1 uint32, sum float64) {
	done = len(x) &^ (lanes - 1)
	if done == 0 || !vectorized {
		return 0, 0, 0x7fffffff, 0
	}
	corrected = corrected[:done]
	if carried != nil {
		carried = carried[:done]
	}
	maxBits, minBits1, sum = signMagnitudesAVX2(corrected, x[:done], carried)
	return done, maxBits, minBits1, sum
}

// signTable[b] is the codes of eight signs whose negatives are the set
// bits of b (−1 there, +1 elsewhere), as the bytes of a little-endian
// word.
var signTable = func() (t [256]uint64) {
	for b := range t {
		for j := range lanes {
			code := uint64(1)
			if b>>j&1 != 0 {
				code = 0xff // int8(−1)
			}
			t[b] |= code << (8 * j)
		}
	}
	return t
}()

// signCodesVec is the dense one-bit coding loop of compressTopKBlock over
// whole groups of eight: a value below zero codes −1 and loses −scale;
// any other (+0, −0 and positives: the block has no NaN) codes +1 and
// loses scale.
func signCodesVec(values []int8, corrected []float32, scale float32) int {
	done := len(corrected) &^ (lanes - 1)
	if !vectorized {
		return 0
	}
	if done > 0 {
		signCodesAVX2(values[:done], corrected[:done], scale)
	}
	return done
}

// codeShifts[w][j] brings the j-th w-bit code of a word to the bottom.
var codeShifts = func() (t [MaxTopKBits + 1][lanes]uint32) {
	for w := range t {
		for j := range lanes {
			t[w][j] = uint32(j * w)
		}
	}
	return t
}()

// decodeDenseVec is the dense-block loop of decodeTopK over whole groups
// of eight: each group's codes come from r, and code c decodes to
// grid[c]. Where r is at a byte boundary (as every whole dense block of
// a multiple of eight leaves it), a group's codes are the next width
// bytes of r.src, which the kernel reads in place; otherwise r hands them
// over eight codes at a time.
func decodeDenseVec(block []float32, r *bitReader, grid *[1 << MaxTopKBits]float32, width int) int {
	if !vectorized {
		return 0
	}
	done := len(block) &^ (lanes - 1)
	i := 0
	if r.filled == 0 && len(r.src) >= 4 {
		// The kernel loads four bytes at each group's start.
		groups := min(done/lanes, (len(r.src)-4)/width+1)
		decodeWordsAVX2(block[:groups*lanes], r.src, width, grid, width)
		r.src = r.src[groups*width:]
		i = groups * lanes
	}
	var words [4 * 32]byte
	for i < done {
		n := min(32, (done-i)/lanes)
		for j := range n {
			binary.LittleEndian.PutUint32(words[4*j:], uint32(r.next8()))
		}
		decodeWordsAVX2(block[i:i+n*lanes], words[:4*n], 4, grid, width)
		i += n * lanes
	}
	return done
}

// meanVec is Mean.Combine over whole groups of eight coordinates: each
// coordinate's inputs summed in float64 from +0 in input order, over k.
// The caller has checked that every input is as long as dst.
func meanVec(dst []float32, inputs [][]float32) int {
	done := len(dst) &^ (lanes - 1)
	if done > 0 && len(inputs) > 0 && vectorized {
		meanAVX2(dst[:done], inputs)
		return done
	}
	return 0
}

// clipPass4Vec is clipPass4 over whole groups of four coordinates, each
// lane one coordinate: the same step, centre and distances, and the four
// sums still advance coordinate by coordinate. It leaves the work to the
// scalar loop where a scale is not finite (never, for decoded inputs).
func clipPass4Vec(centre []float32, inputs [][]float32, scales, sumSquares []float64, measure bool) int {
	done := len(centre) &^ 3
	if done == 0 || len(inputs) != 4 || !vectorized {
		return 0
	}
	for i, in := range inputs {
		if len(in) < done || !finite64(scales[i]) {
			return 0
		}
	}
	clipPass4AVX2(centre[:done], inputs, (*[4]float64)(scales), (*[4]float64)(sumSquares), measure)
	return done
}

// addSteps4Vec is addSteps's loop over the group of four inputs at
// inputs[0:4] (their scales at scales[0:4]) for whole groups of four
// coordinates, each lane one coordinate; it returns how many it did, none
// where a scale is not finite (never, for decoded inputs).
func addSteps4Vec(step []float64, inputs [][]float32, scales []float64, centre []float32, lo int) int {
	done := len(centre) &^ 3
	if done == 0 || !vectorized || len(inputs) < 4 || len(scales) < 4 || len(step) < done {
		return 0
	}
	for i, in := range inputs[:4] {
		if len(in) < lo+done || !finite64(scales[i]) {
			return 0
		}
	}
	addSteps4AVX2(step[:done], inputs[:4], (*[4]float64)(scales), centre, lo)
	return done
}

// addStep1Vec is addSteps's loop over one input (in, already cut at the
// chunk) for whole groups of four coordinates; it returns how many it did.
func addStep1Vec(step []float64, in []float32, scale float64, centre []float32) int {
	done := len(centre) &^ 3
	if done == 0 || !vectorized || len(step) < done || len(in) < done || !finite64(scale) {
		return 0
	}
	addStep1AVX2(step[:done], in, scale, centre)
	return done
}

// moveCentreVec is centered clipping's move of the centre by the mean of
// k steps for whole groups of four coordinates; it returns how many it did.
func moveCentreVec(centre []float32, step []float64, k int) int {
	done := len(centre) &^ 3
	if done == 0 || !vectorized || len(step) < done {
		return 0
	}
	moveCentreAVX2(centre[:done], step, float64(k))
	return done
}

// nonZeroMasksVec writes, for each whole 32 values, the mask of the
// non-zero ones (bit i for value i of the 32) into masks, and returns how
// many values it covered.
func nonZeroMasksVec(values []int8, masks []uint32) int {
	done := len(values) &^ 31
	if done == 0 || !vectorized || len(masks) < done/32 {
		return 0
	}
	nonZeroMasksAVX2(values[:done], &masks[0])
	return done
}

// roundParams32 are roundF32AVX2's constants (the layout its assembly reads).
type roundParams32 struct {
	inverse, nearHalf, levels, negLevels, scale float32
}

// nearHalf32: roundF32AVX2 leaves to the scalar loop a product whose
// fraction lies within 2⁻¹¹ of one half (its float32 product is within
// 2⁻¹⁶ of the scalar loop's float64 one).
const nearHalf32 = 0.5 - 0x1p-11

// roundVec is the loop of roundBlock (residual false) or of compressBlock's
// second pass (residual true: x is corrected, and loses scale·value) over
// whole groups of eight; a group with a product next to a half goes to
// the scalar loop, which divides there, and the kernel goes on after it.
// The products are rounded in float32, eight at a time, where the
// inverse of the scale is a normal float32 far from the range's ends;
// blocks of a scale beyond 2^±100 (magnitudes near 10⁻²⁸ or 10³²) are
// left to the scalar loop.
func roundVec(values []int8, x []float32, scale float32, levels int, residual bool) int {
	inverse := 1 / float64(scale)
	if !vectorized || inverse < 0x1p-100 || inverse > 0x1p100 {
		return 0
	}
	p := roundParams32{inverse: float32(inverse), nearHalf: nearHalf32, levels: float32(levels), negLevels: -float32(levels), scale: scale}
	n := len(x) &^ (lanes - 1)
	for i := 0; i < n; {
		i += roundF32AVX2(values[i:n], x[i:n], &p, residual)
		if i < n { // a group next to a half
			if residual {
				compressRound(values[i:i+lanes], x[i:i+lanes], scale, levels)
			} else {
				roundScalar(values[i:i+lanes], x[i:i+lanes], scale, levels)
			}
			i += lanes
		}
	}
	return n
}

// dequantizeInt8Vec is the int8 decoding loop over whole groups of eight.
func dequantizeInt8Vec(dst []float32, src []byte, scale float32) int {
	done := len(dst) &^ (lanes - 1)
	if !vectorized {
		return 0
	}
	if done > 0 {
		dequantizeInt8AVX2(dst[:done], src[:done], scale)
	}
	return done
}

// The modes of sums4Vec.
const (
	sumSquares4   = 0 // inputs[i][lo+j]²
	sumProducts4  = 1 // inputs[i][lo+j]·with[j]
	sumDistances4 = 2 // (inputs[i][lo+j] − with[j])²
)

// sums4Vec adds to sums the terms of mode for four inputs over whole
// groups of four coordinates, j in [0, n), each sum in coordinate order,
// and returns how many coordinates it did.
func sums4Vec(sums *[4]float64, inputs [][]float32, with []float32, lo, n, mode int) int {
	done := n &^ 3
	if done == 0 || !vectorized || len(inputs) < 4 || (mode != sumSquares4 && len(with) < done) {
		return 0
	}
	for _, in := range inputs[:4] {
		if len(in) < lo+done {
			return 0
		}
	}
	sums4AVX2(sums, inputs[:4], with, lo, done, mode)
	return done
}

// median4Vec is medianOf4 of the four inputs for dst[from:] over whole
// groups of eight, up to the first group with a NaN or a column whose
// middle values are both zero and that holds a −0, and returns how many
// it did. The network's middle values can differ from medianOf4's only
// in the sign of a zero, which shows in the mean only where both are
// zero; without a −0 in the column that mean is +0 (zeroMedian), which
// the network gives too: columns of sparse parts stay in the kernel.
func median4Vec(dst []float32, inputs [][]float32, from int) int {
	n := (len(dst) - from) &^ (lanes - 1)
	if n <= 0 || len(inputs) != 4 || !vectorized {
		return 0
	}
	return median4AVX2(dst[from:from+n], inputs, from)
}

// median8Vec is median4Vec for eight inputs (medianOf8).
func median8Vec(dst []float32, inputs [][]float32, from int) int {
	n := (len(dst) - from) &^ (lanes - 1)
	if n <= 0 || len(inputs) != 8 || !vectorized {
		return 0
	}
	return median8AVX2(dst[from:from+n], inputs, from)
}

// medianNetVec is the median of 3 to maxNetInputs inputs for dst[from:]
// over whole groups of eight, up to the first group it leaves to the
// scalar loop (see medianNetAVX2), by Batcher's odd–even merge sort.
func medianNetVec(dst []float32, inputs [][]float32, from int, scratch *[maxNetInputs * lanes]float32) int {
	k := len(inputs)
	n := (len(dst) - from) &^ (lanes - 1)
	if n <= 0 || k < 3 || k > maxNetInputs || !vectorized {
		return 0
	}
	for _, in := range inputs {
		if len(in) < from+n {
			return 0
		}
	}
	return medianNetAVX2(dst[from:from+n], inputs, from, medianNets[k], scratch, k/2, k%2 == 0)
}

// copyInt8Vec copies the int8 values' bytes into dst (as long), 32 at a
// time, and returns how many it copied.
func copyInt8Vec(dst []byte, src []int8) int {
	done := len(src) &^ 31
	if !vectorized {
		return 0
	}
	if done > 0 {
		copyInt8AVX2(dst[:done], src[:done])
	}
	return done
}

// dequantizeInt8sVec is dequantizeInt8Vec for values held as []int8.
func dequantizeInt8sVec(dst []float32, src []int8, scale float32) int {
	done := len(dst) &^ (lanes - 1)
	if !vectorized {
		return 0
	}
	if done > 0 {
		dequantizeInt8sAVX2(dst[:done], src[:done], scale)
	}
	return done
}

// subtractVec sets dst = a − b over whole groups of eight up to the first
// group with a difference that is not finite, and returns how many it did.
func subtractVec(dst, a, b []float32) int {
	n := len(dst) &^ (lanes - 1)
	if n == 0 || !vectorized || len(a) < n || len(b) < n {
		return 0
	}
	return subtractAVX2(dst[:n], a[:n], b[:n])
}

//go:noescape
func dequantizeInt4AVX2(dst []float32, src []byte, scale float32)

//go:noescape
func checkInt4AVX2(values []byte) int

//go:noescape
func encodeInt4AVX2(dst []byte, values []int8)

// dequantizeInt4Vec is dequantizeInt4's loop over whole groups of eight
// elements from an even first one (a block that starts in a high nibble
// is left to the scalar loop), reading src from its first byte.
func dequantizeInt4Vec(dst []float32, src []byte, scale float32) int {
	done := len(dst) &^ (lanes - 1)
	if !vectorized {
		return 0
	}
	if done > 0 {
		dequantizeInt4AVX2(dst[:done], src[:done/2], scale)
	}
	return done
}

// checkInt4Vec returns how many bytes of values, in groups of 32, come
// before the first group with the nibble 0x8, for checkInt4 to go on from.
func checkInt4Vec(values []byte) int {
	if !vectorized || len(values) < 32 {
		return 0
	}
	return checkInt4AVX2(values)
}

// encodeInt4Vec packs values into dst as EncodeInt4 does, 32 at a time,
// and returns how many values it packed.
func encodeInt4Vec(dst []byte, values []int8) int {
	done := len(values) &^ 31
	if !vectorized {
		return 0
	}
	if done > 0 {
		encodeInt4AVX2(dst[:done/2], values[:done])
	}
	return done
}

//go:noescape
func topKMagnitudesAVX2(mag []uint32, corrected, x, carried []float32, guess uint32, passed []byte) (maxBits uint32)

// topKMagnitudesVec is the loop of magnitudes (carried nil) and
// correctedMagnitudes over whole groups of eight: it passes the elements
// at least s.guess to s.pass in element order, and returns how many
// elements it did and their largest magnitude bits.
func topKMagnitudesVec(mag []uint32, corrected, x, carried []float32, s *topKScratch) (done int, maxBits uint32) {
	done = len(x) &^ (lanes - 1)
	if done == 0 || !vectorized {
		return 0, 0
	}
	if carried != nil {
		carried = carried[:done]
	}
	passed := s.passMask(done / lanes)
	maxBits = topKMagnitudesAVX2(mag[:done], corrected[:done], x[:done], carried, s.guess, passed)
	// Eight groups' masks, read as one little-endian word, are the mask
	// of their 64 elements in element order.
	g := 0
	for ; g+8 <= len(passed); g += 8 {
		for w := binary.LittleEndian.Uint64(passed[g:]); w != 0; w &= w - 1 {
			i := g*lanes + bits.TrailingZeros64(w)
			s.pass(i, mag[i])
		}
	}
	for ; g < len(passed); g++ {
		for b := passed[g]; b != 0; b &= b - 1 {
			i := g*lanes + bits.TrailingZeros8(b)
			s.pass(i, mag[i])
		}
	}
	return done, maxBits
}
