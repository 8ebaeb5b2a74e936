package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Codec says how a vector travels on the wire.
type Codec uint8

const (
	// CodecInt8 sends one int8 per element and one float32 scale per block.
	CodecInt8 Codec = 1
	// CodecFloat32 sends raw little-endian float32 (the synchronous baseline).
	CodecFloat32 Codec = 2
	// CodecInt4 sends one value in [-7, 7] per element, two per byte, and one
	// float32 scale per block: half the bytes of CodecInt8 at a coarser grid.
	CodecInt4 Codec = 3
)

func (c Codec) String() string {
	switch c {
	case CodecInt8:
		return "int8"
	case CodecFloat32:
		return "float32"
	case CodecInt4:
		return "int4"
	}
	if k, bits := c.TopK(); k > 0 {
		return fmt.Sprintf("topk:%d:%d", k, bits)
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Quantizes reports whether c sends scaled integers (int8, int4 or top-k),
// which call for error feedback, rather than raw floats.
func (c Codec) Quantizes() bool { return c == CodecInt8 || c == CodecInt4 || c.IsTopK() }

// levels is the largest magnitude a quantized value of c takes.
func (c Codec) levels() int {
	if c == CodecInt4 {
		return int4Levels
	}
	return int8Levels
}

// ParseCodec reads "int8", "int4", "float32" or "topk:K:BITS" (the K
// largest magnitudes of every block, BITS bits each; see topk.go).
func ParseCodec(s string) (Codec, error) {
	if strings.HasPrefix(s, "topk") {
		return parseTopK(s)
	}
	switch s {
	case "int8":
		return CodecInt8, nil
	case "int4":
		return CodecInt4, nil
	case "float32", "fp32", "none":
		return CodecFloat32, nil
	}
	return 0, fmt.Errorf("train: unknown codec %q (want int8, int4, float32 or topk:K:BITS)", s)
}

const (
	// DefaultBlockSize is the number of elements sharing one scale: the
	// scale costs 4 bytes per 256, a 1.6% overhead over one byte per element.
	DefaultBlockSize = 256
	// MaxBlockSize bounds the block size a decoder accepts.
	MaxBlockSize = 1 << 16
	// int8Levels is the largest magnitude used; -128 is never produced so
	// the grid is symmetric around zero.
	int8Levels = 127
	// int4Levels is the same for int4: -8 is never produced.
	int4Levels = 7
)

// ErrNonFinite reports a NaN or infinite value where only finite ones make sense.
var ErrNonFinite = errors.New("train: non-finite value")

// Quantized is a vector as small integers with one float32 scale per block
// of BlockSize elements: x[i] ≈ Scales[i/BlockSize] * Values[i]. The last
// block may be short. Values are held one per int8 in memory whatever the
// codec; only the wire form packs int4 two to a byte.
type Quantized struct {
	// Codec is CodecInt8 (values in [-127, 127]), CodecInt4 (values in
	// [-7, 7]) or a top-k codec (k odd values per block, 0 elsewhere; see
	// topk.go); the zero value reads as CodecInt8.
	Codec     Codec
	BlockSize int
	Scales    []float32
	Values    []int8
}

// Len is the number of elements.
func (q Quantized) Len() int { return len(q.Values) }

// NumBlocks returns how many blocks of blockSize cover n elements.
func NumBlocks(n, blockSize int) int {
	if blockSize <= 0 {
		return 0
	}
	return (n + blockSize - 1) / blockSize
}

// Quantize maps x to int8 per block: the scale of a block is its largest
// magnitude divided by 127, and each element is rounded to the nearest
// multiple of the scale, so |x[i] - Dequantize(x)[i]| ≤ scale/2 (plus the
// float32 rounding of scale*value, below 127·2⁻²⁴·scale).
func Quantize(x []float32, blockSize int) (Quantized, error) {
	return quantize(x, blockSize, CodecInt8)
}

// QuantizeInt4 maps x to int4 per block like Quantize, with the scale of a
// block its largest magnitude divided by 7 and values in [-7, 7]; the bound
// |x[i] - Dequantize(x)[i]| ≤ scale/2 (plus below 7·2⁻²⁴·scale) holds with
// that coarser scale.
func QuantizeInt4(x []float32, blockSize int) (Quantized, error) {
	return quantize(x, blockSize, CodecInt4)
}

func quantize(x []float32, blockSize int, codec Codec) (Quantized, error) {
	return quantizeInto(nil, x, blockSize, codec)
}

// quantizeInto is quantize into values when they are len(x) long (int8
// and int4: every value is written), else into new ones.
func quantizeInto(values []int8, x []float32, blockSize int, codec Codec) (Quantized, error) {
	if codec.IsTopK() {
		return quantizeTopK(x, blockSize, codec)
	}
	q, err := newQuantizedInto(values, len(x), blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	levels := codec.levels()
	for b := range q.Scales {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(x))
		scale, ok := quantizeBlock(q.Values[lo:hi], x[lo:hi], levels)
		if !ok {
			return Quantized{}, firstNonFinite(x[lo:hi], lo)
		}
		q.Scales[b] = scale
	}
	return q, nil
}

// newQuantized allocates a quantized vector of n elements.
func newQuantized(n, blockSize int, codec Codec) (Quantized, error) {
	return newQuantizedInto(nil, n, blockSize, codec)
}

// newQuantizedInto is newQuantized with values as its values when they
// are n long (the caller writes every one of them), else new ones.
func newQuantizedInto(values []int8, n, blockSize int, codec Codec) (Quantized, error) {
	if !codec.Quantizes() {
		return Quantized{}, fmt.Errorf("train: codec %s does not quantize", codec)
	}
	if blockSize <= 0 || blockSize > MaxBlockSize {
		return Quantized{}, fmt.Errorf("train: block size %d outside 1..%d", blockSize, MaxBlockSize)
	}
	if len(values) != n {
		values = make([]int8, n)
	}
	return Quantized{Codec: codec, BlockSize: blockSize, Scales: make([]float32, NumBlocks(n, blockSize)), Values: values}, nil
}

// quantizeBlock writes the values of one block and returns its scale, or
// false if the block holds an infinity or a NaN.
//
// The result is bit for bit what the obvious loop gives (the scale is
// float32(maxAbs/levels) in float64, each value math.Round(x/scale) in
// float64, clamped to ±levels): workers hash what they send, so every
// version of this code must agree with every other.
func quantizeBlock(values []int8, block []float32, levels int) (float32, bool) {
	maxBits := maxAbsBits(block)
	if maxBits >= 0x7f800000 { // an exponent of all ones: infinity or NaN
		return 0, false
	}
	// maxAbs is exact in float32; the division stays in float64.
	scale := float32(float64(math.Float32frombits(maxBits)) / float64(levels))
	if scale == 0 {
		clear(values) // an all-zero block (or one of subnormals that round to a zero scale)
	} else {
		roundBlock(values, block, scale, levels)
	}
	return scale, true
}

// maxAbsBits returns the bits of the largest |x[i]|: for IEEE floats
// without the sign bit, the order of the bits as integers is the order
// of the magnitudes, and any value ≥ 0x7f800000 is infinite or NaN.
func maxAbsBits(x []float32) uint32 {
	const magnitude = 0x7fffffff
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		m0 = max(m0, math.Float32bits(x[i])&magnitude)
		m1 = max(m1, math.Float32bits(x[i+1])&magnitude)
		m2 = max(m2, math.Float32bits(x[i+2])&magnitude)
		m3 = max(m3, math.Float32bits(x[i+3])&magnitude)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&magnitude)
	}
	return max(m0, m1, m2, m3)
}

const (
	// roundMagic is 1.5·2⁵²: t + roundMagic - roundMagic rounds t (|t| < 2⁵¹)
	// to the nearest integer, ties to even.
	roundMagic = 0x1.8p52
	// nearHalf: a product x·(1/scale) whose fraction is within 0.5 - nearHalf
	// of one half is redone as the exact quotient. The product and the
	// float64 quotient x/scale both lie within 2⁻⁴³ of the true quotient
	// (below 256 in magnitude), so farther from a half they round alike.
	nearHalf = 0.5 - 0x1p-30
)

// roundBlock sets values[i] = clamp(math.Round(x[i]/scale)) for a
// positive scale. Dividing costs several times a multiplication, so it
// multiplies by the reciprocal and rounds to even, and only where the
// product falls next to a half, where math.Round (ties away from zero)
// and the reciprocal's error can decide, does it divide and call math.Round.
func roundBlock(values []int8, x []float32, scale float32, levels int) {
	values = values[:len(x)]
	start := roundVec(values, x, scale, levels, false)
	roundScalar(values[start:], x[start:], scale, levels)
}

// roundScalar is roundBlock's loop, one element at a time.
func roundScalar(values []int8, x []float32, scale float32, levels int) {
	inverse := 1 / float64(scale)
	values = values[:len(x)]
	for i, v := range x {
		t := float64(float64(v) * inverse)
		r := float64(float64(t+roundMagic) - roundMagic)
		if d := t - r; d > nearHalf || d < -nearHalf {
			r = math.Round(float64(v) / float64(scale))
		}
		values[i] = int8(min(max(int(r), -levels), levels))
	}
}

// Dequantize writes the approximated vector into dst, which must have Len elements.
func (q Quantized) Dequantize(dst []float32) error {
	if len(dst) != len(q.Values) {
		return fmt.Errorf("train: dequantize into %d elements, have %d", len(dst), len(q.Values))
	}
	if err := q.checkBlocks(); err != nil {
		return err
	}
	bs := q.BlockSize
	for b, scale := range q.Scales {
		lo, hi := b*bs, min((b+1)*bs, len(q.Values))
		dequantizeBlock(dst[lo:hi], q.Values[lo:hi], scale)
	}
	return nil
}

// checkBlocks refuses a vector whose scales do not match its values'
// blocks.
func (q Quantized) checkBlocks() error {
	if q.BlockSize <= 0 || len(q.Scales) != NumBlocks(len(q.Values), q.BlockSize) {
		return fmt.Errorf("train: quantized vector has %d scales for %d values in blocks of %d", len(q.Scales), len(q.Values), q.BlockSize)
	}
	return nil
}

// dequantizeBlock writes scale·values into out (of values' length).
func dequantizeBlock(out []float32, values []int8, scale float32) {
	out = out[:len(values)]
	start := dequantizeInt8sVec(out, values, scale)
	for i := start; i < len(values); i++ {
		out[i] = scale * float32(values[i])
	}
}

// Blocks returns the sub-vector made of blocks [from, to); it shares memory with q.
func (q Quantized) Blocks(from, to int) Quantized {
	lo, hi := from*q.BlockSize, min(to*q.BlockSize, len(q.Values))
	if lo > hi {
		lo = hi
	}
	return Quantized{Codec: q.Codec, BlockSize: q.BlockSize, Scales: q.Scales[from:to], Values: q.Values[lo:hi]}
}

// ErrorFeedback compresses a stream of vectors to int8, int4 or top-k while keeping
// what quantization lost and adding it to the next vector, so that over
// many rounds the sum of what was sent tracks the sum of the inputs to
// within one quantization step instead of drifting.
type ErrorFeedback struct {
	// Codec is CodecInt8, CodecInt4 or a top-k codec; the zero value means CodecInt8.
	Codec    Codec
	residual []float32
	// recycle: this value has one owner and no copies (a coordinator's
	// own feedback), so the residual before last can hold the next one
	// instead of a new allocation. spare is that residual.
	recycle bool
	spare   []float32
	// With recycle, the values of the Quantized before last hold the next
	// one's (the caller is done with a result once it compresses twice
	// more; a coordinator encodes its result in the round it compresses).
	lastValues, spareValues []int8
}

// Residual is the error carried to the next call (read-only).
func (e *ErrorFeedback) Residual() []float32 { return e.residual }

// Reset forgets the carried error (after a worker re-synchronizes, its old
// error belongs to an update that no longer exists).
func (e *ErrorFeedback) Reset() { e.residual = nil }

// Compress quantizes x plus the carried error and keeps the new error. x is
// not modified. The error is only updated when compression succeeds.
func (e *ErrorFeedback) Compress(x []float32, blockSize int) (Quantized, error) {
	if e.residual != nil && len(e.residual) != len(x) {
		return Quantized{}, fmt.Errorf("train: error feedback holds %d elements, got %d", len(e.residual), len(x))
	}
	codec := e.Codec
	if codec == 0 {
		codec = CodecInt8
	}
	var values []int8 // every block's values are written (or cleared) below
	if e.recycle && len(e.spareValues) == len(x) {
		values = e.spareValues
	}
	q, err := newQuantizedInto(values, len(x), blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	// A new slice every time, unless e recycles: copies of e (the auditor
	// keeps some) must not see each other's residuals change. Every
	// element of corrected is written before it is read.
	var corrected []float32
	if e.recycle && len(e.spare) == len(x) {
		corrected = e.spare
	} else {
		corrected = make([]float32, len(x))
	}
	levels := codec.levels()
	k, bits := codec.TopK()
	var scratch *topKScratch
	if k > 0 {
		scratch = newTopKScratch(min(blockSize, len(x)))
	}
	for b := range q.Scales {
		lo, hi := b*blockSize, min((b+1)*blockSize, len(x))
		var carried []float32
		if e.residual != nil {
			carried = e.residual[lo:hi]
		}
		var scale float32
		var ok bool
		if k > 0 {
			scale, ok = compressTopKBlock(q.Values[lo:hi], corrected[lo:hi], x[lo:hi], carried, k, bits, scratch)
		} else {
			scale, ok = compressBlock(q.Values[lo:hi], corrected[lo:hi], x[lo:hi], carried, levels)
		}
		if !ok {
			return Quantized{}, firstNonFinite(corrected[lo:hi], lo)
		}
		q.Scales[b] = scale
	}
	if e.recycle {
		e.spare = e.residual
		e.spareValues, e.lastValues = e.lastValues, q.Values
	}
	e.residual = corrected
	return q, nil
}

// compressBlock is quantizeBlock for error feedback, in two passes over a
// block while it is in cache: corrected = x + carried (carried may be
// nil) with its largest magnitude, then the values and, in corrected,
// what they lose: corrected - scale·value, each product rounded to
// float32 first as when it was stored in a dequantized copy.
func compressBlock(values []int8, corrected, x, carried []float32, levels int) (float32, bool) {
	corrected = corrected[:len(x)]
	var maxBits uint32
	if carried == nil {
		copy(corrected, x)
		maxBits = maxAbsBits(corrected)
	} else {
		carried = carried[:len(x)]
		var start int
		start, maxBits, _, _ = signMagnitudesVec(corrected, x, carried)
		for i := start; i < len(x); i++ {
			c := x[i] + carried[i]
			corrected[i] = c
			maxBits = max(maxBits, math.Float32bits(c)&0x7fffffff)
		}
	}
	if maxBits >= 0x7f800000 {
		return 0, false
	}
	scale := float32(float64(math.Float32frombits(maxBits)) / float64(levels))
	values = values[:len(x)]
	if scale == 0 { // sent as zeros: the whole block is carried
		clear(values)
		return 0, true
	}
	start := roundVec(values, corrected, scale, levels, true)
	compressRound(values[start:], corrected[start:], scale, levels)
	return scale, true
}

// compressRound is compressBlock's second pass, one element at a time.
func compressRound(values []int8, corrected []float32, scale float32, levels int) {
	inverse := 1 / float64(scale)
	values = values[:len(corrected)]
	for i, v := range corrected {
		t := float64(float64(v) * inverse)
		r := float64(float64(t+roundMagic) - roundMagic)
		if d := t - r; d > nearHalf || d < -nearHalf {
			r = math.Round(float64(v) / float64(scale))
		}
		value := int8(min(max(int(r), -levels), levels))
		values[i] = value
		corrected[i] = v - float32(scale*float32(value)) // float32(): no fused multiply-add
	}
}

// Wire format of an encoded vector (all little-endian):
//
//	int8:    codec(1)=1 | n uint32 | blockSize uint32 | scales [nb]float32 | values [n]int8
//	float32: codec(1)=2 | n uint32 | values [n]float32
//	int4:    codec(1)=3 | n uint32 | blockSize uint32 | scales [nb]float32 | values [(n+1)/2]byte
//	top-k:   codec(1)=0x80|(bits-2)<<5|(k-1) | n uint32 | blockSize uint32 | ... (see topk.go)
//
// An int4 byte holds element 2i in its low nibble and element 2i+1 in its
// high nibble; a nibble is the value in 4-bit two's complement (-7 = 0x9,
// -1 = 0xF, 7 = 0x7). The nibble 0x8 (-8) is never written and refused,
// and with odd n the last byte's high nibble is 0, so every vector has
// exactly one encoding.
const vectorHeader = 1 + 4

// EncodeQuantized appends the wire form of q in q's codec to dst.
func EncodeQuantized(dst []byte, q Quantized) []byte {
	if q.Codec.IsTopK() {
		return EncodeTopK(dst, q)
	}
	if q.Codec == CodecInt4 {
		return EncodeInt4(dst, q)
	}
	return EncodeInt8(dst, q)
}

// EncodeInt8 appends the int8 wire form of q to dst; an int4 q fits as it is.
func EncodeInt8(dst []byte, q Quantized) []byte {
	dst, out := appendQuantizedHeader(dst, CodecInt8, q, len(q.Values))
	start := copyInt8Vec(out, q.Values)
	for i := start; i < len(q.Values); i++ {
		out[i] = byte(q.Values[i])
	}
	return dst
}

// EncodeInt4 appends the int4 wire form of q to dst. Values outside
// [-7, 7] (q from Quantize rather than QuantizeInt4) are clamped to it, so
// the result always decodes; such a q should be requantized instead.
func EncodeInt4(dst []byte, q Quantized) []byte {
	n := len(q.Values)
	dst, out := appendQuantizedHeader(dst, CodecInt4, q, (n+1)/2)
	nibble := func(v int8) byte { return byte(max(-int4Levels, min(int4Levels, v))) & 0x0f }
	pairs := q.Values[:n/2*2]
	out = out[:len(pairs)/2]
	for i := encodeInt4Vec(out, pairs) / 2; i < len(out); i++ {
		out[i] = nibble(pairs[2*i]) | nibble(pairs[2*i+1])<<4
	}
	if n%2 == 1 {
		dst[len(dst)-1] = nibble(q.Values[n-1])
	}
	return dst
}

// appendQuantizedHeader appends q's codec, length, block size and scales
// to dst, and room for valueBytes more, which it returns to be filled.
func appendQuantizedHeader(dst []byte, codec Codec, q Quantized, valueBytes int) ([]byte, []byte) {
	dst = slices.Grow(dst, vectorHeader+4+4*len(q.Scales)+valueBytes)
	dst = append(dst, byte(codec))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(q.Values)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(q.BlockSize))
	dst = appendFloats(dst, q.Scales)
	start := len(dst)
	dst = dst[:start+valueBytes]
	return dst, dst[start:]
}

// EncodeFloat32 appends the wire form of x, uncompressed, to dst.
func EncodeFloat32(dst []byte, x []float32) []byte {
	dst = append(dst, byte(CodecFloat32))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(x)))
	return appendFloats(dst, x)
}

func appendFloats(dst []byte, x []float32) []byte {
	start := len(dst)
	dst = slices.Grow(dst, 4*len(x))[:start+4*len(x)]
	out := dst[start:]
	for i, v := range x {
		binary.LittleEndian.PutUint32(out[4*i:4*i+4], math.Float32bits(v))
	}
	return dst
}

// DecodeVector decodes an encoded vector of exactly wantLen elements and
// returns its values. It refuses non-finite values, a wrong length and any
// trailing bytes, and never panics.
func DecodeVector(b []byte, wantLen int) ([]float32, error) { return decodeVector(b, wantLen, nil) }

// decodeVector is DecodeVector into out (of wantLen elements, every one
// written: what the encoding leaves out is zeroed) or, when out is nil,
// into a new slice allocated only once the layout checked out. On an
// error out holds anything.
func decodeVector(b []byte, wantLen int, out []float32) ([]float32, error) {
	if len(b) < vectorHeader {
		return nil, fmt.Errorf("train: vector of %d bytes is shorter than its header", len(b))
	}
	codec := Codec(b[0])
	n := int(binary.LittleEndian.Uint32(b[1:5]))
	if n != wantLen {
		return nil, fmt.Errorf("train: vector has %d elements, want %d", n, wantLen)
	}
	if out != nil && len(out) != n {
		return nil, fmt.Errorf("train: decoding %d elements into %d", n, len(out))
	}
	body := b[vectorHeader:]
	switch codec {
	case CodecFloat32:
		if len(body) != 4*n {
			return nil, fmt.Errorf("train: float32 vector of %d elements has %d bytes", n, len(body))
		}
		if out == nil {
			out = make([]float32, n)
		}
		var maxBits uint32
		for i := range out {
			bits := binary.LittleEndian.Uint32(body[4*i : 4*i+4])
			out[i] = math.Float32frombits(bits)
			maxBits = max(maxBits, bits&0x7fffffff)
		}
		if maxBits >= 0x7f800000 {
			return nil, firstNonFinite(out, 0)
		}
		return out, nil
	case CodecInt8, CodecInt4:
		return decodeQuantized(codec, n, body, out)
	}
	if codec.IsTopK() {
		return decodeTopK(codec, n, body, out)
	}
	return nil, fmt.Errorf("train: unknown codec %d", b[0])
}

// firstNonFinite is the error for the first non-finite element of x,
// which starts at element offset of the vector.
func firstNonFinite(x []float32, offset int) error {
	for i, v := range x {
		if !finite32(v) {
			return fmt.Errorf("%w at element %d", ErrNonFinite, offset+i)
		}
	}
	return nil
}

func finite32(v float32) bool {
	return math.Float32bits(v)&0x7f800000 != 0x7f800000
}

// finite64 is finite32 for a float64: neither infinite nor NaN.
func finite64(v float64) bool {
	return math.Float64bits(v)&0x7ff0000000000000 != 0x7ff0000000000000
}

// int4Values maps a nibble to its value, -8 (refused) included.
var int4Values = [16]float32{0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1}

// readBlockSize reads the block size that opens a blocked vector's body
// (int8, int4, top-k) and returns the rest of the body.
func readBlockSize(codec Codec, body []byte) (int, []byte, error) {
	if len(body) < 4 {
		return 0, nil, fmt.Errorf("train: %s vector lacks its block size", codec)
	}
	bs := int(binary.LittleEndian.Uint32(body))
	if bs <= 0 || bs > MaxBlockSize {
		return 0, nil, fmt.Errorf("train: block size %d outside 1..%d", bs, MaxBlockSize)
	}
	return bs, body[4:], nil
}

// decodeQuantized reads and dequantizes the body of an int8 or int4
// vector of n elements (everything after the codec and length). It checks
// everything in the order the checks were first written (scales, then
// int4 values and padding, then overflow), so the first error is the same.
func decodeQuantized(codec Codec, n int, body []byte, out []float32) ([]float32, error) {
	bs, body, err := readBlockSize(codec, body)
	if err != nil {
		return nil, err
	}
	nb := NumBlocks(n, bs)
	valueBytes := n
	if codec == CodecInt4 {
		valueBytes = (n + 1) / 2
	}
	if len(body) != 4*nb+valueBytes {
		return nil, fmt.Errorf("train: %s vector of %d elements in blocks of %d has %d bytes, want %d", codec, n, bs, len(body), 4*nb+valueBytes)
	}
	scales := make([]float32, nb)
	for i := range scales {
		s := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i : 4*i+4]))
		if !finite32(s) || s < 0 {
			return nil, fmt.Errorf("train: bad scale %v in block %d", s, i)
		}
		scales[i] = s
	}
	values := body[4*nb:]
	if codec == CodecInt4 {
		if err := checkInt4(values, n); err != nil {
			return nil, err
		}
	}
	if out == nil {
		out = make([]float32, n) // every element is written below
	}
	for blk, scale := range scales {
		lo, hi := blk*bs, min((blk+1)*bs, n)
		block := out[lo:hi]
		if codec == CodecInt8 {
			in := values[lo:hi]
			block = block[:len(in)]
			start := dequantizeInt8Vec(block, in, scale)
			for i := start; i < len(in); i++ {
				block[i] = scale * float32(int8(in[i]))
			}
		} else {
			dequantizeInt4(block, values, lo, scale)
		}
		// No element exceeds 128 in magnitude; a huge scale can still
		// overflow float32.
		if !finite32(scale * 128) {
			if err := firstNonFinite(block, lo); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// checkInt4 refuses the nibble 0x8 (-8) among n packed values and a
// non-zero padding nibble.
func checkInt4(values []byte, n int) error {
	from := checkInt4Vec(values[:n/2])
	for i, v := range values[from : n/2] {
		i += from
		if v&0x0f == 0x08 || v>>4 == 0x08 {
			if v&0x0f == 0x08 {
				return fmt.Errorf("train: int4 value -8 at element %d (the grid is -7..7)", 2*i)
			}
			return fmt.Errorf("train: int4 value -8 at element %d (the grid is -7..7)", 2*i+1)
		}
	}
	if n%2 == 1 {
		last := values[n/2]
		if last&0x0f == 0x08 {
			return fmt.Errorf("train: int4 value -8 at element %d (the grid is -7..7)", n-1)
		}
		if last>>4 != 0 {
			return errors.New("train: int4 vector has a non-zero padding nibble")
		}
	}
	return nil
}

// dequantizeInt4 writes the int4 elements first, first+1, ... of the
// packed values, times scale, into block.
func dequantizeInt4(block []float32, values []byte, first int, scale float32) {
	i := 0
	if first%2 == 1 && len(block) > 0 { // a block that starts in a high nibble
		block[0] = scale * int4Values[values[first/2]>>4]
		i = 1
	}
	pairs := values[(first+i)/2:]
	done := dequantizeInt4Vec(block[i:], pairs, scale)
	i, pairs = i+done, pairs[done/2:]
	for ; i+1 < len(block); i += 2 {
		v := pairs[0]
		pairs = pairs[1:]
		block[i] = scale * int4Values[v&0x0f]
		block[i+1] = scale * int4Values[v>>4]
	}
	if i < len(block) {
		block[i] = scale * int4Values[pairs[0]&0x0f]
	}
}
