package reputation

import (
	"math"
	"testing"
)

// The tests may use floating point to check the integer code against it.

func TestPow2NegAccuracy(t *testing.T) {
	for _, tc := range []struct{ num, den uint64 }{{0, 1}, {1, 2}, {1, 4}, {3, 4}, {1, 3}, {2, 3}, {12345, 86400}, {86399, 86400}, {1, 1 << 40}} {
		got := float64(pow2Neg(tc.num, tc.den)) / float64(q32One)
		want := math.Pow(2, -float64(tc.num)/float64(tc.den))
		if math.Abs(got-want) > 1e-7 {
			t.Errorf("2^-(%d/%d) = %.10f, want %.10f", tc.num, tc.den, got, want)
		}
	}
}

func TestDecay(t *testing.T) {
	const hl = 1000
	tests := []struct {
		v, elapsed uint64
		want       float64
	}{
		{1_000_000, 0, 1_000_000},
		{1_000_000, hl, 500_000},
		{1_000_000, 3 * hl, 125_000},
		{1_000_000, hl / 2, 1_000_000 / math.Sqrt2},
		{maxUint64, hl, float64(maxUint64) / 2},
		{1_000_000, 64 * hl, 0},
		{1_000_000, maxUint64, 0},
	}
	for _, tt := range tests {
		got := float64(decay(tt.v, tt.elapsed, hl))
		if math.Abs(got-tt.want) > 1e-6*max(1, tt.want)+1 {
			t.Errorf("decay(%d, %d) = %.0f, want %.0f", tt.v, tt.elapsed, got, tt.want)
		}
	}
	// Decaying in steps agrees with decaying at once, up to rounding.
	v := uint64(123_456_789_000)
	stepped := v
	for range 37 {
		stepped = decay(stepped, 97, hl)
	}
	once := decay(v, 37*97, hl)
	if diff := math.Abs(float64(stepped) - float64(once)); diff > 1e-5*float64(once) {
		t.Errorf("stepped decay %d vs once %d", stepped, once)
	}
	if decay(5, 10, 0) != 5 {
		t.Error("a zero half-life should not decay")
	}
}

func TestMulDiv(t *testing.T) {
	if got := mulDiv(maxUint64, PPM, 2*PPM); got != maxUint64/2 {
		t.Errorf("mulDiv large = %d", got)
	}
	if mulDiv(maxUint64, 3, 1) != maxUint64 || mulDiv(1, 1, 0) != 0 {
		t.Error("mulDiv does not saturate or guard zero")
	}
	if addSat(maxUint64, 1) != maxUint64 || addSat(2, 3) != 5 {
		t.Error("addSat")
	}
}
