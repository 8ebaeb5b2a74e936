//go:build !amd64

package train

// Elsewhere the codec runs its scalar loops only.
var vectorized = false

const kernelsBuilt = false

// lanes is the width the callers' loops hand back to the kernels at.
const lanes = 8

func signMagnitudesVec(corrected, x, carried []float32) (done int, maxBits, minBits1 uint32, sum float64) {
	return 0, 0, 0x7fffffff, 0
}

func signCodesVec(values []int8, corrected []float32, scale float32) int { return 0 }

func decodeDenseVec(block []float32, r *bitReader, grid *[1 << MaxTopKBits]float32, width int) int {
	return 0
}

func meanVec(dst []float32, inputs [][]float32) int { return 0 }

func clipPass4Vec(centre []float32, inputs [][]float32, scales, sumSquares []float64, measure bool) int {
	return 0
}

func addSteps4Vec(step []float64, inputs [][]float32, scales []float64, centre []float32, lo int) int {
	return 0
}

func addStep1Vec(step []float64, in []float32, scale float64, centre []float32) int { return 0 }

func moveCentreVec(centre []float32, step []float64, k int) int { return 0 }

func nonZeroMasksVec(values []int8, masks []uint32) int { return 0 }

func roundVec(values []int8, x []float32, scale float32, levels int, residual bool) int { return 0 }

func dequantizeInt8Vec(dst []float32, src []byte, scale float32) int { return 0 }

const (
	sumSquares4   = 0
	sumProducts4  = 1
	sumDistances4 = 2
)

func sums4Vec(sums *[4]float64, inputs [][]float32, with []float32, lo, n, mode int) int { return 0 }

func median4Vec(dst []float32, inputs [][]float32, from int) int { return 0 }

func median8Vec(dst []float32, inputs [][]float32, from int) int { return 0 }

func medianNetVec(dst []float32, inputs [][]float32, from int, scratch *[maxNetInputs * lanes]float32) int {
	return 0
}

func copyInt8Vec(dst []byte, src []int8) int { return 0 }

func dequantizeInt8sVec(dst []float32, src []int8, scale float32) int { return 0 }

func subtractVec(dst, a, b []float32) int { return 0 }

func dequantizeInt4Vec(dst []float32, src []byte, scale float32) int { return 0 }

func checkInt4Vec(values []byte) int { return 0 }

func encodeInt4Vec(dst []byte, values []int8) int { return 0 }

func topKMagnitudesVec(mag []uint32, corrected, x, carried []float32, s *topKScratch) (done int, maxBits uint32) {
	return 0, 0
}
