package energy

import (
	"math"
	"time"

	"github.com/gridmind/gridmind"
)

// Work is a piece of work on the device: from Start, for Duration, drawing
// BusyWatts.
type Work struct {
	Start     time.Time
	Duration  time.Duration
	BusyWatts float64
}

// Usage is where a device's energy came from over an interval. The device
// takes surplus solar first, then the battery, then the grid; surplus the
// device does not take charges the battery, and what is left is spilled
// (exported or curtailed).
type Usage struct {
	EnergyWh  float64 `json:"energy_wh"`  // the device's energy
	SolarWh   float64 `json:"solar_wh"`   // of which direct surplus solar
	BatteryWh float64 `json:"battery_wh"` // of which from the battery (charged only from surplus)
	GridWh    float64 `json:"grid_wh"`    // of which from the grid
	CO2Grams  float64 `json:"co2_g"`      // grid energy times the zone's intensity, hour by hour
	ChargedWh float64 `json:"charged_wh"` // surplus stored in the battery
	SpilledWh float64 `json:"spilled_wh"` // surplus neither used nor stored
}

// RenewableWh is the device energy covered by surplus renewable power,
// direct or stored.
func (u Usage) RenewableWh() float64 { return u.SolarWh + u.BatteryWh }

// RenewableShare is RenewableWh as a fraction of EnergyWh (0 when no energy was used).
func (u Usage) RenewableShare() float64 {
	if u.EnergyWh <= 0 {
		return 0
	}
	return u.RenewableWh() / u.EnergyWh
}

// GridKWh is the grid energy in kWh.
func (u Usage) GridKWh() float64 { return u.GridWh / 1000 }

// Add accumulates v into u.
func (u *Usage) Add(v Usage) {
	u.EnergyWh += v.EnergyWh
	u.SolarWh += v.SolarWh
	u.BatteryWh += v.BatteryWh
	u.GridWh += v.GridWh
	u.CO2Grams += v.CO2Grams
	u.ChargedWh += v.ChargedWh
	u.SpilledWh += v.SpilledWh
}

// maxRun bounds one Run call so a bad duration cannot loop for long.
const maxRun = 10 * 366 * 24 * time.Hour

// Run advances the site over [start, start+d) with the device drawing
// deviceWatts (use the profile's IdleWatts between jobs so the battery
// charges) and returns where the energy came from. Traces are hourly
// steps, so the interval is cut at hour boundaries and each piece is
// exact.
func (s *Site) Run(start time.Time, d time.Duration, deviceWatts float64) (Usage, error) {
	var u Usage
	if d < 0 || d > maxRun {
		return u, gridmind.E(gridmind.KindInvalid, "energy.run", "duration %s: want 0..%s", d, maxRun)
	}
	if math.IsNaN(deviceWatts) || deviceWatts < 0 || deviceWatts > maxDeviceWatts {
		return u, gridmind.E(gridmind.KindInvalid, "energy.run", "device watts %v: want 0..%d", deviceWatts, maxDeviceWatts)
	}
	t := start.UTC()
	end := t.Add(d)
	for t.Before(end) {
		next := s.nextBoundary(t)
		if next.After(end) {
			next = end
		}
		s.step(&u, t, next.Sub(t).Hours(), deviceWatts)
		t = next
	}
	return u, nil
}

// Account runs a piece of work, advancing the battery.
func (s *Site) Account(w Work) (Usage, error) { return s.Run(w.Start, w.Duration, w.BusyWatts) }

// Estimate is Account without changing the site.
func (s *Site) Estimate(w Work) (Usage, error) { return s.Clone().Account(w) }

// nextBoundary is the next instant after t where any trace changes value:
// the next UTC hour (carbon) or the next local hour (PV, load), which
// differ for zones with a fractional-hour offset.
func (s *Site) nextBoundary(t time.Time) time.Time {
	utc := t.Truncate(time.Hour).Add(time.Hour)
	local := t.Add(s.offset).Truncate(time.Hour).Add(time.Hour).Add(-s.offset)
	if local.Before(utc) && local.After(t) {
		return local
	}
	return utc
}

// step accounts one piece of constant power: hours long, inside one trace hour.
func (s *Site) step(u *Usage, t time.Time, hours, deviceWatts float64) {
	surplus := s.SurplusWatts(t)
	direct := min(surplus, deviceWatts)
	needWh := (deviceWatts - direct) * hours
	excessWh := (surplus - direct) * hours

	fromBattery := min(needWh, s.maxW*hours, s.batteryWh)
	s.batteryWh -= fromBattery
	gridWh := needWh - fromBattery

	charged := min(excessWh, s.maxW*hours, s.capWh-s.batteryWh)
	charged = max(charged, 0)
	s.batteryWh += charged

	u.EnergyWh += deviceWatts * hours
	u.SolarWh += direct * hours
	u.BatteryWh += fromBattery
	u.GridWh += gridWh
	u.CO2Grams += gridWh / 1000 * s.CarbonIntensity(t)
	u.ChargedWh += charged
	u.SpilledWh += excessWh - charged
}
