package energy

import (
	"testing"
	"time"
)

// TestOutlookServesTheHouseholdFirst: in the evening a full battery looks
// like free energy, but the household needs it for the night; Outlook
// counts only what the household can spare.
func TestOutlookServesTheHouseholdFirst(t *testing.T) {
	prof := Profile{
		Zone: "DE-LU", UTCOffsetMinutes: 60, SolarPeakKW: 5, SolarTrace: "utrecht",
		BatteryKWh: 5, BatteryInitialPct: 100, BatteryRoundTripPct: 100,
		LoadTrace: "sceaux", LoadScale: 1, IdleWatts: 50, BusyWatts: 1000,
	}
	s, err := NewSite(prof)
	if err != nil {
		t.Fatal(err)
	}
	evening := time.Date(2023, 6, 21, 19, 0, 0, 0, time.UTC) // 20:00 local
	o := s.Outlook(evening, 4*time.Hour, 1000, DefaultForecast)
	if o.EnergyWh != 4000 {
		t.Fatalf("energy %v", o.EnergyWh)
	}
	if o.HouseholdShortWh <= 0 {
		t.Errorf("a 4 kWh evening run from a 5 kWh battery leaves the household short by %v Wh", o.HouseholdShortWh)
	}
	// The household's evening peak takes most of the battery's 2.5 kW, and
	// the night needs the rest: whatever the device gets is missed later.
	if cov := o.Coverage(); cov >= o.BatteryWh/o.EnergyWh {
		t.Errorf("coverage %v, want below the naive battery share %v", cov, o.BatteryWh/o.EnergyWh)
	}
	// A 40 kWh battery (20 kW) carries both the run and the night.
	big := prof
	big.BatteryKWh = 40
	sb, _ := NewSite(big)
	if ob := sb.Outlook(evening, 4*time.Hour, 1000, DefaultForecast); ob.HouseholdShortWh != 0 || ob.Coverage() < 0.999 {
		t.Errorf("big battery: %+v", ob)
	}
	if s.BatteryWh() != 5000 {
		t.Error("Outlook changed the battery")
	}
	// Without a household the same run takes the battery with nobody short.
	prof.LoadScale = 0
	s2, _ := NewSite(prof)
	if o2 := s2.Outlook(evening, 4*time.Hour, 1000, DefaultForecast); o2.HouseholdShortWh != 0 || o2.BatteryWh < 4000-1e-9 {
		t.Errorf("no household: %+v", o2)
	}
	// At noon in June the panels cover a 1 kW run from the forecast alone.
	noon := time.Date(2023, 6, 21, 10, 0, 0, 0, time.UTC)
	if c := s.Outlook(noon, 2*time.Hour, 1000, DefaultForecast).Coverage(); c < 0.9 {
		t.Errorf("noon coverage %v", c)
	}
	// A run into the night on a site without a battery is mostly grid.
	prof.BatteryKWh, prof.LoadScale = 0, 1
	s3, _ := NewSite(prof)
	if c := s3.Outlook(evening, 6*time.Hour, 1000, DefaultForecast).Coverage(); c > 0.2 {
		t.Errorf("night without battery: coverage %v", c)
	}
}
