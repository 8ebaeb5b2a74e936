package energy

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(b)) }

// germanSolar is a node in Germany (UTC+1) with 5 kWp on the Utrecht
// trace, the Sceaux household load, no battery and a 2 kW server.
func germanSolar(t *testing.T) *Site {
	t.Helper()
	s, err := NewSite(Profile{
		Zone: "DE-LU", UTCOffsetMinutes: 60,
		SolarPeakKW: 5, SolarTrace: "utrecht",
		LoadTrace: "sceaux", LoadScale: 1,
		IdleWatts: 100, BusyWatts: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Row values from ../shared/data, quoted with file and 1-based line
// (line 1 is the header):
const (
	// 2023-06-21 11:00 UTC is 12:00 local in Germany: hour of year 171*24+12 = 4116.
	utrecht4116   = 0.602446634240203  // Utrecht_meas_sim.csv line 4118, Utrecht2015 PV-MEAS
	utrecht4117   = 0.334494205841816  // Utrecht_meas_sim.csv line 4119
	sceaux0621h12 = 0.1857             // household_power_consumption_hourly.csv line 4485, 2007-06-21 12:00:00
	sceaux0621h13 = 0.2704666666666667 // line 4486, 2007-06-21 13:00:00
	de0621h11     = 235.69             // DE-LU_2023_hourly.csv line 4117, 2023-06-21 11:00:00, direct
	de0621h12     = 238.64             // DE-LU_2023_hourly.csv line 4118, 2023-06-21 12:00:00
)

func TestSiteAtHourByHand(t *testing.T) {
	s := germanSolar(t)
	at := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"solar", s.SolarWatts(at), 5000 * utrecht4116},
		{"load", s.LoadWatts(at), 1000 * sceaux0621h12},
		{"surplus", s.SurplusWatts(at), 5000*utrecht4116 - 1000*sceaux0621h12},
		{"carbon", s.CarbonIntensity(at), de0621h11},
		// Within the hour the traces are steps: 11:59 reads the same rows.
		{"surplus 11:59", s.SurplusWatts(at.Add(59 * time.Minute)), 5000*utrecht4116 - 1000*sceaux0621h12},
		{"carbon 12:00", s.CarbonIntensity(at.Add(time.Hour)), de0621h12},
		// The same instant in another time zone is the same instant.
		{"surplus in CET", s.SurplusWatts(at.In(time.FixedZone("CET", 3600))), 5000*utrecht4116 - 1000*sceaux0621h12},
	}
	for _, tt := range tests {
		if !near(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestAccountByHand(t *testing.T) {
	surplus1 := 5000*utrecht4116 - 1000*sceaux0621h12 // 2826.53 W, more than the 2 kW device
	surplus2 := 5000*utrecht4117 - 1000*sceaux0621h13 // 1402.00 W, less
	tests := []struct {
		name string
		work Work
		want Usage
	}{{
		name: "two whole hours",
		work: Work{Start: time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC), Duration: 2 * time.Hour, BusyWatts: 2000},
		want: Usage{
			EnergyWh:  4000,
			SolarWh:   2000 + surplus2,
			GridWh:    2000 - surplus2,
			CO2Grams:  (2000 - surplus2) / 1000 * de0621h12,
			SpilledWh: surplus1 - 2000,
		},
	}, {
		name: "one hour across the boundary",
		work: Work{Start: time.Date(2023, 6, 21, 11, 30, 0, 0, time.UTC), Duration: time.Hour, BusyWatts: 2000},
		want: Usage{
			EnergyWh:  2000,
			SolarWh:   1000 + surplus2/2,
			GridWh:    (2000 - surplus2) / 2,
			CO2Grams:  (2000 - surplus2) / 2 / 1000 * de0621h12,
			SpilledWh: (surplus1 - 2000) / 2,
		},
	}, {
		name: "night, all grid",
		// 2023-06-21 22:00 UTC is 23:00 in Germany: no sun in Utrecht at 23:00 UTC.
		// DE-LU_2023_hourly.csv line 4128, 2023-06-21 22:00:00, direct 470.56.
		work: Work{Start: time.Date(2023, 6, 21, 22, 0, 0, 0, time.UTC), Duration: time.Hour, BusyWatts: 2000},
		// The household's 23:00 draw (line 4496, 0.49656666666666666 kW) is from the grid too.
		want: Usage{EnergyWh: 2000, GridWh: 2000, CO2Grams: 2 * 470.56, DisplacedCO2Grams: 2 * 470.56, HouseGridWh: 496.56666666666666},
	}}
	for _, tt := range tests {
		s := germanSolar(t)
		got, err := s.Account(tt.work)
		if err != nil {
			t.Fatal(err)
		}
		if !usageNear(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
		if share := got.RenewableShare(); !near(share, tt.want.SolarWh/tt.want.EnergyWh) {
			t.Errorf("%s: renewable share %v", tt.name, share)
		}
	}
}

func usageNear(a, b Usage) bool {
	return near(a.EnergyWh, b.EnergyWh) && near(a.SolarWh, b.SolarWh) && near(a.BatteryWh, b.BatteryWh) &&
		near(a.GridWh, b.GridWh) && near(a.CO2Grams, b.CO2Grams) && near(a.ChargedWh, b.ChargedWh) && near(a.SpilledWh, b.SpilledWh) &&
		near(a.LossWh, b.LossWh) && near(a.HouseBatteryWh, b.HouseBatteryWh) && near(a.HouseGridWh, b.HouseGridWh) &&
		(b.DisplacedCO2Grams == 0 || near(a.DisplacedCO2Grams, b.DisplacedCO2Grams))
}

// TestBatteryByHand follows a Sydney microgrid through a sunny morning
// that fills its battery and an evening job that empties it.
func TestBatteryByHand(t *testing.T) {
	s, err := NewSite(Profile{
		Zone: "AU-NSW", UTCOffsetMinutes: 600, Southern: true,
		SolarPeakKW: 8, SolarTrace: "almeria",
		BatteryKWh:          10,  // BatteryMaxKW 0: a C/2 battery, 5 kW
		BatteryRoundTripPct: 100, // losses are TestBatteryLosses's
		LoadTrace:           "sceaux", LoadScale: 1,
		IdleWatts: 50, BusyWatts: 6000,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 2023-01-10 00:00 UTC is 10:00 in Sydney; a southern node reads its
	// summer from 182 days later: hour 9*24+10+4368 = 4594, 11 July.
	const (
		pv4594 = 0.7233557674963925 // Almeria_meas_sim.csv line 4596, Almeria2023 PV-MEAS
		pv4595 = 0.7857744107744108 // line 4597
		pv4596 = 0.7944136303511303 // line 4598
		// household_power_consumption_hourly.csv lines 4963-4965, 2007-07-11 10:00, 11:00, 12:00
		load10, load11, load12 = 1.2259666666666666, 0.43716666666666665, 0.22056666666666666
		// AU-NSW_2023_hourly.csv lines 229-230, 2023-01-10 11:00 and 12:00 UTC
		au11, au12 = 541.13, 540.06
		// household_power_consumption_hourly.csv lines 4974-4975, 2007-07-11 21:00 and 22:00
		load21, load22 = 0.24093333333333333, 0.2044
	)
	morning := time.Date(2023, 1, 10, 0, 0, 0, 0, time.UTC)
	idle, err := s.Run(morning, 3*time.Hour, 50)
	if err != nil {
		t.Fatal(err)
	}
	excess1 := 8000*pv4594 - 1000*load10 - 50 // 4510.9 Wh: all stored
	excess2 := 8000*pv4595 - 1000*load11 - 50 // 5799.0 Wh: 5000 stored (power limit)
	excess3 := 8000*pv4596 - 1000*load12 - 50 // 6084.7 Wh: only the room left
	room3 := 10000 - excess1 - 5000
	want := Usage{
		EnergyWh: 150, SolarWh: 150, DisplacedCO2Grams: idle.DisplacedCO2Grams,
		ChargedWh: excess1 + 5000 + room3,
		SpilledWh: (excess2 - 5000) + (excess3 - room3),
	}
	if !usageNear(idle, want) {
		t.Errorf("morning:\n got %+v\nwant %+v", idle, want)
	}
	if s.BatteryPercent() != 100 {
		t.Errorf("battery %v%% after the morning, want 100", s.BatteryPercent())
	}
	// 11:00-13:00 UTC is 21:00-23:00 in Sydney: Almeria lines 4607-4608 are 0.
	job := Work{Start: morning.Add(11 * time.Hour), Duration: 2 * time.Hour, BusyWatts: 6000}
	est, err := s.Estimate(job)
	if err != nil {
		t.Fatal(err)
	}
	if s.BatteryWh() != 10000 {
		t.Fatal("Estimate changed the battery")
	}
	got, err := s.Account(job)
	if err != nil {
		t.Fatal(err)
	}
	// The battery gives 5 kW each hour (its limit), the household's draw
	// first; the device gets the rest and the grid the remainder.
	grid1, grid2 := 6000-(5000-1000*load21), 6000-(5000-1000*load22)
	want = Usage{EnergyWh: 12000, BatteryWh: 10000 - 1000*(load21+load22), GridWh: grid1 + grid2,
		CO2Grams: grid1/1000*au11 + grid2/1000*au12, DisplacedCO2Grams: 6*au11 + 6*au12, HouseBatteryWh: 1000 * (load21 + load22)}
	if !usageNear(got, want) || !usageNear(est, want) {
		t.Errorf("evening:\n got %+v\n est %+v\nwant %+v", got, est, want)
	}
	if s.BatteryWh() > 1e-6 {
		t.Errorf("battery %v Wh after the evening, want 0", s.BatteryWh())
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	s := germanSolar(t)
	at := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d time.Duration
		w float64
	}{{-time.Hour, 100}, {time.Hour, -1}, {time.Hour, math.NaN()}, {time.Hour, math.Inf(1)}, {100 * 366 * 24 * time.Hour, 1}} {
		if _, err := s.Run(at, tc.d, tc.w); gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("Run(%s, %v) = %v, want an invalid-input error", tc.d, tc.w, err)
		}
	}
	if u, err := s.Run(at, 0, 100); err != nil || u != (Usage{}) {
		t.Errorf("zero duration: %+v %v", u, err)
	}
}

func TestHouseholdAlignment(t *testing.T) {
	// A node in France (UTC+1) reads the household trace on its own clock:
	// 2023-06-21 11:00 UTC is 12:00 there, row 2007-06-21 12:00:00.
	fr, err := NewSite(Profile{Zone: "DE-LU", UTCOffsetMinutes: 60, LoadTrace: "sceaux", LoadScale: 2, BusyWatts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := fr.LoadWatts(time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)); !near(got, 2*1000*sceaux0621h12) {
		t.Errorf("load %v, want %v", got, 2*1000*sceaux0621h12)
	}
	// A node in Korea (UTC+9) has the same household noon at 03:00 UTC.
	kr, err := NewSite(Profile{Zone: "KR", UTCOffsetMinutes: 540, LoadTrace: "sceaux", LoadScale: 1, BusyWatts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.LoadWatts(time.Date(2023, 6, 21, 3, 0, 0, 0, time.UTC)); !near(got, 1000*sceaux0621h12) {
		t.Errorf("Korean load %v, want %v", got, 1000*sceaux0621h12)
	}
}

// TestSunFollowsLocalTime checks that every zone's panels produce at local
// noon and not at local midnight, and that southern summers fall in January.
func TestSunFollowsLocalTime(t *testing.T) {
	for _, z := range zones { // the embedded ones: other tests register test zones

		s, err := NewSite(Profile{Zone: z.ID, UTCOffsetMinutes: z.UTCOffsetMinutes, Southern: z.Southern, SolarPeakKW: 1, SolarTrace: z.SolarTrace, BusyWatts: 1})
		if err != nil {
			t.Fatal(err)
		}
		var noon, midnight, jan, jul float64
		for day := 0; day < 365; day++ {
			d := time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, day).Add(-time.Duration(z.UTCOffsetMinutes) * time.Minute)
			noon += s.SolarWatts(d)
			midnight += s.SolarWatts(d.Add(12 * time.Hour))
			switch d.Add(time.Duration(z.UTCOffsetMinutes) * time.Minute).Month() {
			case time.January:
				jan += s.SolarWatts(d)
			case time.July:
				jul += s.SolarWatts(d)
			}
		}
		if noon < 100 || midnight != 0 {
			t.Errorf("%s: noon sum %.0f W, midnight sum %.0f W", z.ID, noon, midnight)
		}
		if z.Southern != (jan > jul) {
			t.Errorf("%s (southern %v): January noon %.0f W, July %.0f W", z.ID, z.Southern, jan, jul)
		}
	}
}

func TestState(t *testing.T) {
	s, err := NewSite(Profile{
		Zone: "DE-LU", UTCOffsetMinutes: 60, SolarPeakKW: 5, SolarTrace: "utrecht",
		BatteryKWh: 4, BatteryMaxKW: 1, BatteryInitialPct: 25,
		LoadTrace: "sceaux", LoadScale: 1, IdleWatts: 100, BusyWatts: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	got := s.State(at, 180, "config", 2)
	want := gridmind.EnergyState{
		Zone: "DE-LU", SolarWatts: 5000 * utrecht4116, LoadWatts: 1000 * sceaux0621h12, DeviceWatts: 180,
		// 1 kWh stored, 1 kW limit: the battery adds 1000 W for an hour.
		SurplusWatts:   5000*utrecht4116 - 1000*sceaux0621h12 + 1000,
		BatteryPercent: 25, CarbonGPerKWh: de0621h11, PowerSource: "config",
		// Slot 0 is now; slot 1 is yesterday's 12:00 UTC (13:00 local,
		// Utrecht_meas_sim.csv line 4095 = 0.307257413390803, household
		// line 4462, 2007-06-20 13:00 = 0.3837 kW).
		ForecastSurplus: (5000*utrecht4116 - 1000*sceaux0621h12) + (5000*0.307257413390803 - 1000*0.3837),
	}
	if !near(got.SolarWatts, want.SolarWatts) || !near(got.LoadWatts, want.LoadWatts) || !near(got.SurplusWatts, want.SurplusWatts) ||
		!near(got.ForecastSurplus, want.ForecastSurplus) || got.Zone != want.Zone || got.BatteryPercent != want.BatteryPercent ||
		got.CarbonGPerKWh != want.CarbonGPerKWh || got.PowerSource != want.PowerSource || got.DeviceWatts != want.DeviceWatts {
		t.Errorf("State:\n got %+v\nwant %+v", got, want)
	}
}

func TestProfileValidate(t *testing.T) {
	ok := Profile{Zone: "GB", SolarPeakKW: 4, SolarTrace: "utrecht", LoadTrace: "sceaux", LoadScale: 1, IdleWatts: 50, BusyWatts: 300}
	tests := []struct {
		name  string
		edit  func(*Profile)
		field string // "" means valid
	}{
		{"valid", func(*Profile) {}, ""},
		{"zone", func(p *Profile) { p.Zone = "FR" }, "zone"},
		{"offset", func(p *Profile) { p.UTCOffsetMinutes = 15 * 60 }, "utc_offset_min"},
		{"solar trace", func(p *Profile) { p.SolarTrace = "" }, "solar_trace"},
		{"no panels need no trace", func(p *Profile) { p.SolarPeakKW, p.SolarTrace = 0, "" }, ""},
		{"negative solar", func(p *Profile) { p.SolarPeakKW = -1 }, "solar_peak_kw"},
		{"NaN battery", func(p *Profile) { p.BatteryKWh = math.NaN() }, "battery_kwh"},
		{"charge", func(p *Profile) { p.BatteryInitialPct = 101 }, "battery_initial_pct"},
		{"load trace", func(p *Profile) { p.LoadTrace = "paris" }, "load_trace"},
		{"busy zero", func(p *Profile) { p.BusyWatts, p.IdleWatts = 0, 0 }, "busy_w"},
		{"busy below idle", func(p *Profile) { p.IdleWatts = 400 }, "busy_w"},
		{"idle inf", func(p *Profile) { p.IdleWatts = math.Inf(1) }, "idle_w"},
	}
	for _, tt := range tests {
		p := ok
		tt.edit(&p)
		err := p.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.field != "" && (err == nil || gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.field)):
			t.Errorf("%s: error %v, want an invalid-input error naming %s", tt.name, err, tt.field)
		}
		if _, err2 := NewSite(p); (err2 == nil) != (err == nil) {
			t.Errorf("%s: NewSite and Validate disagree: %v vs %v", tt.name, err2, err)
		}
	}
}

func TestProfileJSONRoundTrip(t *testing.T) {
	for _, p := range Presets(16) {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Profile
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back != p {
			t.Errorf("round trip changed %+v into %+v", p, back)
		}
	}
}

// TestRunSplitsAtLocalHours uses a half-hour time zone, where local
// hours (PV, load) and UTC hours (carbon) change at different instants;
// Run must cut at both.
func TestRunSplitsAtLocalHours(t *testing.T) {
	s, err := NewSite(Profile{Zone: "KR", UTCOffsetMinutes: 9*60 + 30, SolarPeakKW: 5, SolarTrace: "turin", LoadTrace: "sceaux", LoadScale: 1, BusyWatts: 1500})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2023, 5, 2, 2, 0, 0, 0, time.UTC) // 11:30 local
	var want Usage
	pieces := []struct{ from, to time.Duration }{{0, 30 * time.Minute}, {30 * time.Minute, 60 * time.Minute}, {60 * time.Minute, 90 * time.Minute}, {90 * time.Minute, 120 * time.Minute}}
	for _, pc := range pieces {
		at := start.Add(pc.from)
		h := (pc.to - pc.from).Hours()
		direct := min(s.SurplusWatts(at), 1500)
		want.EnergyWh += 1500 * h
		want.SolarWh += direct * h
		want.GridWh += (1500 - direct) * h
		want.CO2Grams += (1500 - direct) * h / 1000 * s.CarbonIntensity(at)
		want.SpilledWh += (s.SurplusWatts(at) - direct) * h
	}
	got, err := s.Run(start, 2*time.Hour, 1500)
	if err != nil {
		t.Fatal(err)
	}
	if !usageNear(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// The pieces really differ, or this test would prove nothing.
	if s.SurplusWatts(start) == s.SurplusWatts(start.Add(30*time.Minute)) {
		t.Error("the local hour boundary at 02:30 UTC changes nothing; pick another day")
	}
}
