package energy

import (
	"math"
	"testing"
	"time"
)

func TestTracesLoad(t *testing.T) {
	// Min/mean/max of the direct intensity as listed in ../shared/data/SOURCES.md
	// (rounded there to whole grams), recomputed from the full source files.
	tests := []struct {
		zone            string
		min, mean, max  float64
		first, lastHour float64 // rows 2 and 8761 of <ZONE>_2023_hourly.csv
	}{
		{"US-CAL-CISO", 54.47, 193.956, 331.67, 238.69, math.NaN()},
		{"GB", 3.57, 128.565, 282.34, 62.55, 63.05},
		{"DE-LU", 84.4, 307.662, 639.97, 140.51, math.NaN()},
		{"ZA", 535.33, 644.536, 718.76, 658.63, math.NaN()},
		{"KR", 216.5, 378.209, 432.64, 363.97, math.NaN()},
		{"AU-NSW", 140.02, 502.101, 719.78, 295.12, math.NaN()},
		{"US-NY-NYIS", 130.95, 209.680, 300.6, 205.09, math.NaN()},
		{"BR-SP", 19.2, 56.120, 109.86, 34.49, math.NaN()},
	}
	for _, tt := range tests {
		tr, err := CarbonTrace(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
		for _, v := range tr.Values {
			lo, hi, sum = min(lo, v), max(hi, v), sum+v
		}
		mean := sum / HoursPerYear
		if lo != tt.min || hi != tt.max || math.Abs(mean-tt.mean) > 0.001 {
			t.Errorf("%s: min/mean/max %v/%.3f/%v, want %v/%.3f/%v", tt.zone, lo, mean, hi, tt.min, tt.mean, tt.max)
		}
		if tr.Values[0] != tt.first {
			t.Errorf("%s: first value %v, want %v", tt.zone, tr.Values[0], tt.first)
		}
		if !math.IsNaN(tt.lastHour) && tr.Values[HoursPerYear-1] != tt.lastHour {
			t.Errorf("%s: last value %v, want %v", tt.zone, tr.Values[HoursPerYear-1], tt.lastHour)
		}
	}
	for _, name := range SolarTraceNames() {
		tr, err := SolarTrace(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range tr.Values {
			if v < 0 || v > 1 {
				t.Fatalf("solar %s hour %d: %v outside 0..1", name, i, v)
			}
		}
	}
	if _, err := LoadTrace("sceaux"); err != nil {
		t.Fatal(err)
	}
	if _, err := CarbonTrace("FR"); err == nil {
		t.Error("unknown zone FR loaded")
	}
}

func TestHourOfYear(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int
	}{
		{time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(2023, 6, 21, 11, 30, 0, 0, time.UTC), 171*24 + 11},
		{time.Date(2023, 12, 31, 23, 0, 0, 0, time.UTC), HoursPerYear - 1},
		// Leap years fold 29 February onto the 28th and keep later dates.
		{time.Date(2024, 2, 28, 5, 0, 0, 0, time.UTC), 58*24 + 5},
		{time.Date(2024, 2, 29, 5, 0, 0, 0, time.UTC), 58*24 + 5},
		{time.Date(2024, 3, 1, 5, 0, 0, 0, time.UTC), 59*24 + 5},
		{time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), HoursPerYear - 1},
	}
	for _, tt := range tests {
		if got := HourOfYear(tt.t); got != tt.want {
			t.Errorf("HourOfYear(%s) = %d, want %d", tt.t, got, tt.want)
		}
	}
	tr := &Trace{Values: make([]float64, HoursPerYear)}
	tr.Values[HoursPerYear-1] = 7
	if tr.At(-1) != 7 || tr.At(2*HoursPerYear-1) != 7 {
		t.Error("At does not fold out-of-range hours into the year")
	}
}
