package node

import (
	"testing"
	"time"

	"github.com/gridmind/gridmind/energy"
)

func TestEnergyMonitorFollowsBusyAndClock(t *testing.T) {
	noon := time.Date(2023, 6, 21, 12, 0, 0, 0, time.UTC)
	p := energy.Profile{Zone: "DE-LU", UTCOffsetMinutes: 60, SolarPeakKW: 5, SolarTrace: "turin", IdleWatts: 20, BusyWatts: 200}
	m, err := NewEnergyMonitor(p, false, func() time.Time { return noon })
	if err != nil {
		t.Fatal(err)
	}
	idle := m.State()
	m.SetBusy(true)
	busy := m.State()
	if !m.Busy() {
		t.Fatal("Busy does not report SetBusy")
	}
	if idle.Zone != "DE-LU" || idle.PowerSource != "config" || idle.DeviceWatts != 20 || busy.DeviceWatts != 200 {
		t.Fatalf("idle %+v busy %+v", idle, busy)
	}
	if idle.SolarWatts <= 0 || idle.CarbonGPerKWh <= 0 {
		t.Fatalf("a 5 kWp plant at midsummer noon must produce, and the grid has a carbon intensity: %+v", idle)
	}
	midnight := noon.Add(12 * time.Hour)
	m.Clock = func() time.Time { return midnight }
	if night := m.State(); night.SolarWatts != 0 {
		t.Fatalf("solar at midnight: %v W", night.SolarWatts)
	}
}
