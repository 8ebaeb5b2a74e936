package train

import (
	"fmt"
	"math/rand"
	"testing"
)

// Codec benchmarks on a realistic part: one million float32 (4 MiB) in
// blocks of 256. MB/s counts the float32 bytes a call reads (for a
// combine rule, k inputs of that size); cpu-MB/s divides them by the
// process's CPU time instead of the wall time.
const benchElems = 1 << 20

// cpuLoop runs body b.N times and adds the process's CPU time per call
// and the bytes per CPU second to the report: the throughput per core,
// whatever else shares the machine.
func cpuLoop(b *testing.B, bytes int64, body func()) {
	b.SetBytes(bytes)
	start := processCPU()
	for b.Loop() {
		body()
	}
	cpu := processCPU() - start
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(bytes)*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

func benchVector(seed int64, n int) []float32 {
	rng := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 1e-3)
	}
	return x
}

func BenchmarkQuantize(b *testing.B) {
	for _, codec := range quantizingCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			x := benchVector(1, benchElems)
			cpuLoop(b, 4*benchElems, func() {
				if _, err := quantize(x, DefaultBlockSize, codec); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkErrorFeedbackCompress(b *testing.B) {
	for _, codec := range quantizingCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			x := benchVector(1, benchElems)
			fb := ErrorFeedback{Codec: codec}
			cpuLoop(b, 4*benchElems, func() {
				if _, err := fb.Compress(x, DefaultBlockSize); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	q, err := Quantize(benchVector(1, benchElems), DefaultBlockSize)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, benchElems)
	cpuLoop(b, 4*benchElems, func() {
		if err := q.Dequantize(dst); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	x := benchVector(1, benchElems)
	q, err := quantize(x, DefaultBlockSize, CodecInt4)
	if err != nil {
		b.Fatal(err)
	}
	for _, codec := range []Codec{CodecInt8, CodecInt4, CodecFloat32} {
		b.Run(codec.String(), func(b *testing.B) {
			cpuLoop(b, 4*benchElems, func() {
				switch codec {
				case CodecInt8:
					EncodeInt8(nil, q)
				case CodecInt4:
					EncodeInt4(nil, q)
				default:
					EncodeFloat32(nil, x)
				}
			})
		})
	}
}

func BenchmarkDecodeVector(b *testing.B) {
	x := benchVector(1, benchElems)
	for _, codec := range []Codec{CodecInt8, CodecInt4, CodecFloat32} {
		b.Run(codec.String(), func(b *testing.B) {
			var wire []byte
			if codec == CodecFloat32 {
				wire = EncodeFloat32(nil, x)
			} else {
				q, err := quantize(x, DefaultBlockSize, codec)
				if err != nil {
					b.Fatal(err)
				}
				wire = EncodeQuantized(nil, q)
			}
			cpuLoop(b, 4*benchElems, func() {
				if _, err := DecodeVector(wire, benchElems); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkCombine(b *testing.B) {
	for _, k := range []int{4, 5, 7, 8} {
		inputs := make([][]float32, k)
		for i := range inputs {
			inputs[i] = benchVector(int64(i+1), benchElems)
		}
		dst := make([]float32, benchElems)
		for _, rule := range []Combiner{Mean{}, Median{}, TrimmedMean{Fraction: 0.25}, CenteredClip{}} {
			b.Run(fmt.Sprintf("%s/k=%d", rule, k), func(b *testing.B) {
				cpuLoop(b, int64(4*k*benchElems), func() {
					if err := rule.Combine(dst, inputs); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// BenchmarkReducePart is a reducer's arithmetic for one part, without
// signatures or Merkle proofs: decode k = 4 contributions, screen them
// (DefaultScreen), combine, requantize and encode the result. MB/s counts
// the k float32 inputs.
func BenchmarkReducePart(b *testing.B) {
	const k = 4
	for _, codec := range quantizingCodecs {
		for _, rule := range []Combiner{Mean{}, CenteredClip{}} {
			b.Run(fmt.Sprintf("%s/%s", codec, rule), func(b *testing.B) {
				wires := make([][]byte, k)
				for i := range wires {
					q, err := quantize(benchVector(int64(i+1), benchElems), DefaultBlockSize, codec)
					if err != nil {
						b.Fatal(err)
					}
					wires[i] = EncodeQuantized(nil, q)
				}
				screen := DefaultScreen()
				cpuLoop(b, 4*k*benchElems, func() {
					inputs := make([][]float32, k)
					for i, w := range wires {
						v, err := DecodeVector(w, benchElems)
						if err != nil {
							b.Fatal(err)
						}
						inputs[i] = v
					}
					for _, verdict := range screen.Apply(inputs) {
						if verdict != 0 {
							b.Fatal("an honest contribution dropped")
						}
					}
					combined := make([]float32, benchElems)
					if err := rule.Combine(combined, inputs); err != nil {
						b.Fatal(err)
					}
					saturate(combined)
					q, err := quantize(combined, DefaultBlockSize, codec)
					if err != nil {
						b.Fatal(err)
					}
					EncodeQuantized(nil, q)
				})
			})
		}
	}
}

// BenchmarkCommitmentLeaves is the leaves a worker commits to (the
// hashes of its pseudo-gradient's decoded blocks), block by block
// (QuantizedLeaves) against decoding the whole vector first.
func BenchmarkCommitmentLeaves(b *testing.B) {
	q, err := quantize(benchVector(1, benchElems), DefaultBlockSize, CodecInt8)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("by-block", func(b *testing.B) {
		cpuLoop(b, 4*benchElems, func() {
			if _, err := QuantizedLeaves(q); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decoded-first", func(b *testing.B) {
		cpuLoop(b, 4*benchElems, func() {
			decoded := make([]float32, benchElems)
			if err := q.Dequantize(decoded); err != nil {
				b.Fatal(err)
			}
			BlockLeaves(decoded, DefaultBlockSize)
		})
	})
}
