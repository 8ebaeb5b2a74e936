package train

import "testing"

var benchTopK = []Codec{mustTopK(4, 2), mustTopK(32, 2), mustTopK(256, 1)}

func BenchmarkTopKCompress(b *testing.B) {
	for _, codec := range benchTopK {
		b.Run(codec.String(), func(b *testing.B) {
			x := benchVector(1, benchElems)
			fb := ErrorFeedback{Codec: codec}
			cpuLoop(b, 4*benchElems, func() {
				q, err := fb.Compress(x, DefaultBlockSize)
				if err != nil {
					b.Fatal(err)
				}
				EncodeQuantized(nil, q)
			})
		})
	}
}

func BenchmarkTopKDecode(b *testing.B) {
	for _, codec := range benchTopK {
		b.Run(codec.String(), func(b *testing.B) {
			q, err := quantize(benchVector(1, benchElems), DefaultBlockSize, codec)
			if err != nil {
				b.Fatal(err)
			}
			wire := EncodeQuantized(nil, q)
			cpuLoop(b, 4*benchElems, func() {
				if _, err := DecodeVector(wire, benchElems); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkAllReduceArithmetic is the arithmetic of one whole all-reduce
// among k = 4 workers on one core, without signatures, hashing or
// transport: every worker compresses its pseudo-gradient (with error
// feedback) and encodes its k parts; every reducer decodes the k
// contributions to its part, combines them, requantizes the result with
// its own error feedback and encodes it; every worker decodes the k
// combined parts (into its round's combined vector, as a coordinator
// does). MB/s counts the float32 input, k vectors of benchElems:
// at ≥ 1 GB/s per core the codec never limits a link. Screened: the
// reducers also run DefaultScreen and combine by centered clipping (what
// network jobs do).
func BenchmarkAllReduceArithmetic(b *testing.B) { allReduceArithmetic(b, 4) }

// BenchmarkAllReduceEightWorkers is BenchmarkAllReduceArithmetic among
// eight workers: the reducers' rules take their eight-input paths. MB/s
// still counts every worker's input (8 vectors of benchElems).
func BenchmarkAllReduceEightWorkers(b *testing.B) { allReduceArithmetic(b, 8) }

// BenchmarkAllReduceSevenWorkers is the same among seven, as when one of
// eight sits a round out: rules past groups of four and eights' networks.
func BenchmarkAllReduceSevenWorkers(b *testing.B) { allReduceArithmetic(b, 7) }

func allReduceArithmetic(b *testing.B, k int) {
	for _, codec := range append([]Codec{CodecInt8, CodecInt4}, benchTopK...) {
		for _, screened := range []bool{false, true} {
			name := codec.String()
			if screened {
				name += "/screened"
			}
			b.Run(name, func(b *testing.B) {
				inputs := make([][]float32, k)
				feedback := make([]ErrorFeedback, k)
				for i := range inputs {
					inputs[i] = benchVector(int64(i+1), benchElems)
					feedback[i] = ErrorFeedback{Codec: codec, recycle: true} // as a coordinator's
				}
				bounds := PartBounds(benchElems, DefaultBlockSize, k)
				nb := NumBlocks(benchElems, DefaultBlockSize)
				reduceResidual := make([]float32, benchElems)
				// A reducer decodes contributions into the buffers of
				// those it combined before (Coordinator.partBuffer).
				contribution := make([][][]float32, k)
				for j := range contribution {
					contribution[j] = make([][]float32, k)
					for w := range contribution[j] {
						contribution[j][w] = make([]float32, bounds[j+1]-bounds[j])
					}
				}
				// Reducers' combined values and medians, and workers' combined
				// vectors, reuse buffers of rounds before, as coordinators do
				// (partBuffer, spareCombined); reducer j encodes as coordinator
				// j's reducerCodec does.
				reducedBuf, medianBuf, workerCombined := make([][]float32, k), make([][]float32, k), make([][]float32, k)
				reducers := make([]reducerCodec, k)
				for j := range k {
					reducedBuf[j], medianBuf[j] = make([]float32, bounds[j+1]-bounds[j]), make([]float32, bounds[j+1]-bounds[j])
					workerCombined[j] = make([]float32, benchElems)
				}
				var combiner Combiner = Mean{}
				var screen Screen
				if screened {
					combiner, screen = CenteredClip{}, DefaultScreen()
				}
				cpuLoop(b, int64(4*k*benchElems), func() {
					parts := make([][][]byte, k) // parts[worker][part]
					for w := range k {
						q, err := feedback[w].Compress(inputs[w], DefaultBlockSize)
						if err != nil {
							b.Fatal(err)
						}
						for j := range k {
							parts[w] = append(parts[w], EncodeQuantized(nil, q.Blocks(j*nb/k, (j+1)*nb/k)))
						}
					}
					reduced := make([][]byte, k)
					for j := range k {
						lo, hi := bounds[j], bounds[j+1]
						contributions := make([][]float32, k)
						for w := range k {
							v, err := decodeVector(parts[w][j], hi-lo, contribution[j][w])
							if err != nil {
								b.Fatal(err)
							}
							contributions[w] = v
						}
						verdicts, median := screen.apply(contributions, medianBuf[j]) // as finishReduction does
						for _, verdict := range verdicts {
							if verdict != 0 {
								b.Fatal("an honest contribution dropped")
							}
						}
						combined := reducedBuf[j]
						if err := combineScreened(combiner, combined, contributions, median, true); err != nil {
							b.Fatal(err)
						}
						// as encodeReduced does
						var err error
						if reduced[j], err = reducers[j].encode(codec, combined, reduceResidual[lo:hi], DefaultBlockSize, true); err != nil {
							b.Fatal(err)
						}
					}
					for w := range k { // each worker, into its round's combined vector
						combined := workerCombined[w]
						for j := range k {
							if _, err := decodeVector(reduced[j], bounds[j+1]-bounds[j], combined[bounds[j]:bounds[j+1]]); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			})
		}
	}
}
