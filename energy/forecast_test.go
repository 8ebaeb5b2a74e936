package energy

import (
	"math"
	"testing"
	"time"
)

func TestForecastByHand(t *testing.T) {
	s := germanSolar(t)
	now := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	surplusNow := 5000*utrecht4116 - 1000*sceaux0621h12
	// Yesterday 12:00 and 13:00 UTC (13:00, 14:00 local): Utrecht_meas_sim.csv
	// lines 4095-4096, household lines 4462-4463 (2007-06-20 13:00, 14:00).
	yesterday12 := 5000*0.307257413390803 - 1000*0.3837
	yesterday13 := 5000*0.250334041430273 - 1000*0.5998333333333333

	persist := s.Forecast(now, 3, Persistence)
	for k, w := range persist {
		if !near(w, surplusNow) {
			t.Errorf("persistence slot %d = %v, want %v", k, w, surplusNow)
		}
	}
	same := s.Forecast(now, 3, SameHourYesterday)
	for k, want := range []float64{surplusNow, yesterday12, yesterday13} {
		if !near(same[k], want) {
			t.Errorf("same-hour-yesterday slot %d = %v, want %v", k, same[k], want)
		}
	}
	// 90 minutes: all of slot 0 and half of slot 1.
	if got, want := s.ForecastSurplusWh(now, 90*time.Minute, SameHourYesterday), surplusNow+yesterday12/2; !near(got, want) {
		t.Errorf("ForecastSurplusWh(90m) = %v, want %v", got, want)
	}
	// Slot 24 is the latest observation of that hour: now itself.
	if got := s.Forecast(now, 25, SameHourYesterday)[24]; !near(got, surplusNow) {
		t.Errorf("slot 24 = %v, want the present %v", got, surplusNow)
	}
	// Slot 25 reaches back two days to 2023-06-20 12:00 UTC.
	if got := s.Forecast(now, 26, SameHourYesterday)[25]; !near(got, yesterday12) {
		t.Errorf("slot 25 = %v, want %v", got, yesterday12)
	}
	if s.ForecastSurplusWh(now, 0, Persistence) != 0 || len(s.Forecast(now, -3, Persistence)) != 0 {
		t.Error("empty forecasts are not empty")
	}
}

// TestForecastUsesOnlyThePast checks that a forecast made at now does not
// change when the future changes: the site's traces after now are never read.
func TestForecastUsesOnlyThePast(t *testing.T) {
	s := germanSolar(t)
	now := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	for _, m := range []ForecastMethod{Persistence, SameHourYesterday} {
		for k := 1; k < 48; k++ {
			target := now.Add(time.Duration(k) * time.Hour)
			src := now.Add(time.Duration(k) * time.Hour)
			if m == Persistence {
				src = now
			} else {
				src = src.Add(-24 * time.Hour * time.Duration((k+23)/24))
			}
			if src.After(now) || (!src.Before(target) && k > 0) {
				t.Fatalf("%s slot %d reads %s, after now %s", m, k, src, now)
			}
			if got, want := s.Forecast(now, k+1, m)[k], s.SurplusWatts(src); got != want {
				t.Fatalf("%s slot %d = %v, want the value at %s (%v)", m, k, got, src, want)
			}
		}
	}
}

// TestForecastErrorOnTraces measures both methods over a whole year of real
// traces for a preset solar node in every zone and checks the claim that
// justifies the default: same-hour-yesterday is better from two hours
// out, persistence only one hour ahead.
func TestForecastErrorOnTraces(t *testing.T) {
	start := time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC) // one day of history before the first forecast
	horizons := []int{1, 2, 3, 4, 6, 8, 12, 24}
	var sumP, sumS [25]float64
	var meanSurplus float64
	profiles := Presets(16)[8:16] // the "solar" kind, one per zone
	for _, p := range profiles {
		s, err := NewSite(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range horizons {
			sumP[h] += s.ForecastMAE(Persistence, h, start, HoursPerYear-48)
			sumS[h] += s.ForecastMAE(SameHourYesterday, h, start, HoursPerYear-48)
		}
		for i := range HoursPerYear {
			meanSurplus += s.SurplusWatts(start.Add(time.Duration(i) * time.Hour))
		}
	}
	n := float64(len(profiles))
	meanSurplus /= n * HoursPerYear
	t.Logf("mean surplus %.0f W over %d solar presets; mean absolute error (W) by horizon:", meanSurplus, len(profiles))
	t.Logf("%8s %12s %20s", "horizon", "persistence", "same-hour-yesterday")
	for _, h := range horizons {
		t.Logf("%7dh %12.0f %20.0f", h, sumP[h]/n, sumS[h]/n)
	}
	if sumP[1] >= sumS[1] {
		t.Errorf("1h ahead: persistence %.0f W not better than same-hour-yesterday %.0f W", sumP[1]/n, sumS[1]/n)
	}
	for _, h := range []int{2, 3, 4, 6, 8, 12} {
		if sumS[h] >= sumP[h] {
			t.Errorf("%dh ahead: same-hour-yesterday %.0f W not better than persistence %.0f W", h, sumS[h]/n, sumP[h]/n)
		}
	}
	// Within a day, same-hour-yesterday's error does not grow with the
	// horizon; a day ahead both methods read the present hour.
	if math.Abs(sumS[12]-sumS[1]) > 0.02*sumS[1] || sumS[24] != sumP[24] {
		t.Errorf("same-hour-yesterday errors %.0f (1h), %.0f (12h), %.0f (24h); persistence 24h %.0f", sumS[1]/n, sumS[12]/n, sumS[24]/n, sumP[24]/n)
	}
}
