package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// This file keeps the codec and combine rules exactly as they were before
// they were made fast (commit 3bfd925), so tests can check that the fast
// versions give the same bits: workers that run different versions must
// still agree on every hash.

func refQuantize(x []float32, blockSize int, codec Codec) (Quantized, error) {
	if !codec.Quantizes() {
		return Quantized{}, fmt.Errorf("train: codec %s does not quantize", codec)
	}
	if blockSize <= 0 || blockSize > MaxBlockSize {
		return Quantized{}, fmt.Errorf("train: block size %d outside 1..%d", blockSize, MaxBlockSize)
	}
	levels := float64(codec.levels())
	nb := NumBlocks(len(x), blockSize)
	q := Quantized{Codec: codec, BlockSize: blockSize, Scales: make([]float32, nb), Values: make([]int8, len(x))}
	for b := 0; b < nb; b++ {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(x))
		var maxAbs float64
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Quantized{}, fmt.Errorf("%w at element %d", ErrNonFinite, i)
			}
			maxAbs = max(maxAbs, math.Abs(v))
		}
		scale := float32(maxAbs / levels)
		q.Scales[b] = scale
		if scale == 0 {
			continue
		}
		for i := lo; i < hi; i++ {
			r := math.Round(float64(x[i]) / float64(scale))
			q.Values[i] = int8(max(-levels, min(levels, r)))
		}
	}
	return q, nil
}

func refDequantize(q Quantized, dst []float32) error {
	if len(dst) != len(q.Values) {
		return fmt.Errorf("train: dequantize into %d elements, have %d", len(dst), len(q.Values))
	}
	if q.BlockSize <= 0 || len(q.Scales) != NumBlocks(len(q.Values), q.BlockSize) {
		return fmt.Errorf("train: bad quantized vector")
	}
	for i, v := range q.Values {
		dst[i] = q.Scales[i/q.BlockSize] * float32(v)
	}
	return nil
}

// refCompress is ErrorFeedback.Compress as it was, on an explicit residual.
func refCompress(residual *[]float32, codec Codec, x []float32, blockSize int) (Quantized, error) {
	if *residual != nil && len(*residual) != len(x) {
		return Quantized{}, fmt.Errorf("train: error feedback holds %d elements, got %d", len(*residual), len(x))
	}
	corrected := make([]float32, len(x))
	copy(corrected, x)
	for i, r := range *residual {
		corrected[i] += r
	}
	if codec == 0 {
		codec = CodecInt8
	}
	q, err := refQuantize(corrected, blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	sent := make([]float32, len(x))
	if err := refDequantize(q, sent); err != nil {
		return Quantized{}, err
	}
	for i := range corrected {
		corrected[i] -= sent[i]
	}
	*residual = corrected
	return q, nil
}

func refEncodeInt8(dst []byte, q Quantized) []byte {
	dst = append(dst, byte(CodecInt8))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(q.Values)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(q.BlockSize))
	for _, s := range q.Scales {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(s))
	}
	for _, v := range q.Values {
		dst = append(dst, byte(v))
	}
	return dst
}

func refEncodeInt4(dst []byte, q Quantized) []byte {
	dst = append(dst, byte(CodecInt4))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(q.Values)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(q.BlockSize))
	for _, s := range q.Scales {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(s))
	}
	nibble := func(v int8) byte { return byte(max(-int4Levels, min(int4Levels, v))) & 0x0f }
	for i := 0; i < len(q.Values); i += 2 {
		b := nibble(q.Values[i])
		if i+1 < len(q.Values) {
			b |= nibble(q.Values[i+1]) << 4
		}
		dst = append(dst, b)
	}
	return dst
}

func refEncodeFloat32(dst []byte, x []float32) []byte {
	dst = append(dst, byte(CodecFloat32))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(x)))
	for _, v := range x {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

func refDecodeVector(b []byte, wantLen int) ([]float32, error) {
	if len(b) < vectorHeader {
		return nil, fmt.Errorf("short")
	}
	codec := Codec(b[0])
	n := int(binary.LittleEndian.Uint32(b[1:5]))
	if n != wantLen {
		return nil, fmt.Errorf("train: vector has %d elements, want %d", n, wantLen)
	}
	body := b[vectorHeader:]
	out := make([]float32, n)
	switch codec {
	case CodecFloat32:
		if len(body) != 4*n {
			return nil, fmt.Errorf("length")
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
			if !finite32(out[i]) {
				return nil, fmt.Errorf("%w at element %d", ErrNonFinite, i)
			}
		}
		return out, nil
	case CodecInt8, CodecInt4:
		q, err := refDecodeQuantized(codec, n, body)
		if err != nil {
			return nil, err
		}
		if err := refDequantize(q, out); err != nil {
			return nil, err
		}
		for i, v := range out {
			if !finite32(v) {
				return nil, fmt.Errorf("%w at element %d", ErrNonFinite, i)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("train: unknown codec %d", b[0])
}

func refDecodeQuantized(codec Codec, n int, body []byte) (Quantized, error) {
	if len(body) < 4 {
		return Quantized{}, fmt.Errorf("no block size")
	}
	bs := int(binary.LittleEndian.Uint32(body))
	if bs <= 0 || bs > MaxBlockSize {
		return Quantized{}, fmt.Errorf("block size")
	}
	body = body[4:]
	nb := NumBlocks(n, bs)
	valueBytes := n
	if codec == CodecInt4 {
		valueBytes = (n + 1) / 2
	}
	if len(body) != 4*nb+valueBytes {
		return Quantized{}, fmt.Errorf("length")
	}
	q := Quantized{Codec: codec, BlockSize: bs, Scales: make([]float32, nb), Values: make([]int8, n)}
	for i := range q.Scales {
		s := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		if !finite32(s) || s < 0 {
			return Quantized{}, fmt.Errorf("scale")
		}
		q.Scales[i] = s
	}
	values := body[4*nb:]
	if codec == CodecInt8 {
		for i, v := range values {
			q.Values[i] = int8(v)
		}
		return q, nil
	}
	for i := range q.Values {
		nib := values[i/2] >> (4 * (i % 2)) & 0x0f
		if nib == 0x08 {
			return Quantized{}, fmt.Errorf("-8")
		}
		q.Values[i] = int8(nib<<4) >> 4
	}
	if n%2 == 1 && values[n/2]>>4 != 0 {
		return Quantized{}, errors.New("padding")
	}
	return q, nil
}

func refMean(dst []float32, inputs [][]float32) error {
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	k := float64(len(inputs))
	for i := range dst {
		var sum float64
		for _, in := range inputs {
			sum += float64(in[i])
		}
		dst[i] = float32(sum / k)
	}
	return nil
}

func refMedian(dst []float32, inputs [][]float32) error {
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	k := len(inputs)
	column := make([]float32, k)
	for i := range dst {
		for j, in := range inputs {
			column[j] = in[i]
		}
		slices.Sort(column)
		if k%2 == 1 {
			dst[i] = column[k/2]
		} else {
			dst[i] = float32((float64(column[k/2-1]) + float64(column[k/2])) / 2)
		}
	}
	return nil
}

func refTrimmedMean(t TrimmedMean, dst []float32, inputs [][]float32) error {
	if err := t.validate(); err != nil {
		return err
	}
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	k := len(inputs)
	trim := int(math.Floor(t.Fraction * float64(k)))
	if k-2*trim <= 0 {
		return refMedian(dst, inputs)
	}
	column := make([]float32, k)
	for i := range dst {
		for j, in := range inputs {
			column[j] = in[i]
		}
		slices.Sort(column)
		var sum float64
		for _, v := range column[trim : k-trim] {
			sum += float64(v)
		}
		dst[i] = float32(sum / float64(k-2*trim))
	}
	return nil
}

func refCenteredClip(c CenteredClip, dst []float32, inputs [][]float32) error {
	if err := refMedian(dst, inputs); err != nil {
		return err
	}
	iterations := c.Iterations
	if iterations <= 0 {
		iterations = 3
	}
	k := len(inputs)
	dists := make([]float64, k)
	step := make([]float64, len(dst))
	for range iterations {
		for i, in := range inputs {
			var d float64
			for j, v := range in {
				diff := float64(v) - float64(dst[j])
				d += diff * diff
			}
			dists[i] = math.Sqrt(d)
		}
		tau := median(dists)
		if tau == 0 {
			return nil
		}
		clear(step)
		for i, in := range inputs {
			scale := 1.0
			if dists[i] > tau {
				scale = tau / dists[i]
			}
			for j, v := range in {
				step[j] += scale * (float64(v) - float64(dst[j]))
			}
		}
		for j := range dst {
			dst[j] = float32(float64(dst[j]) + step[j]/float64(k))
		}
	}
	return nil
}

func refDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func refNorm2(a []float32) float64 { return math.Sqrt(refDot(a, a)) }

func refScreenApply(s Screen, inputs [][]float32) []DropReason {
	verdict := make([]DropReason, len(inputs))
	minInputs := s.MinInputs
	if minInputs == 0 {
		minInputs = 3
	}
	if !s.Enabled() || len(inputs) < minInputs || len(inputs[0]) == 0 {
		return verdict
	}
	norms := make([]float64, len(inputs))
	for i, in := range inputs {
		norms[i] = refNorm2(in)
	}
	medianNorm := median(norms)
	var center []float32
	if s.Direction {
		center = make([]float32, len(inputs[0]))
		_ = refMedian(center, inputs) // lengths checked by the caller
	}
	centerNorm := refNorm2(center)
	cosines := make([]float64, len(inputs))
	for i, in := range inputs {
		if center != nil && centerNorm > 0 && norms[i] > 0 {
			cosines[i] = refDot(in, center) / (norms[i] * centerNorm)
		}
	}
	minCosine := min(s.MinCosine, median(cosines)-s.Margin)
	for i := range inputs {
		switch {
		case s.MaxNormRatio > 0 && norms[i] > s.MaxNormRatio*medianNorm:
			verdict[i] = DropNormHigh
		case s.MinNormRatio > 0 && norms[i] < s.MinNormRatio*medianNorm:
			verdict[i] = DropNormLow
		case center != nil && centerNorm > 0 && norms[i] > 0 && cosines[i] < minCosine:
			verdict[i] = DropDirection
		}
	}
	return verdict
}
