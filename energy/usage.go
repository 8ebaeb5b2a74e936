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

// Usage is where a device's energy came from over an interval. The
// household takes the site's solar first and the battery first; the device
// takes the surplus solar left after the household, then what the battery
// holds beyond the household's draw, then the grid; surplus nobody takes
// charges the battery (losing the round-trip loss on the way in), and what
// is left is spilled (exported or curtailed).
type Usage struct {
	EnergyWh  float64 `json:"energy_wh"`  // the device's energy
	SolarWh   float64 `json:"solar_wh"`   // of which direct surplus solar
	BatteryWh float64 `json:"battery_wh"` // of which from the battery (charged only from surplus)
	GridWh    float64 `json:"grid_wh"`    // of which from the grid
	CO2Grams  float64 `json:"co2_g"`      // grid energy times the zone's intensity, hour by hour
	// DisplacedCO2Grams counts all of the device's energy at the grid's
	// intensity of its hour: surplus the device used would otherwise have
	// been exported and displaced grid power, so by this measure it is not
	// free. It is the honest companion of CO2Grams (attributional).
	DisplacedCO2Grams float64 `json:"co2_displacement_g"`
	ChargedWh         float64 `json:"charged_wh"`       // surplus taken into the battery (before losses)
	LossWh            float64 `json:"loss_wh"`          // of which lost to the round trip
	SpilledWh         float64 `json:"spilled_wh"`       // surplus neither used nor stored
	HouseBatteryWh    float64 `json:"house_battery_wh"` // battery energy the household used
	HouseGridWh       float64 `json:"house_grid_wh"`    // grid energy the household used
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
	u.DisplacedCO2Grams += v.DisplacedCO2Grams
	u.ChargedWh += v.ChargedWh
	u.LossWh += v.LossWh
	u.SpilledWh += v.SpilledWh
	u.HouseBatteryWh += v.HouseBatteryWh
	u.HouseGridWh += v.HouseGridWh
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
	s.stepWith(u, s.SolarWatts(t), s.LoadWatts(t), s.CarbonIntensity(t), hours, deviceWatts)
}

// stepWith accounts hours of constant solar, household load and device
// draw: the household first (solar, then battery, then grid), then the
// device (the solar left, then the battery, then the grid), then the
// battery charges from what is left, storing RoundTrip of it.
func (s *Site) stepWith(u *Usage, solar, load, carbon, hours, deviceWatts float64) {
	house := min(solar, load)
	houseNeedWh := (load - house) * hours
	surplus := solar - house
	direct := min(surplus, deviceWatts)
	needWh := (deviceWatts - direct) * hours
	excessWh := (surplus - direct) * hours

	limitWh := s.maxW * hours
	toHouse := min(houseNeedWh, limitWh, s.batteryWh)
	s.batteryWh -= toHouse
	fromBattery := min(needWh, limitWh-toHouse, s.batteryWh)
	fromBattery = max(fromBattery, 0)
	s.batteryWh -= fromBattery
	gridWh := needWh - fromBattery

	var charged float64
	if s.eff > 0 {
		charged = max(min(excessWh, limitWh, (s.capWh-s.batteryWh)/s.eff), 0)
	}
	s.batteryWh = min(s.batteryWh+charged*s.eff, s.capWh)

	u.EnergyWh += deviceWatts * hours
	u.SolarWh += direct * hours
	u.BatteryWh += fromBattery
	u.GridWh += gridWh
	u.CO2Grams += gridWh / 1000 * carbon
	u.DisplacedCO2Grams += deviceWatts * hours / 1000 * carbon
	u.ChargedWh += charged
	u.LossWh += charged * (1 - s.eff)
	u.SpilledWh += excessWh - charged
	u.HouseBatteryWh += toHouse
	u.HouseGridWh += houseNeedWh - toHouse
}
