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

// Combine sums in float64 in input order, then rounds once.
func (Mean) Combine(dst []float32, inputs [][]float32) error {
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
	for i := range dst {
		dst[i] = columnMedian(sorter.sort(inputs, i))
	}
	return nil
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
	column, sorted []float32
}

// sort returns coordinate i of every input, sorted; the slice is reused.
//
// For up to rankSortMax values slices.Sort is an insertion sort, which is
// stable; so each value goes where its rank says: the number of values
// below it plus the number of equal ones before it. That is the same
// order without the insertion sort's unpredictable branches. NaN (which
// slices.Sort puts first) and longer columns go to slices.Sort itself.
func (s *columnSorter) sort(inputs [][]float32, i int) []float32 {
	k := len(inputs)
	if len(s.column) != k {
		s.column, s.sorted = make([]float32, k), make([]float32, k)
	}
	column := s.column
	nan := false
	for j, in := range inputs {
		v := in[i]
		column[j] = v
		nan = nan || v != v
	}
	if k > rankSortMax || nan {
		slices.Sort(column)
		return column
	}
	sorted := s.sorted[:k]
	for j, v := range column {
		rank := 0
		for _, w := range column[:j] {
			rank += b2i(w <= v)
		}
		for _, w := range column[j+1:] {
			rank += b2i(w < v)
		}
		sorted[rank] = v
	}
	return sorted
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

// Combine applies the rule; sums are float64 in input order. It makes
// one pass over the inputs per iteration and one for the median: each
// pass moves the centre and measures the distances the next iteration
// needs, keeping every sum in the order the rule was first written with
// (each distance over coordinates in order, each step over inputs in
// order), so the bits are the same.
func (c CenteredClip) Combine(dst []float32, inputs [][]float32) error {
	if err := checkInputs(dst, inputs); err != nil {
		return err
	}
	iterations := c.Iterations
	if iterations <= 0 {
		iterations = 3
	}
	k := len(inputs)
	sumSquares := make([]float64, k)
	var sorter columnSorter
	for j := range dst {
		centre := columnMedian(sorter.sort(inputs, j))
		dst[j] = centre
		for i, in := range inputs {
			diff := float64(in[j]) - float64(centre)
			sumSquares[i] += float64(diff * diff) // float64(): no fused multiply-add
		}
	}
	dists, scales := make([]float64, k), make([]float64, k)
	// Dividing by a power of two and multiplying by its inverse round the
	// same exact quotient: the same bits.
	powerOfTwo, inverseK := k&(k-1) == 0, 1/float64(k)
	for it := range iterations {
		for i := range dists {
			dists[i] = math.Sqrt(sumSquares[i])
		}
		tau := median(dists)
		if tau == 0 {
			return nil // most inputs sit on the centre already
		}
		for i := range scales {
			scales[i] = 1.0
			if dists[i] > tau {
				scales[i] = tau / dists[i]
			}
		}
		clear(sumSquares)
		measure := it < iterations-1
		for j := range dst {
			centre := float64(dst[j])
			var step float64
			for i, in := range inputs {
				step += float64(scales[i] * (float64(in[j]) - centre))
			}
			if powerOfTwo {
				step = float64(step * inverseK)
			} else {
				step /= float64(k)
			}
			moved := float32(centre + step)
			dst[j] = moved
			if measure {
				for i, in := range inputs {
					diff := float64(in[j]) - float64(moved)
					sumSquares[i] += float64(diff * diff)
				}
			}
		}
	}
	return nil
}
