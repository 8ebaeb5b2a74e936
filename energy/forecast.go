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

// forecastSolarLoad is the method's guess of solar and household watts in
// slot k from now (slot 0 is the present observation).
func (s *Site) forecastSolarLoad(now time.Time, k int, m ForecastMethod) (solar, load float64) {
	at := now
	if k > 0 && m != Persistence {
		daysBack := (k + 23) / 24
		at = now.Add(time.Duration(k-24*daysBack) * time.Hour)
	}
	return s.SolarWatts(at), s.LoadWatts(at)
}

// Outlook is what a site expects of a run of work before it starts, made
// from the forecast and the battery's charge now.
type Outlook struct {
	EnergyWh  float64 `json:"energy_wh"`  // the run's energy
	SolarWh   float64 `json:"solar_wh"`   // expected from surplus solar directly
	BatteryWh float64 `json:"battery_wh"` // expected from the battery
	// HouseholdShortWh is battery energy the household is expected to miss
	// because the run took it: the household's grid draw until the sun is
	// back, with the run less without it. It is subtracted from the
	// battery's share, so the battery counts only beyond the household's needs.
	HouseholdShortWh float64 `json:"household_short_wh"`
}

// CoveredWh is the run's energy expected from surplus renewables after the
// household's needs.
func (o Outlook) CoveredWh() float64 {
	return max(0, o.SolarWh+o.BatteryWh-o.HouseholdShortWh)
}

// Coverage is CoveredWh as a share of the run's energy, 0..1.
func (o Outlook) Coverage() float64 {
	if o.EnergyWh <= 0 {
		return 0
	}
	return min(1, o.CoveredWh()/o.EnergyWh)
}

// maxOutlookTail bounds how far past a run Outlook follows the household
// to see whether the run left it short: one night.
const maxOutlookTail = 18

// Outlook forecasts a run of d at deviceWatts starting now: surplus solar
// over the whole run from the forecast, the battery's charge now, the
// household served first, and the night after the run followed until the
// forecast shows surplus again (at most 18 hours), so battery energy the
// household will need does not count as available. It does not change the
// site.
func (s *Site) Outlook(now time.Time, d time.Duration, deviceWatts float64, m ForecastMethod) Outlook {
	if d <= 0 || math.IsNaN(deviceWatts) || deviceWatts <= 0 {
		return Outlook{}
	}
	d = min(d, time.Duration(maxForecastHours)*time.Hour)
	with, without := *s, *s
	var uw, uo Usage
	hours := d.Hours()
	slots := int(math.Ceil(hours))
	k := 0
	for ; k < slots; k++ {
		solar, load := s.forecastSolarLoad(now, k, m)
		h := min(1, hours-float64(k))
		with.stepWith(&uw, solar, load, 0, h, deviceWatts)
		without.stepWith(&uo, solar, load, 0, h, 0)
	}
	o := Outlook{EnergyWh: uw.EnergyWh, SolarWh: uw.SolarWh, BatteryWh: uw.BatteryWh}
	if s.capWh > 0 {
		for tail := 0; tail < maxOutlookTail; tail++ {
			solar, load := s.forecastSolarLoad(now, k+tail, m)
			if solar > load && tail > 0 {
				break
			}
			with.stepWith(&uw, solar, load, 0, 1, 0)
			without.stepWith(&uo, solar, load, 0, 1, 0)
		}
		o.HouseholdShortWh = max(0, uw.HouseGridWh-uo.HouseGridWh)
	}
	return o
}
