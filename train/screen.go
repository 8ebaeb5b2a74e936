package train

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// This file holds the screen a reducer runs over the contributions to its
// part before combining them. A reducer sees one slice of every
// pseudo-gradient, so it judges each contribution on that slice: its norm
// against the median norm, and its direction against the coordinate-wise
// median of all contributions. A contribution it drops is named in the
// signed reduced part with the reason, so every worker applies the same
// update and learns the same verdicts. A worker is rejected for the round
// only when the reducers of a majority of parts dropped it, so one lying
// reducer cannot get an honest worker rejected; a crude attacker (sign
// flip, scaled or noisy update, free rider sending nothing) is dropped by
// every honest reducer.

// DropReason says why a reducer left a contribution out.
type DropReason uint8

const (
	// DropNormHigh: the contribution's norm exceeds MaxNormRatio times the median.
	DropNormHigh DropReason = iota + 1
	// DropNormLow: below MinNormRatio times the median (a free rider sends nothing).
	DropNormLow
	// DropDirection: its cosine with the coordinate-wise median is below MinCosine.
	DropDirection
	// DropMismatch: the part did not match the sender's signed commitment.
	DropMismatch
)

var dropNames = [...]string{"", "norm-high", "norm-low", "direction", "commitment-mismatch"}

func (r DropReason) String() string {
	if int(r) < len(dropNames) && r != 0 {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

func (r DropReason) valid() bool { return r >= DropNormHigh && r <= DropMismatch }

// Screen bounds what a contribution may look like. The zero value screens
// nothing.
type Screen struct {
	// MaxNormRatio: drop a contribution whose norm exceeds this multiple
	// of the median norm (0: no upper bound).
	MaxNormRatio float64
	// MinNormRatio: drop one whose norm is below this fraction of the
	// median (0: no lower bound).
	MinNormRatio float64
	// Direction turns on the direction check: drop a contribution whose
	// cosine with the coordinate-wise median is below MinCosine and also
	// more than Margin below the median of all contributions' cosines. The
	// second bound matters late in training, when honest pseudo-gradients
	// are mostly noise and their cosines scatter around zero: a flipped one
	// then does little harm and cannot be told apart, and an absolute
	// bound alone would drop honest workers.
	Direction bool
	MinCosine float64
	Margin    float64
	// MinInputs: screen only when at least this many contributions arrived
	// (below three nobody can tell who is the odd one out); 0 means 3.
	MinInputs int
}

// DefaultScreen is the screen network jobs use unless their spec says
// otherwise: measured honest DiLoCo pseudo-gradients of one round stay
// within a factor of about 2 of each other's norm and point the same way
// (cosine with the median well above 0.2; see docs/BENCHMARKS.md).
func DefaultScreen() Screen {
	return Screen{MaxNormRatio: 3, MinNormRatio: 0.25, Direction: true, MinCosine: 0.1, Margin: 0.3}
}

// Enabled reports whether the screen checks anything.
func (s Screen) Enabled() bool {
	return s.MaxNormRatio > 0 || s.MinNormRatio > 0 || s.Direction
}

// Validate checks the bounds.
func (s Screen) Validate() error {
	switch {
	case math.IsNaN(s.MaxNormRatio) || s.MaxNormRatio < 0 || (s.MaxNormRatio > 0 && s.MaxNormRatio < 1):
		return fmt.Errorf("train: screen max norm ratio %v: want 0 (off) or ≥ 1", s.MaxNormRatio)
	case math.IsNaN(s.MinNormRatio) || s.MinNormRatio < 0 || s.MinNormRatio >= 1:
		return fmt.Errorf("train: screen min norm ratio %v: want [0, 1)", s.MinNormRatio)
	case math.IsNaN(s.MinCosine) || s.MinCosine > 1 || s.MinCosine < -1:
		return fmt.Errorf("train: screen min cosine %v: want [-1, 1]", s.MinCosine)
	case math.IsNaN(s.Margin) || s.Margin < 0 || s.Margin > 2:
		return fmt.Errorf("train: screen direction margin %v: want [0, 2]", s.Margin)
	case s.MinInputs < 0:
		return fmt.Errorf("train: screen min inputs %d", s.MinInputs)
	}
	return nil
}

func (s Screen) String() string {
	if !s.Enabled() {
		return "off"
	}
	out := fmt.Sprintf("norm ×[%g, %g] of median", s.MinNormRatio, s.MaxNormRatio)
	if s.Direction {
		out += fmt.Sprintf(", cosine ≥ min(%g, median − %g)", s.MinCosine, s.Margin)
	}
	return out
}

// Apply judges inputs (one slice per contributor, all the same length) and
// returns a reason per input, 0 for kept. It is deterministic: float64
// sums in input order.
func (s Screen) Apply(inputs [][]float32) []DropReason {
	verdict, _ := s.apply(inputs, nil)
	return verdict
}

// apply is Apply that also returns the coordinate-wise median of all the
// inputs it computed for the direction check (nil if it did not), which
// CenteredClip and Median start from: combineScreened saves computing it
// again when nothing was dropped.
//
// The median goes into buf when it has the inputs' length (its contents
// are overwritten), else into a new slice.
func (s Screen) apply(inputs [][]float32, buf []float32) ([]DropReason, []float32) {
	verdict := make([]DropReason, len(inputs))
	minInputs := s.MinInputs
	if minInputs == 0 {
		minInputs = 3
	}
	if !s.Enabled() || len(inputs) < minInputs || len(inputs[0]) == 0 {
		return verdict, nil
	}
	norms := make([]float64, len(inputs))
	sumProducts(norms, inputs, nil)
	for i, squares := range norms {
		norms[i] = math.Sqrt(squares)
	}
	medianNorm := median(norms)
	var center []float32
	if s.Direction {
		if center = buf; len(center) != len(inputs[0]) {
			center = make([]float32, len(inputs[0]))
		}
		_ = Median{}.Combine(center, inputs) // lengths checked by the caller
	}
	centerNorm := norm2(center)
	cosines := make([]float64, len(inputs))
	if center != nil && centerNorm > 0 {
		dots := make([]float64, len(inputs))
		sumProducts(dots, inputs, center)
		for i := range inputs {
			if norms[i] > 0 {
				cosines[i] = dots[i] / (norms[i] * centerNorm)
			}
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
	return verdict, center
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func dot(a, b []float32) float64 {
	var s float64
	b = b[:len(a)]
	for i := range a {
		s += float64(float64(a[i]) * float64(b[i])) // float64(): no fused multiply-add
	}
	return s
}

// groupOfFour returns the first four of inputs, or, where the kernels
// run, fewer padded with the first one (whose extra sums the caller
// drops): a lane's sum is its own input's alone, so padding costs the
// last inputs nothing and saves them the one-at-a-time loop. It returns
// false when the caller should take the rest one at a time.
func groupOfFour(inputs [][]float32) (group [4][]float32, ok bool) {
	if len(inputs) == 0 || (len(inputs) < 4 && !vectorized) {
		return group, false
	}
	for j := range group {
		group[j] = inputs[0]
		if j < len(inputs) {
			group[j] = inputs[j]
		}
	}
	return group, true
}

// sumProducts sets out[i] to dot(inputs[i], with), or to dot(inputs[i],
// inputs[i]) when with is nil. It runs four inputs at a time, so four
// sums advance together instead of each waiting on its last addition;
// each still adds its products in order, so the bits are dot's.
func sumProducts(out []float64, inputs [][]float32, with []float32) {
	i := 0
	for ; i < len(inputs); i += 4 {
		group, ok := groupOfFour(inputs[i:])
		if !ok {
			break
		}
		a0 := group[0]
		a1, a2, a3 := group[1][:len(a0)], group[2][:len(a0)], group[3][:len(a0)]
		var sums [4]float64
		mode := sumProducts4
		if with == nil {
			mode = sumSquares4
		}
		start := sums4Vec(&sums, group[:], with, 0, len(a0), mode)
		s0, s1, s2, s3 := sums[0], sums[1], sums[2], sums[3]
		if with == nil {
			for j := start; j < len(a0); j++ {
				v := a0[j]
				x0, x1, x2, x3 := float64(v), float64(a1[j]), float64(a2[j]), float64(a3[j])
				s0 += float64(x0 * x0)
				s1 += float64(x1 * x1)
				s2 += float64(x2 * x2)
				s3 += float64(x3 * x3)
			}
		} else {
			w := with[:len(a0)]
			for j := start; j < len(a0); j++ {
				v, c := a0[j], float64(w[j])
				s0 += float64(float64(v) * c)
				s1 += float64(float64(a1[j]) * c)
				s2 += float64(float64(a2[j]) * c)
				s3 += float64(float64(a3[j]) * c)
			}
		}
		copy(out[i:min(i+4, len(inputs))], []float64{s0, s1, s2, s3})
	}
	for ; i < len(inputs); i++ {
		if with == nil {
			out[i] = dot(inputs[i], inputs[i])
		} else {
			out[i] = dot(inputs[i], with)
		}
	}
}

func norm2(a []float32) float64 { return math.Sqrt(dot(a, a)) }

// ParseScreen reads a job spec's screen: "" or "default" (DefaultScreen),
// "off", or comma-separated settings that change the default:
// max-norm=R (0: no upper bound), min-norm=R, min-cosine=C, margin=M,
// direction=off.
func ParseScreen(s string) (Screen, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch s {
	case "", "default":
		return DefaultScreen(), nil
	case "off", "none":
		return Screen{}, nil
	}
	out := DefaultScreen()
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return Screen{}, fmt.Errorf("train: screen setting %q: want key=value", kv)
		}
		if k == "direction" {
			switch v {
			case "on":
				out.Direction = true
			case "off":
				out.Direction = false
			default:
				return Screen{}, fmt.Errorf("train: screen direction=%q: want on or off", v)
			}
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return Screen{}, fmt.Errorf("train: screen %s=%q: not a number", k, v)
		}
		switch k {
		case "max-norm":
			out.MaxNormRatio = f
		case "min-norm":
			out.MinNormRatio = f
		case "min-cosine":
			out.MinCosine = f
		case "margin":
			out.Margin = f
		default:
			return Screen{}, fmt.Errorf("train: screen setting %q unknown (want max-norm, min-norm, min-cosine, margin, direction)", k)
		}
	}
	return out, out.Validate()
}
