package train

import (
	"math"
	"testing"
)

func TestCombineHandComputed(t *testing.T) {
	inputs := [][]float32{
		{1, 10, -3, 0},
		{2, 20, -1, 0},
		{3, 30, 5, 7},
		{4, 40, 100, 1},
		{100, -50, 2, 2},
	}
	tests := []struct {
		name string
		c    Combiner
		in   [][]float32
		want []float32
	}{
		// Column sums: 110, 50, 103, 10.
		{"mean", Mean{}, inputs, []float32{22, 10, 20.6, 2}},
		// Sorted columns: [1 2 3 4 100] [-50 10 20 30 40] [-3 -1 2 5 100] [0 0 1 2 7].
		{"median odd", Median{}, inputs, []float32{3, 20, 2, 1}},
		{"median even", Median{}, inputs[:4], []float32{2.5, 25, 2, 0.5}},
		// Trim 1 of 5 at each end: means of the middle three.
		{"trimmed 0.2", TrimmedMean{Fraction: 0.2}, inputs, []float32{3, 20, 2, 1}},
		{"trimmed 0.2 of 4 trims nothing", TrimmedMean{Fraction: 0.2}, inputs[:4], []float32{2.5, 25, 25.25, 2}},
		{"trimmed 0.25 of 4 trims one", TrimmedMean{Fraction: 0.25}, inputs[:4], []float32{2.5, 25, 2, 0.5}},
		{"trimmed 0 is the mean", TrimmedMean{}, inputs, []float32{22, 10, 20.6, 2}},
		{"trimmed of one input", TrimmedMean{Fraction: 0.4}, inputs[:1], []float32{1, 10, -3, 0}},
		{"single input median", Median{}, inputs[2:3], []float32{3, 30, 5, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float32, len(tt.in[0]))
			if err := tt.c.Combine(got, tt.in); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-5 {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestCombineAgainstAttacker(t *testing.T) {
	// Four honest workers send values in [0.9, 1.1]; one attacker sends
	// 1e30 everywhere. A robust rule stays within the honest range; the
	// mean is dragged to 2e29.
	honest := [][]float32{{0.9, 1.0}, {1.0, 1.1}, {1.1, 0.9}, {1.0, 1.0}}
	attacked := append(honest, []float32{1e30, -1e30})
	tests := []struct {
		c       Combiner
		bounded bool
	}{
		{Mean{}, false},
		{Median{}, true},
		{TrimmedMean{Fraction: 0.2}, true},
		{TrimmedMean{Fraction: 0.4}, true},
	}
	for _, tt := range tests {
		t.Run(tt.c.String(), func(t *testing.T) {
			got := make([]float32, 2)
			if err := tt.c.Combine(got, attacked); err != nil {
				t.Fatal(err)
			}
			inRange := true
			for _, v := range got {
				inRange = inRange && v >= 0.9 && v <= 1.1
			}
			if inRange != tt.bounded {
				t.Errorf("%s gave %v; within the honest range = %v, want %v", tt.c, got, inRange, tt.bounded)
			}
		})
	}
}

func TestParseCombiner(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"mean", "mean", false},
		{"", "mean", false},
		{"Median", "median", false},
		{"trimmed-mean", "trimmed-mean:0.2", false},
		{"trimmed-mean:0.1", "trimmed-mean:0.1", false},
		{"trimmed-mean:0.5", "", true},
		{"trimmed-mean:-0.1", "", true},
		{"trimmed-mean:x", "", true},
		{"mean:3", "", true},
		{"krum", "", true},
	}
	for _, tt := range tests {
		c, err := ParseCombiner(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseCombiner(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && c.String() != tt.want {
			t.Errorf("ParseCombiner(%q) = %s, want %s", tt.in, c, tt.want)
		}
	}
}

func TestCombineRefusesMismatchedInputs(t *testing.T) {
	for _, c := range []Combiner{Mean{}, Median{}, TrimmedMean{Fraction: 0.1}} {
		if err := c.Combine(make([]float32, 2), nil); err == nil {
			t.Errorf("%s: no inputs accepted", c)
		}
		if err := c.Combine(make([]float32, 2), [][]float32{{1, 2}, {1}}); err == nil {
			t.Errorf("%s: short input accepted", c)
		}
	}
}
