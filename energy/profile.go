package energy

import (
	"math"
	"time"

	"github.com/gridmind/gridmind"
)

// Profile describes a node's energy setup. It is a plain document (JSON)
// so a provider can register it on the ledger and anyone can rebuild the
// same Site from it.
//
// Time alignment. Carbon traces are indexed by the UTC hour. The PV plants
// (Almería, Turin, Utrecht) all sit within 31 minutes of solar UTC, so a
// plant's hour h of UTC is read as hour h of the node's local clock: the
// sun rises at the node's local morning whatever its zone. The household
// trace is on a French clock without daylight-saving jumps, and is read
// the same way, by the node's local hour, which carries the household's
// morning and evening peaks to the node's local day (for a node in France,
// UTC+1, this is exactly the household's own clock). Southern-hemisphere
// nodes read PV and load 182 days (whole days, so noon stays noon) later,
// so that their summer falls in January.
type Profile struct {
	Name             string `json:"name,omitempty"`
	Zone             string `json:"zone"`           // Electricity Maps zone id with a carbon trace, e.g. "GB"
	UTCOffsetMinutes int    `json:"utc_offset_min"` // the node's local standard time
	Southern         bool   `json:"southern,omitempty"`

	SolarPeakKW float64 `json:"solar_peak_kw,omitempty"`
	SolarTrace  string  `json:"solar_trace,omitempty"` // "almeria", "turin" or "utrecht"

	BatteryKWh        float64 `json:"battery_kwh,omitempty"`
	BatteryMaxKW      float64 `json:"battery_max_kw,omitempty"`      // charge and discharge limit; 0 means BatteryKWh/2 (a C/2 battery)
	BatteryInitialPct float64 `json:"battery_initial_pct,omitempty"` // charge state a new Site starts with, 0..100
	// BatteryRoundTripPct is the share of the energy put into the battery
	// that comes back out, 1..100; 0 means DefaultRoundTripPct.
	BatteryRoundTripPct float64 `json:"battery_round_trip_pct,omitempty"`

	LoadTrace string  `json:"load_trace,omitempty"` // "sceaux"
	LoadScale float64 `json:"load_scale,omitempty"` // multiplies the household load; 0 means no load

	IdleWatts float64 `json:"idle_w"` // the compute device's draw when idle
	BusyWatts float64 `json:"busy_w"` // and when working
}

// Limits that keep a profile physically plausible; beyond them a profile
// is almost certainly a unit mistake (W for kW).
const (
	maxSolarPeakKW  = 100_000
	maxBatteryKWh   = 1_000_000
	maxDeviceWatts  = 1_000_000
	maxLoadScale    = 10_000
	maxOffsetMinute = 14 * 60
)

func validNumber(v, max float64) bool { return !math.IsNaN(v) && v >= 0 && v <= max }

// Validate reports the first problem with the profile, naming the field.
func (p *Profile) Validate() error {
	const op = "energy.profile"
	bad := func(format string, args ...any) error { return gridmind.E(gridmind.KindInvalid, op, format, args...) }
	if _, ok := ZoneByID(p.Zone); !ok {
		return bad("zone %q: not one of the known zones (see energy.Zones; add one with a carbon trace, docs/TRACES.md)", p.Zone)
	}
	if p.UTCOffsetMinutes < -maxOffsetMinute || p.UTCOffsetMinutes > maxOffsetMinute {
		return bad("utc_offset_min %d: want -840..840", p.UTCOffsetMinutes)
	}
	if !validNumber(p.SolarPeakKW, maxSolarPeakKW) {
		return bad("solar_peak_kw %v: want 0..%d", p.SolarPeakKW, maxSolarPeakKW)
	}
	if p.SolarPeakKW > 0 {
		if !hasTrace("solar/" + p.SolarTrace) {
			return bad("solar_trace %q: want one of %v", p.SolarTrace, SolarTraceNames())
		}
	}
	if !validNumber(p.BatteryKWh, maxBatteryKWh) {
		return bad("battery_kwh %v: want 0..%d", p.BatteryKWh, maxBatteryKWh)
	}
	if !validNumber(p.BatteryMaxKW, maxBatteryKWh) {
		return bad("battery_max_kw %v: want 0..%d", p.BatteryMaxKW, maxBatteryKWh)
	}
	if !validNumber(p.BatteryInitialPct, 100) {
		return bad("battery_initial_pct %v: want 0..100", p.BatteryInitialPct)
	}
	if !validNumber(p.BatteryRoundTripPct, 100) {
		return bad("battery_round_trip_pct %v: want 0 (the default, %v) or 1..100", p.BatteryRoundTripPct, DefaultRoundTripPct)
	}
	if !validNumber(p.LoadScale, maxLoadScale) {
		return bad("load_scale %v: want 0..%d", p.LoadScale, maxLoadScale)
	}
	if p.LoadScale > 0 {
		if !hasTrace("load/" + p.LoadTrace) {
			return bad("load_trace %q: want one of %v", p.LoadTrace, LoadTraceNames())
		}
	}
	if !validNumber(p.IdleWatts, maxDeviceWatts) {
		return bad("idle_w %v: want 0..%d", p.IdleWatts, maxDeviceWatts)
	}
	if !validNumber(p.BusyWatts, maxDeviceWatts) || p.BusyWatts == 0 {
		return bad("busy_w %v: want more than 0 and at most %d", p.BusyWatts, maxDeviceWatts)
	}
	if p.BusyWatts < p.IdleWatts {
		return bad("busy_w %v is below idle_w %v", p.BusyWatts, p.IdleWatts)
	}
	return nil
}

// DefaultRoundTripPct is the battery's round-trip efficiency when a
// profile does not say: a typical lithium home battery with its inverter.
const DefaultRoundTripPct = 90

// southernShiftHours moves a trace by 182 whole days: half a year, so the
// seasons flip, but a whole number of days, so noon stays at noon.
const southernShiftHours = 182 * 24

// Site is a Profile brought to life: its traces resolved and its battery's
// charge state. Queries (SolarWatts, SurplusWatts, Forecast, ...) are pure
// functions of the time; Run and Account advance the battery. A Site is
// not safe for concurrent use; Clone gives an independent copy.
type Site struct {
	profile   Profile
	solar     *Trace // nil without panels
	load      *Trace // nil without household load
	carbon    *Trace
	offset    time.Duration
	shift     int
	capWh     float64
	maxW      float64
	eff       float64 // round-trip efficiency, 0..1, charged on the way in
	batteryWh float64
}

// NewSite validates p, resolves its traces and charges its battery to
// BatteryInitialPct.
func NewSite(p Profile) (*Site, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := &Site{profile: p, offset: time.Duration(p.UTCOffsetMinutes) * time.Minute}
	var err error
	if s.carbon, err = CarbonTrace(p.Zone); err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "energy.site", "%w", err)
	}
	if p.SolarPeakKW > 0 {
		if s.solar, err = SolarTrace(p.SolarTrace); err != nil {
			return nil, gridmind.E(gridmind.KindInternal, "energy.site", "%w", err)
		}
	}
	if p.LoadScale > 0 {
		if s.load, err = LoadTrace(p.LoadTrace); err != nil {
			return nil, gridmind.E(gridmind.KindInternal, "energy.site", "%w", err)
		}
	}
	if p.Southern {
		s.shift = southernShiftHours
	}
	s.capWh = p.BatteryKWh * 1000
	s.maxW = p.BatteryMaxKW * 1000
	if s.maxW == 0 {
		s.maxW = s.capWh / 2
	}
	s.eff = DefaultRoundTripPct / 100.0
	if p.BatteryRoundTripPct > 0 {
		s.eff = p.BatteryRoundTripPct / 100
	}
	s.batteryWh = s.capWh * p.BatteryInitialPct / 100
	return s, nil
}

// Clone returns an independent copy (traces are shared, they are read-only).
func (s *Site) Clone() *Site {
	c := *s
	return &c
}

// Profile returns the profile the site was built from.
func (s *Site) Profile() Profile { return s.profile }

// localHour is the index into the PV and load traces for time t.
func (s *Site) localHour(t time.Time) int {
	return HourOfYear(t.UTC().Add(s.offset)) + s.shift
}

// SolarWatts is the PV output at t.
func (s *Site) SolarWatts(t time.Time) float64 {
	if s.solar == nil {
		return 0
	}
	return s.profile.SolarPeakKW * 1000 * s.solar.At(s.localHour(t))
}

// LoadWatts is the household (site) load at t, the compute device excluded.
func (s *Site) LoadWatts(t time.Time) float64 {
	if s.load == nil {
		return 0
	}
	return s.profile.LoadScale * 1000 * s.load.At(s.localHour(t))
}

// SurplusWatts is the solar power left over after the household load at t:
// power that would otherwise be exported or curtailed. It excludes the
// battery; State reports what the battery adds.
func (s *Site) SurplusWatts(t time.Time) float64 {
	return max(0, s.SolarWatts(t)-s.LoadWatts(t))
}

// CarbonIntensity is the grid's direct carbon intensity at t, in gCO2/kWh.
func (s *Site) CarbonIntensity(t time.Time) float64 {
	return s.carbon.At(HourOfYear(t.UTC()))
}

// BatteryWh is the energy now stored.
func (s *Site) BatteryWh() float64 { return s.batteryWh }

// BatteryCapacityWh is the battery's size (0 without a battery).
func (s *Site) BatteryCapacityWh() float64 { return s.capWh }

// BatteryMaxWatts is the battery's charge and discharge limit, with the
// profile's default (BatteryKWh/2) applied.
func (s *Site) BatteryMaxWatts() float64 { return s.maxW }

// BatteryRoundTrip is the share of the energy put into the battery that
// comes back out (0..1), with the profile's default applied.
func (s *Site) BatteryRoundTrip() float64 { return s.eff }

// SetBatteryWh sets the stored energy, clamped to 0..capacity.
func (s *Site) SetBatteryWh(wh float64) {
	if math.IsNaN(wh) {
		wh = 0
	}
	s.batteryWh = min(max(wh, 0), s.capWh)
}

// BatteryPercent is the charge state, 0..100 (0 without a battery).
func (s *Site) BatteryPercent() float64 {
	if s.capWh == 0 {
		return 0
	}
	return 100 * s.batteryWh / s.capWh
}

// batteryAvailableWatts is what the battery could give the device now,
// sustained for an hour: the lesser of its power limit and its stored
// energy spread over the hour, less what the household draws from it now
// (the household comes first).
func (s *Site) batteryAvailableWatts(t time.Time) float64 {
	houseDeficit := max(0, s.LoadWatts(t)-s.SolarWatts(t))
	return max(0, min(s.maxW, s.batteryWh)-houseDeficit)
}

// State is the site's live energy situation for a heartbeat: deviceWatts
// is the device's draw now and powerSource where that number came from
// ("nvml", "rapl" or "config", see energy/powermeter). SurplusWatts adds
// what the battery can deliver to the solar surplus; ForecastSurplus is
// the solar surplus expected over the next forecastHours with the default
// forecast method.
func (s *Site) State(t time.Time, deviceWatts float64, powerSource string, forecastHours int) gridmind.EnergyState {
	st := gridmind.EnergyState{
		Zone:           s.profile.Zone,
		SolarWatts:     s.SolarWatts(t),
		LoadWatts:      s.LoadWatts(t),
		DeviceWatts:    deviceWatts,
		SurplusWatts:   s.SurplusWatts(t) + s.batteryAvailableWatts(t),
		BatteryPercent: s.BatteryPercent(),
		CarbonGPerKWh:  s.CarbonIntensity(t),
		PowerSource:    powerSource,
	}
	if forecastHours > 0 {
		st.ForecastSurplus = s.ForecastSurplusWh(t, time.Duration(forecastHours)*time.Hour, DefaultForecast)
	}
	return st
}
