package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Combiner merges the same part of several workers' pseudo-gradients into
// one, coordinate by coordinate. Inputs arrive in a canonical order (the
// participants' order), so a deterministic rule gives the same bits on every
// machine.
type Combiner interface {
	// Combine writes the combination of inputs into dst; every input has len(dst) elements.
	Combine(dst []float32, inputs [][]float32) error
	// String names the rule as ParseCombiner reads it.
	String() string
}

// ParseCombiner reads "mean", "median" or "trimmed-mean:F" where F in
// [0, 0.5) is the fraction trimmed from each end ("trimmed-mean" alone is 0.2).
func ParseCombiner(s string) (Combiner, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(strings.ToLower(s)), ":")
	switch name {
	case "", "mean":
		if hasArg {
			return nil, fmt.Errorf("train: combiner %q takes no argument", s)
		}
		return Mean{}, nil
	case "median":
		if hasArg {
			return nil, fmt.Errorf("train: combiner %q takes no argument", s)
		}
		return Median{}, nil
	case "centered-clip", "cclip":
		cc := CenteredClip{Iterations: 3}
		if hasArg {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 1 || n > 10 {
				return nil, fmt.Errorf("train: combiner %q: iterations: want 1 to 10", s)
			}
			cc.Iterations = n
		}
		return cc, nil
	case "trimmed-mean", "trimmed":
		f := 0.2
		if hasArg {
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil {
				return nil, fmt.Errorf("train: combiner %q: trim fraction: %v", s, err)
			}
			f = v
		}
		t := TrimmedMean{Fraction: f}
		if err := t.validate(); err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("train: unknown combiner %q (want mean, median, trimmed-mean:F or centered-clip:N)", s)
}

var errNoInputs = errors.New("train: nothing to combine")

func checkInputs(dst []float32, inputs [][]float32) error {
	if len(inputs) == 0 {
		return errNoInputs
	}
	for i, in := range inputs {
		if len(in) != len(dst) {
			return fmt.Errorf("train: combine input %d has %d elements, want %d", i, len(in), len(dst))
		}
	}
	return nil
}

// Mean is the arithmetic mean: the default, and what DiLoCo uses. One
// attacker can move it arbitrarily far.
type Mean struct{}

func (Mean) String() string { return "mean" }

// Combine sums in float64 in input order, then rounds once. It sums a
// chunk of coordinates at a time, four inputs per pass over the chunk;
// each coordinate's sum still starts at +0 and adds the inputs in order.
func (Mean) Combine(dst []float32, inputs [][]float32) error {
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	k := float64(len(inputs))
	start := meanVec(dst, inputs)
	sums := make([]float64, min(clipChunk, len(dst)-start))
	for lo := start; lo < len(dst); lo += clipChunk {
		hi := min(lo+clipChunk, len(dst))
		out := dst[lo:hi]
		chunk := sums[:len(out)]
		clear(chunk)
		i := 0
		for ; i+4 <= len(inputs); i += 4 {
			in0, in1, in2, in3 := inputs[i][lo:hi], inputs[i+1][lo:hi], inputs[i+2][lo:hi], inputs[i+3][lo:hi]
			in0, in1, in2, in3 = in0[:len(chunk)], in1[:len(chunk)], in2[:len(chunk)], in3[:len(chunk)]
			for j, s := range chunk {
				chunk[j] = s + float64(in0[j]) + float64(in1[j]) + float64(in2[j]) + float64(in3[j])
			}
		}
		for ; i < len(inputs); i++ {
			in := inputs[i][lo:hi]
			in = in[:len(chunk)]
			for j, v := range in {
				chunk[j] += float64(v)
			}
		}
		for j, s := range chunk {
			out[j] = float32(s / k)
		}
	}
	return nil
}

// TrimmedMean drops the floor(Fraction·k) smallest and largest values of
// each coordinate and averages the rest; with k inputs it tolerates that
// many attackers. When trimming would leave nothing it falls back to the median.
type TrimmedMean struct {
	Fraction float64
}

func (t TrimmedMean) String() string {
	return "trimmed-mean:" + strconv.FormatFloat(t.Fraction, 'g', -1, 64)
}

func (t TrimmedMean) validate() error {
	if math.IsNaN(t.Fraction) || t.Fraction < 0 || t.Fraction >= 0.5 {
		return fmt.Errorf("train: trim fraction %v outside [0, 0.5)", t.Fraction)
	}
	return nil
}

// Combine applies the rule coordinate by coordinate.
func (t TrimmedMean) Combine(dst []float32, inputs [][]float32) error {
	if err := t.validate(); err != nil {
		return err
	}
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	k := len(inputs)
	trim := int(math.Floor(t.Fraction * float64(k)))
	if k-2*trim <= 0 {
		return Median{}.Combine(dst, inputs)
	}
	var sorter columnSorter
	for i := range dst {
		column := sorter.sort(inputs, i)
		var sum float64
		for _, v := range column[trim : k-trim] {
			sum += float64(v)
		}
		dst[i] = float32(sum / float64(k-2*trim))
	}
	return nil
}

// Median is the coordinate-wise median (the mean of the two middle values
// for an even count); it tolerates just under half of the inputs being bad.
type Median struct{}

func (Median) String() string { return "median" }

// Combine applies the rule coordinate by coordinate.
func (Median) Combine(dst []float32, inputs [][]float32) error {
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	var sorter columnSorter
	// The column at i where a network gave up (a NaN, or two middle zeros
	// whose signs matter): +0 where zeroMedian says so, else the sort.
	fallback := func(i int) float32 {
		if zeroMedian(inputs, i) {
			return 0
		}
		return columnMedian(sorter.sort(inputs, i))
	}
	switch len(inputs) {
	case 4: // the common case, without sorting
		a, b, c, d := inputs[0][:len(dst)], inputs[1][:len(dst)], inputs[2][:len(dst)], inputs[3][:len(dst)]
		byGroups(len(dst), func(from int) int { return median4Vec(dst, inputs, from) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				m, ok := medianOf4(a[i], b[i], c[i], d[i])
				if !ok {
					m = fallback(i)
				}
				dst[i] = m
			}
		})
	case 8:
		in := [8][]float32{}
		for j := range in {
			in[j] = inputs[j][:len(dst)]
		}
		byGroups(len(dst), func(from int) int { return median8Vec(dst, inputs, from) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				m, ok := medianOf8(in[0][i], in[1][i], in[2][i], in[3][i], in[4][i], in[5][i], in[6][i], in[7][i])
				if !ok {
					m = fallback(i)
				}
				dst[i] = m
			}
		})
	default:
		var scratch *[maxNetInputs * lanes]float32
		if vectorized && len(inputs) <= maxNetInputs {
			scratch = new([maxNetInputs * lanes]float32)
		}
		byGroups(len(dst), func(from int) int { return medianNetVec(dst, inputs, from, scratch) }, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dst[i] = columnMedian(sorter.sort(inputs, i))
			}
		})
	}
	return nil
}

// byGroups runs a kernel over n elements and a scalar loop over what it
// leaves: kernel(from) does whole groups from element from on and returns
// how many elements it did, stopping before a group it cannot decide;
// scalar(lo, hi) does elements [lo, hi) — that group (or the tail, or
// everything where the kernels do not run) — and the kernel goes on after.
func byGroups(n int, kernel func(from int) int, scalar func(lo, hi int)) {
	for i := 0; i < n; {
		end := n
		if vectorized {
			i += kernel(i)
			end = min(i+lanes, n)
		}
		scalar(i, end)
		i = end
	}
}

// maxNetInputs is the most inputs the median's sorting-network kernel
// takes; more go to the sort.
const maxNetInputs = 16

// medianNets[k] is a sorting network for k inputs, as the byte offsets
// in the kernel's scratch (rows of lanes float32s) of the two rows of
// each compare-exchange: Batcher's odd–even merge sort for the next power
// of two, less the
// compare-exchanges with a row past k (as if those rows held +∞, which
// such a compare-exchange would leave in place).
var medianNets = func() (nets [maxNetInputs + 1][]int) {
	for k := 3; k <= maxNetInputs; k++ {
		size := 1
		for size < k {
			size *= 2
		}
		for p := 1; p < size; p *= 2 {
			for q := p; q >= 1; q /= 2 {
				for j := q % p; j+q < size; j += 2 * q {
					for i := 0; i < q && i+j+q < size; i++ {
						a, b := i+j, i+j+q
						if a/(2*p) == b/(2*p) && b < k {
							nets[k] = append(nets[k], a*4*lanes, b*4*lanes)
						}
					}
				}
			}
		}
	}
	return nets
}()

// medianOf8 is medianOf4 for eight values, by Batcher's odd-even merge
// sort (19 compare-exchanges); its answer is the sort's under the same
// conditions.
func medianOf8(x0, x1, x2, x3, x4, x5, x6, x7 float32) (float32, bool) {
	if sum := x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7; sum != sum { // a NaN (or ∞ - ∞): let the sort decide
		return 0, false
	}
	x0, x1 = min(x0, x1), max(x0, x1)
	x2, x3 = min(x2, x3), max(x2, x3)
	x4, x5 = min(x4, x5), max(x4, x5)
	x6, x7 = min(x6, x7), max(x6, x7)
	x0, x2 = min(x0, x2), max(x0, x2)
	x1, x3 = min(x1, x3), max(x1, x3)
	x4, x6 = min(x4, x6), max(x4, x6)
	x5, x7 = min(x5, x7), max(x5, x7)
	x1, x2 = min(x1, x2), max(x1, x2)
	x5, x6 = min(x5, x6), max(x5, x6)
	x0, x4 = min(x0, x4), max(x0, x4)
	x1, x5 = min(x1, x5), max(x1, x5)
	x2, x6 = min(x2, x6), max(x2, x6)
	x3, x7 = min(x3, x7), max(x3, x7)
	x2, x4 = min(x2, x4), max(x2, x4)
	x3, x5 = min(x3, x5), max(x3, x5)
	x3, x4 = min(x3, x4), max(x3, x4) // of the last layer, only the middle pair matters
	if x3 == 0 && x4 == 0 {
		return 0, false
	}
	return float32((float64(x3) + float64(x4)) / 2), true
}

// medianOf4 is the median of four values, the mean of the middle two,
// by a branch-free min/max network. Values that compare equal have the
// same bits except ±0, so any network finds the same middle values as
// the sort, up to the sign of a zero; and a zero's sign only shows in the
// mean when both middle values are zero (x ± 0 is x). Then, or with a
// NaN, it returns false, for the caller to try zeroMedian and then sort.
// (It is small enough for the compiler to inline; keep it so.)
func medianOf4(x0, x1, x2, x3 float32) (float32, bool) {
	lower := max(min(x0, x1), min(x2, x3))
	upper := min(max(x0, x1), max(x2, x3))
	if lower != lower || (lower == 0 && upper == 0) { // NaN propagates into lower
		return 0, false
	}
	return float32((float64(lower) + float64(upper)) / 2), true
}

// zeroMedian is the median of column i of inputs where medianOf4 or
// medianOf8 gave up, if it is +0: the mean of two middle zeros is -0 only
// if both are -0, so without a -0 (or a NaN, or infinities of both signs,
// where the networks also give up) in the column it is +0. That is most
// columns of sparse (top-k) parts, nearly all +0.
func zeroMedian(inputs [][]float32, i int) bool {
	var sum float32
	for _, in := range inputs {
		v := in[i]
		if math.Float32bits(v) == 0x80000000 {
			return false
		}
		sum += v
	}
	return sum == sum
}

func columnMedian(sorted []float32) float32 {
	k := len(sorted)
	if k%2 == 1 {
		return sorted[k/2]
	}
	return float32((float64(sorted[k/2-1]) + float64(sorted[k/2])) / 2)
}

// rankSortMax is the most inputs columnSorter ranks; it is also the most
// that slices.Sort sorts by insertion (see pdqsort's maxInsertion).
const rankSortMax = 12

// columnSorter sorts one coordinate of every input, in the order
// slices.Sort gives, which the rules have always used: -0 and +0 compare
// equal but are different bits, so the order among equal values must
// stay the same for every worker to get the same result.
type columnSorter struct {
	column, sorted [rankSortMax]float32
	long           []float32
}

// sort returns coordinate i of every input, sorted; the slice is reused.
//
// For up to rankSortMax values slices.Sort is an insertion sort, which is
// stable; so each value goes where its rank says: of two inputs a before
// b, b comes first exactly when it is smaller. That is the same order
// without the insertion sort's unpredictable branches. NaN (which
// slices.Sort puts first) and longer columns go to slices.Sort itself.
func (s *columnSorter) sort(inputs [][]float32, i int) []float32 {
	k := len(inputs)
	if k > rankSortMax {
		return s.sortLong(inputs, i)
	}
	column := s.column[:k]
	for a, in := range inputs {
		column[a] = in[i]
	}
	var rank [rankSortMax]int
	for a, va := range column {
		if va != va {
			return s.sortLong(inputs, i)
		}
		for b := a + 1; b < k; b++ {
			later := b2i(column[b] < va)
			rank[a] += later
			rank[b] += 1 - later
		}
	}
	for a, v := range column {
		s.sorted[rank[a]] = v
	}
	return s.sorted[:k]
}

func (s *columnSorter) sortLong(inputs [][]float32, i int) []float32 {
	if len(s.long) != len(inputs) {
		s.long = make([]float32, len(inputs))
	}
	for a, in := range inputs {
		s.long[a] = in[i]
	}
	slices.Sort(s.long)
	return s.long
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CenteredClip is centred clipping (Karimireddy, He and Jaggi, "Learning
// from History for Byzantine Robust Optimization", ICML 2021), on one part:
// start at the coordinate-wise median, then Iterations times move the
// centre by the mean of every input's deviation from it, each deviation
// clipped to the median deviation's length. An input far away pulls the
// centre by at most τ/k, however far it is, while honest inputs near the
// centre count fully, so it keeps most of the mean's accuracy.
type CenteredClip struct {
	Iterations int // 0 means 3
}

func (c CenteredClip) String() string {
	if c.Iterations == 0 || c.Iterations == 3 {
		return "centered-clip"
	}
	return "centered-clip:" + strconv.Itoa(c.Iterations)
}

// clipChunk is how many coordinates CenteredClip moves at a time: the
// chunk of every input stays in cache between the step and the distances.
const clipChunk = 512

// Combine applies the rule; sums are float64 in input order. It makes one
// pass over the inputs for the median and one per iteration, which moves
// the centre chunk by chunk and measures the distances the next
// iteration needs. Every sum keeps the order the rule was first written
// with (each distance over coordinates in order, each step over inputs in
// order), so the bits are the same.
func (c CenteredClip) Combine(dst []float32, inputs [][]float32) error {
	if err := (Median{}).Combine(dst, inputs); err != nil {
		return err
	}
	c.clip(dst, inputs)
	return nil
}

// combineScreened combines inputs into dst by c, given the median of all
// of them the screen computed (nil if it did not) and whether all were
// kept: then Median and CenteredClip start from that median instead of
// computing it again, with the same bits.
func combineScreened(c Combiner, dst []float32, inputs [][]float32, median []float32, allKept bool) error {
	if median == nil || !allKept || len(median) != len(dst) {
		return c.Combine(dst, inputs)
	}
	switch rule := c.(type) {
	case Median:
		if err := checkInputs(dst, inputs); err != nil {
			return err
		}
		copy(dst, median)
		return nil
	case CenteredClip:
		if err := checkInputs(dst, inputs); err != nil {
			return err
		}
		copy(dst, median)
		rule.clip(dst, inputs)
		return nil
	}
	return c.Combine(dst, inputs)
}

// clip runs CenteredClip's iterations from the median in dst.
func (c CenteredClip) clip(dst []float32, inputs [][]float32) {
	iterations := c.Iterations
	if iterations <= 0 {
		iterations = 3
	}
	k := len(inputs)
	sumSquares := make([]float64, k)
	addSquaredDistances(sumSquares, inputs, dst, 0, len(dst))
	dists, scales := make([]float64, k), make([]float64, k)
	step := make([]float64, min(clipChunk, len(dst)))
	for it := range iterations {
		for i := range dists {
			dists[i] = math.Sqrt(sumSquares[i])
		}
		tau := median(dists)
		if tau == 0 {
			return // most inputs sit on the centre already
		}
		for i := range scales {
			scales[i] = 1.0
			if dists[i] > tau {
				scales[i] = tau / dists[i]
			}
		}
		clear(sumSquares)
		if k == 4 {
			clipPass4(dst, inputs, scales, sumSquares, it < iterations-1)
			continue
		}
		for lo := 0; lo < len(dst); lo += clipChunk {
			hi := min(lo+clipChunk, len(dst))
			centre := dst[lo:hi]
			st := step[:len(centre)]
			clear(st)
			addSteps(st, inputs, scales, centre, lo, hi)
			for j := moveCentreVec(centre, st, k); j < len(centre); j++ {
				centre[j] = float32(float64(centre[j]) + st[j]/float64(k))
			}
			if it < iterations-1 {
				addSquaredDistances(sumSquares, inputs, dst, lo, hi)
			}
		}
	}
}

// clipPass4 is one iteration of CenteredClip over four inputs in a single
// loop: the step of each coordinate (from +0, the inputs in order), the
// moved centre and, when measure is set, the squared distances to it.
func clipPass4(centre []float32, inputs [][]float32, scales, sumSquares []float64, measure bool) {
	in0, in1, in2, in3 := inputs[0][:len(centre)], inputs[1][:len(centre)], inputs[2][:len(centre)], inputs[3][:len(centre)]
	c0, c1, c2, c3 := scales[0], scales[1], scales[2], scales[3]
	start := clipPass4Vec(centre, inputs, scales, sumSquares, measure)
	s0, s1, s2, s3 := sumSquares[0], sumSquares[1], sumSquares[2], sumSquares[3]
	for j := start; j < len(centre); j++ {
		cj := centre[j]
		if math.Float32bits(cj) == 0 && math.Float32bits(in0[j])|math.Float32bits(in1[j])|math.Float32bits(in2[j])|math.Float32bits(in3[j]) == 0 {
			// All +0, as in most columns of sparse (top-k) parts: the
			// step is +0, so the centre stays +0 and every distance adds +0.
			continue
		}
		c := float64(cj)
		x0, x1, x2, x3 := float64(in0[j]), float64(in1[j]), float64(in2[j]), float64(in3[j])
		var step float64
		// float64() around each product: no fused multiply-add.
		step += float64(c0 * (x0 - c))
		step += float64(c1 * (x1 - c))
		step += float64(c2 * (x2 - c))
		step += float64(c3 * (x3 - c))
		moved := float32(c + step/4)
		centre[j] = moved
		if measure {
			m := float64(moved)
			d0, d1, d2, d3 := x0-m, x1-m, x2-m, x3-m
			s0 += float64(d0 * d0)
			s1 += float64(d1 * d1)
			s2 += float64(d2 * d2)
			s3 += float64(d3 * d3)
		}
	}
	sumSquares[0], sumSquares[1], sumSquares[2], sumSquares[3] = s0, s1, s2, s3
}

// addSteps adds to step[j] each input's clipped deviation from the
// centre, scales[i]·(inputs[i][lo+j] - centre[j]), in input order; four
// inputs at a time, so step is read and written once per four.
func addSteps(step []float64, inputs [][]float32, scales []float64, centre []float32, lo, hi int) {
	step = step[:len(centre)]
	i := 0
	// float64() around each product: no fused multiply-add, on any machine.
	for ; i+4 <= len(inputs); i += 4 {
		in0, in1, in2, in3 := inputs[i][lo:hi], inputs[i+1][lo:hi], inputs[i+2][lo:hi], inputs[i+3][lo:hi]
		in0, in1, in2, in3 = in0[:len(centre)], in1[:len(centre)], in2[:len(centre)], in3[:len(centre)]
		c0, c1, c2, c3 := scales[i], scales[i+1], scales[i+2], scales[i+3]
		for j := addSteps4Vec(step, inputs[i:i+4], scales[i:i+4], centre, lo); j < len(centre); j++ {
			c := float64(centre[j])
			s := step[j]
			s += float64(c0 * (float64(in0[j]) - c))
			s += float64(c1 * (float64(in1[j]) - c))
			s += float64(c2 * (float64(in2[j]) - c))
			s += float64(c3 * (float64(in3[j]) - c))
			step[j] = s
		}
	}
	for ; i < len(inputs); i++ {
		in, scale := inputs[i][lo:hi], scales[i]
		in = in[:len(centre)]
		for j := addStep1Vec(step, in, scale, centre); j < len(centre); j++ {
			step[j] += float64(scale * (float64(in[j]) - float64(centre[j])))
		}
	}
}

// addSquaredDistances adds to sums[i] the squared distance between
// coordinates [lo, hi) of inputs[i] and of centre, one coordinate after
// the other; four inputs at a time, so four sums advance together.
func addSquaredDistances(sums []float64, inputs [][]float32, centre []float32, lo, hi int) {
	centre = centre[lo:hi]
	i := 0
	for ; i < len(inputs); i += 4 {
		group, ok := groupOfFour(inputs[i:])
		if !ok {
			break
		}
		in0, in1, in2, in3 := group[0][lo:hi], group[1][lo:hi], group[2][lo:hi], group[3][lo:hi]
		in0, in1, in2, in3 = in0[:len(centre)], in1[:len(centre)], in2[:len(centre)], in3[:len(centre)]
		var four [4]float64
		copy(four[:], sums[i:min(i+4, len(inputs))])
		start := sums4Vec(&four, group[:], centre, lo, len(centre), sumDistances4)
		s0, s1, s2, s3 := four[0], four[1], four[2], four[3]
		for j := start; j < len(centre); j++ {
			c := float64(centre[j])
			d0, d1, d2, d3 := float64(in0[j])-c, float64(in1[j])-c, float64(in2[j])-c, float64(in3[j])-c
			s0 += float64(d0 * d0)
			s1 += float64(d1 * d1)
			s2 += float64(d2 * d2)
			s3 += float64(d3 * d3)
		}
		copy(sums[i:min(i+4, len(inputs))], []float64{s0, s1, s2, s3})
	}
	for ; i < len(inputs); i++ {
		in := inputs[i][lo:hi]
		in = in[:len(centre)]
		s := sums[i]
		for j, cj := range centre {
			d := float64(in[j]) - float64(cj)
			s += float64(d * d)
		}
		sums[i] = s
	}
}
