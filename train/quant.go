package train

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Quantizes reports whether c sends scaled integers (int8 or int4), which
// call for error feedback, rather than raw floats.
func (c Codec) Quantizes() bool { return c == CodecInt8 || c == CodecInt4 }

// levels is the largest magnitude a quantized value of c takes.
func (c Codec) levels() int {
	if c == CodecInt4 {
		return int4Levels
	}
	return int8Levels
}

// ParseCodec reads "int8", "int4" or "float32".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "int8":
		return CodecInt8, nil
	case "int4":
		return CodecInt4, nil
	case "float32", "fp32", "none":
		return CodecFloat32, nil
	}
	return 0, fmt.Errorf("train: unknown codec %q (want int8, int4 or float32)", s)
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
	// Codec is CodecInt8 (values in [-127, 127]) or CodecInt4 (values in
	// [-7, 7]); the zero value reads as CodecInt8.
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
			continue // an all-zero block (or one of subnormals that round to a zero scale)
		}
		for i := lo; i < hi; i++ {
			r := math.Round(float64(x[i]) / float64(scale))
			q.Values[i] = int8(max(-levels, min(levels, r)))
		}
	}
	return q, nil
}

// Dequantize writes the approximated vector into dst, which must have Len elements.
func (q Quantized) Dequantize(dst []float32) error {
	if len(dst) != len(q.Values) {
		return fmt.Errorf("train: dequantize into %d elements, have %d", len(dst), len(q.Values))
	}
	if q.BlockSize <= 0 || len(q.Scales) != NumBlocks(len(q.Values), q.BlockSize) {
		return fmt.Errorf("train: quantized vector has %d scales for %d values in blocks of %d", len(q.Scales), len(q.Values), q.BlockSize)
	}
	for i, v := range q.Values {
		dst[i] = q.Scales[i/q.BlockSize] * float32(v)
	}
	return nil
}

// Blocks returns the sub-vector made of blocks [from, to); it shares memory with q.
func (q Quantized) Blocks(from, to int) Quantized {
	lo, hi := from*q.BlockSize, min(to*q.BlockSize, len(q.Values))
	if lo > hi {
		lo = hi
	}
	return Quantized{Codec: q.Codec, BlockSize: q.BlockSize, Scales: q.Scales[from:to], Values: q.Values[lo:hi]}
}

// ErrorFeedback compresses a stream of vectors to int8 or int4 while keeping
// what quantization lost and adding it to the next vector, so that over
// many rounds the sum of what was sent tracks the sum of the inputs to
// within one quantization step instead of drifting.
type ErrorFeedback struct {
	// Codec is CodecInt8 or CodecInt4; the zero value means CodecInt8.
	Codec    Codec
	residual []float32
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
	corrected := make([]float32, len(x))
	copy(corrected, x)
	for i, r := range e.residual {
		corrected[i] += r
	}
	codec := e.Codec
	if codec == 0 {
		codec = CodecInt8
	}
	q, err := quantize(corrected, blockSize, codec)
	if err != nil {
		return Quantized{}, err
	}
	sent := make([]float32, len(x))
	if err := q.Dequantize(sent); err != nil {
		return Quantized{}, err
	}
	for i := range corrected {
		corrected[i] -= sent[i]
	}
	e.residual = corrected
	return q, nil
}

// Wire format of an encoded vector (all little-endian):
//
//	int8:    codec(1)=1 | n uint32 | blockSize uint32 | scales [nb]float32 | values [n]int8
//	float32: codec(1)=2 | n uint32 | values [n]float32
//	int4:    codec(1)=3 | n uint32 | blockSize uint32 | scales [nb]float32 | values [(n+1)/2]byte
//
// An int4 byte holds element 2i in its low nibble and element 2i+1 in its
// high nibble; a nibble is the value in 4-bit two's complement (-7 = 0x9,
// -1 = 0xF, 7 = 0x7). The nibble 0x8 (-8) is never written and refused,
// and with odd n the last byte's high nibble is 0, so every vector has
// exactly one encoding.
const vectorHeader = 1 + 4

// EncodeQuantized appends the wire form of q in q's codec to dst.
func EncodeQuantized(dst []byte, q Quantized) []byte {
	if q.Codec == CodecInt4 {
		return EncodeInt4(dst, q)
	}
	return EncodeInt8(dst, q)
}

// EncodeInt8 appends the int8 wire form of q to dst; an int4 q fits as it is.
func EncodeInt8(dst []byte, q Quantized) []byte {
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

// EncodeInt4 appends the int4 wire form of q to dst. Values outside
// [-7, 7] (q from Quantize rather than QuantizeInt4) are clamped to it, so
// the result always decodes; such a q should be requantized instead.
func EncodeInt4(dst []byte, q Quantized) []byte {
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

// EncodeFloat32 appends the wire form of x, uncompressed, to dst.
func EncodeFloat32(dst []byte, x []float32) []byte {
	dst = append(dst, byte(CodecFloat32))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(x)))
	return appendFloats(dst, x)
}

func appendFloats(dst []byte, x []float32) []byte {
	for _, v := range x {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

// DecodeVector decodes an encoded vector of exactly wantLen elements and
// returns its values. It refuses non-finite values, a wrong length and any
// trailing bytes, and never panics.
func DecodeVector(b []byte, wantLen int) ([]float32, error) {
	if len(b) < vectorHeader {
		return nil, fmt.Errorf("train: vector of %d bytes is shorter than its header", len(b))
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
			return nil, fmt.Errorf("train: float32 vector of %d elements has %d bytes", n, len(body))
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
			if !finite32(out[i]) {
				return nil, fmt.Errorf("%w at element %d", ErrNonFinite, i)
			}
		}
		return out, nil
	case CodecInt8, CodecInt4:
		q, err := decodeQuantized(codec, n, body)
		if err != nil {
			return nil, err
		}
		if err := q.Dequantize(out); err != nil {
			return nil, err
		}
		for i, v := range out {
			if !finite32(v) { // a huge scale times 127 can overflow float32
				return nil, fmt.Errorf("%w at element %d", ErrNonFinite, i)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("train: unknown codec %d", b[0])
}

func finite32(v float32) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// decodeQuantized reads the body of an int8 or int4 vector of n elements
// (everything after the codec and length).
func decodeQuantized(codec Codec, n int, body []byte) (Quantized, error) {
	if len(body) < 4 {
		return Quantized{}, fmt.Errorf("train: %s vector lacks its block size", codec)
	}
	bs := int(binary.LittleEndian.Uint32(body))
	if bs <= 0 || bs > MaxBlockSize {
		return Quantized{}, fmt.Errorf("train: block size %d outside 1..%d", bs, MaxBlockSize)
	}
	body = body[4:]
	nb := NumBlocks(n, bs)
	valueBytes := n
	if codec == CodecInt4 {
		valueBytes = (n + 1) / 2
	}
	if len(body) != 4*nb+valueBytes {
		return Quantized{}, fmt.Errorf("train: %s vector of %d elements in blocks of %d has %d bytes, want %d", codec, n, bs, len(body), 4*nb+valueBytes)
	}
	q := Quantized{Codec: codec, BlockSize: bs, Scales: make([]float32, nb), Values: make([]int8, n)}
	for i := range q.Scales {
		s := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		if !finite32(s) || s < 0 {
			return Quantized{}, fmt.Errorf("train: bad scale %v in block %d", s, i)
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
			return Quantized{}, fmt.Errorf("train: int4 value -8 at element %d (the grid is -7..7)", i)
		}
		q.Values[i] = int8(nib<<4) >> 4 // sign-extend the nibble
	}
	if n%2 == 1 && values[n/2]>>4 != 0 {
		return Quantized{}, errors.New("train: int4 vector has a non-zero padding nibble")
	}
	return q, nil
}
