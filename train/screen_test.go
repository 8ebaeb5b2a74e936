package train

import (
	"math/rand"
	"slices"
	"testing"
)

func TestParseScreen(t *testing.T) {
	tests := []struct {
		in   string
		want Screen
		ok   bool
	}{
		{"", DefaultScreen(), true},
		{"default", DefaultScreen(), true},
		{"off", Screen{}, true},
		{"max-norm=4", Screen{MaxNormRatio: 4, MinNormRatio: 0.25, Direction: true, MinCosine: 0.1, Margin: 0.3}, true},
		{"direction=off,min-norm=0", Screen{MaxNormRatio: 3, MinCosine: 0.1, Margin: 0.3}, true},
		{"max-norm=0.5", Screen{}, false},
		{"min-cosine=2", Screen{}, false},
		{"speed=3", Screen{}, false},
		{"max-norm", Screen{}, false},
		{"max-norm=x", Screen{}, false},
	}
	for _, tt := range tests {
		got, err := ParseScreen(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseScreen(%q) = %+v, %v; want %+v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestScreenVerdicts(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	common := randomVector(rng, 256, 1)
	honest := func() []float32 {
		v := slices.Clone(common)
		for i := range v {
			v[i] += float32(0.3 * rng.NormFloat64())
		}
		return v
	}
	scale := func(v []float32, s float32) []float32 {
		out := slices.Clone(v)
		for i := range out {
			out[i] *= s
		}
		return out
	}
	tests := []struct {
		name string
		bad  []float32
		want DropReason
	}{
		{"honest", honest(), 0},
		{"sign flip", scale(honest(), -1), DropDirection},
		{"scaled ×10", scale(honest(), 10), DropNormHigh},
		{"free rider", make([]float32, 256), DropNormLow},
	}
	for _, tt := range tests {
		inputs := [][]float32{honest(), honest(), honest(), honest(), tt.bad}
		got := DefaultScreen().Apply(inputs)
		if got[4] != tt.want || slices.ContainsFunc(got[:4], func(r DropReason) bool { return r != 0 }) {
			t.Errorf("%s: verdicts %v, want %v for the last and none for the rest", tt.name, got, tt.want)
		}
	}
	// Too few inputs to tell the odd one out: nothing is dropped.
	if got := DefaultScreen().Apply([][]float32{honest(), scale(honest(), 10)}); got[0]+got[1] != 0 {
		t.Errorf("two inputs screened: %v", got)
	}
	if got := (Screen{}).Apply([][]float32{honest(), honest(), scale(honest(), 100)}); got[2] != 0 {
		t.Errorf("the zero screen dropped %v", got)
	}
}

func TestCenteredClipBoundsAnOutlier(t *testing.T) {
	inputs := [][]float32{{1, 1}, {1.1, 0.9}, {0.9, 1.1}, {1, 1.05}, {1e6, -1e6}}
	dst := make([]float32, 2)
	if err := (CenteredClip{}).Combine(dst, inputs); err != nil {
		t.Fatal(err)
	}
	for _, v := range dst {
		if v < 0.8 || v > 1.2 {
			t.Fatalf("centered clip gave %v under one huge input", dst)
		}
	}
	mean := make([]float32, 2)
	_ = Mean{}.Combine(mean, inputs[:4])
	_ = (CenteredClip{}).Combine(dst, inputs[:4])
	for i := range dst {
		if d := dst[i] - mean[i]; d > 0.05 || d < -0.05 {
			t.Errorf("without an outlier centered clip %v is far from the mean %v", dst, mean)
		}
	}
}
