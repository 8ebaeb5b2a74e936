package train

import (
	"fmt"
	"math"
	"slices"
)

// The top-k compressor as it was before it was made fast (commit
// e75d45b), kept so tests can check that the fast one gives the same
// bits: the values a worker sends are hashed and committed to.

const refTopKInsertMax = 32

// refTopKCompress is ErrorFeedback.Compress for a top-k codec as it was,
// on an explicit residual (nil: none carried).
func refTopKCompress(residual *[]float32, codec Codec, x []float32, blockSize int) (Quantized, error) {
	if *residual != nil && len(*residual) != len(x) {
		return Quantized{}, fmt.Errorf("train: error feedback holds %d elements, got %d", len(*residual), len(x))
	}
	q, err := newQuantized(len(x), blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	corrected := make([]float32, len(x))
	k, bits := codec.TopK()
	for b := range q.Scales {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(x))
		var carried []float32
		if *residual != nil {
			carried = (*residual)[lo:hi]
		}
		scale, ok := refCompressTopKBlock(q.Values[lo:hi], corrected[lo:hi], x[lo:hi], carried, k, bits)
		if !ok {
			return Quantized{}, firstNonFinite(corrected[lo:hi], lo)
		}
		q.Scales[b] = scale
	}
	*residual = corrected
	return q, nil
}

// refCompressTopKBlock is compressBlock for a top-k codec: corrected = x +
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
func refCompressTopKBlock(values []int8, corrected, x, carried []float32, k, bits int) (float32, bool) {
	corrected = corrected[:len(x)]
	values = values[:len(x)]
	k = min(k, len(x))
	if carried == nil {
		copy(corrected, x)
	} else {
		carried = carried[:len(x)]
		for i, v := range x {
			corrected[i] = v + carried[i]
		}
	}
	clear(values)
	// kept lists the kept elements in increasing order; nil keeps all.
	var kept []int32
	var maxBits uint32
	var small refTopSmall
	switch {
	case k == len(x):
		maxBits = maxAbsBits(corrected)
	case k <= refTopKInsertMax:
		maxBits = small.scan(corrected, k)
		kept = small.idx[:k]
		slices.Sort(kept)
	default:
		maxBits = maxAbsBits(corrected)
		kept = refTopSorted(corrected, k)
	}
	if maxBits >= 0x7f800000 {
		return 0, false
	}
	if maxBits == 0 { // sent as an empty block: the whole block is carried
		return 0, true
	}
	levels := topKLevels(bits)
	var scale float32
	if bits == 1 {
		var sum float64
		if kept == nil {
			for _, v := range corrected {
				sum += math.Abs(float64(v))
			}
		} else {
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
		for i, v := range corrected {
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

// refTopSmall selects up to refTopKInsertMax largest magnitudes with a sorted
// list of the largest so far: a later element enters only if strictly
// larger than the list's smallest, so among equals the lower index stays.
type refTopSmall struct {
	mag [refTopKInsertMax]uint32
	idx [refTopKInsertMax]int32
}

// scan selects the k largest magnitudes of x into s.idx[:k] and returns
// the bits of the largest magnitude of all.
func (s *refTopSmall) scan(x []float32, k int) uint32 {
	var maxBits, threshold uint32
	n := 0
	for i, v := range x {
		mag := math.Float32bits(v) & 0x7fffffff
		maxBits = max(maxBits, mag)
		if n == k && mag <= threshold {
			continue
		}
		j := n
		if n < k {
			n++
		} else {
			j = k - 1
		}
		for j > 0 && mag > s.mag[j-1] {
			s.mag[j], s.idx[j] = s.mag[j-1], s.idx[j-1]
			j--
		}
		s.mag[j], s.idx[j] = mag, int32(i)
		threshold = s.mag[n-1]
	}
	return maxBits
}

// refTopSorted is refTopSmall for a larger k: it sorts the keys
// magnitude<<32 | ^index, whose order is the selection's, and returns
// the kept indices in increasing order.
func refTopSorted(x []float32, k int) []int32 {
	keys := make([]uint64, len(x))
	for i, v := range x {
		keys[i] = uint64(math.Float32bits(v)&0x7fffffff)<<32 | uint64(^uint32(i))
	}
	slices.Sort(keys)
	kept := make([]int32, k)
	for j, key := range keys[len(keys)-k:] {
		kept[j] = int32(^uint32(key))
	}
	slices.Sort(kept)
	return kept
}
