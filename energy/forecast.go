package energy

import (
	"fmt"
	"math"
	"time"
)

// ForecastMethod is how future surplus is guessed from the past.
type ForecastMethod int

const (
	// SameHourYesterday predicts each future hour by the same hour on the
	// most recent day already seen. It is the default: solar surplus is
	// dominated by the daily cycle, and on the embedded traces it beats
	// persistence at every horizon from two hours on (see
	// TestForecastErrorOnTraces), which is the range a placement cares
	// about because jobs run for hours.
	SameHourYesterday ForecastMethod = iota
	// Persistence predicts that the surplus stays what it is now. It is
	// hard to beat one hour ahead and useless across sunset.
	Persistence
)

// DefaultForecast is the method State and the market use.
const DefaultForecast = SameHourYesterday

func (m ForecastMethod) String() string {
	switch m {
	case SameHourYesterday:
		return "same-hour-yesterday"
	case Persistence:
		return "persistence"
	}
	return fmt.Sprintf("ForecastMethod(%d)", int(m))
}

// maxForecastHours bounds a forecast request.
const maxForecastHours = 24 * 31

// Forecast predicts the surplus watts for hours slots starting at now:
// slot k covers [now+k h, now+(k+1) h). Slot 0 is the present observation
// for every method (what the site measures now); later slots are the
// method's guess, made only from values at or before now.
func (s *Site) Forecast(now time.Time, hours int, m ForecastMethod) []float64 {
	hours = min(max(hours, 0), maxForecastHours)
	out := make([]float64, hours)
	for k := range out {
		out[k] = s.forecastSlot(now, k, m)
	}
	return out
}

func (s *Site) forecastSlot(now time.Time, k int, m ForecastMethod) float64 {
	if k == 0 || m == Persistence {
		return s.SurplusWatts(now)
	}
	// The most recent day whose same hour is not in the future: for
	// k = 1..24 that is yesterday, for k = 25..48 the day before, ...
	daysBack := (k + 23) / 24
	return s.SurplusWatts(now.Add(time.Duration(k-24*daysBack) * time.Hour))
}

// ForecastSurplusWh predicts the surplus energy over [now, now+d), the
// last slot counted pro rata.
func (s *Site) ForecastSurplusWh(now time.Time, d time.Duration, m ForecastMethod) float64 {
	if d <= 0 {
		return 0
	}
	hours := d.Hours()
	slots := int(math.Ceil(hours))
	var wh float64
	for k, w := range s.Forecast(now, slots, m) {
		wh += w * min(1, hours-float64(k))
	}
	return wh
}

// ForecastMAE measures a method on the site's own traces: the mean
// absolute error, in watts, of its prediction horizon hours ahead, made at
// each of count hourly instants from start.
func (s *Site) ForecastMAE(m ForecastMethod, horizon int, start time.Time, count int) float64 {
	if count <= 0 || horizon < 0 {
		return 0
	}
	var sum float64
	for i := range count {
		now := start.Add(time.Duration(i) * time.Hour)
		guess := s.forecastSlot(now, horizon, m)
		truth := s.SurplusWatts(now.Add(time.Duration(horizon) * time.Hour))
		sum += math.Abs(guess - truth)
	}
	return sum / float64(count)
}
