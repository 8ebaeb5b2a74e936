package train

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
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

// refBitReader reads codes of width bits, least significant first; the
// caller has checked that src holds them all.
type refBitReader struct {
	src           []byte
	acc, mask     uint64
	filled, width uint
}

func (r *refBitReader) next() int {
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

// refEncodeTopK appends the wire form of q, which must come from a top-k
// codec's compressor (k' odd values per block with a non-zero scale, none
// in a block with scale 0, scales that are bfloat16 values).
func refEncodeTopK(dst []byte, q Quantized) []byte {
	k, bits := q.Codec.TopK()
	if k == 0 {
		panic(fmt.Sprintf("train: refEncodeTopK of a %s vector", q.Codec))
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
	indices, codes := dst[body:body+indexBytes], dst[body+indexBytes:]
	levels := int8(topKLevels(bits))
	var acc uint64
	filled := 0
	for b, s := range q.Scales {
		lo := b * bs
		block := q.Values[lo:min(lo+bs, n)]
		want := 0
		if s != 0 {
			want = min(k, len(block))
		}
		size, bitmap := topKIndexBytes(len(block), k, bs)
		if want > 0 && size == 0 { // every element kept: codes only
			for i, v := range block {
				if v == 0 {
					panic(fmt.Sprintf("train: top-k block %d keeps %d values, want %d", b, i, want))
				}
				acc |= uint64((v+levels)/2) << filled
				filled += bits
				if filled >= 8 {
					codes[0] = byte(acc)
					codes = codes[1:]
					acc >>= 8
					filled -= 8
				}
			}
			continue
		}
		count := 0
		for base := 0; base < len(block); base += 8 {
			w := block[base:min(base+8, len(block))]
			if len(w) == 8 && w[0]|w[1]|w[2]|w[3]|w[4]|w[5]|w[6]|w[7] == 0 {
				continue // eight at a time through a sparse block's zeros
			}
			for j, v := range w {
				if v == 0 {
					continue
				}
				if count < want {
					i := base + j
					switch {
					case size == 0: // every element kept: no indices
					case bitmap:
						indices[i/8] |= 1 << (i % 8)
					case bs > 256:
						binary.LittleEndian.PutUint16(indices[2*count:], uint16(i))
					default:
						indices[count] = byte(i)
					}
					acc |= uint64((v+levels)/2) << filled
					filled += bits
					if filled >= 8 {
						codes[0] = byte(acc)
						codes = codes[1:]
						acc >>= 8
						filled -= 8
					}
				}
				count++
			}
		}
		if count != want {
			panic(fmt.Sprintf("train: top-k block %d keeps %d values, want %d", b, count, want))
		}
		if want > 0 {
			indices = indices[size:]
		}
	}
	if filled > 0 {
		codes[0] = byte(acc)
	}
	return dst
}

// refDecodeTopK reads and decodes the body of a top-k vector of n elements
// (everything after the codec and length). It checks the whole layout
// against the declared length before it allocates the n decoded values,
// and refuses any second encoding of a vector.
func refDecodeTopK(codec Codec, n int, body []byte) ([]float32, error) {
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
	out := make([]float32, n)
	levels := topKLevels(valueBits)
	var grid [1 << MaxTopKBits]float32 // code → value in the current block
	mask := uint64(1)<<valueBits - 1
	codeReader := refBitReader{src: codes, width: uint(valueBits), mask: mask}
	for b := range nb {
		s := binary.LittleEndian.Uint16(scales[2*b:])
		if s == 0 {
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
		if size == 0 {
			for i := range block {
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
