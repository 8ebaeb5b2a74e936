package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/energy/powermeter"
)

// EnergyMonitor follows a node's site (solar, battery, load, grid zone)
// and its device's draw, for heartbeats and for accounting each job.
type EnergyMonitor struct {
	mu    sync.Mutex
	site  *energy.Site
	meter *powermeter.Meter
	busy  atomic.Bool
	// Clock is the energy model's time; the demo runs it at a chosen hour
	// of the traces' year rather than the wall clock.
	Clock func() time.Time

	readingMu sync.Mutex
	reading   powermeter.Reading
	readAt    time.Time
}

// NewEnergyMonitor builds the site model from a profile. Device power is
// measured (RAPL, NVML) when the machine allows it and measure is true;
// otherwise the profile's idle and busy watts are used.
func NewEnergyMonitor(p energy.Profile, measure bool, clock func() time.Time) (*EnergyMonitor, error) {
	site, err := energy.NewSite(p)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = time.Now
	}
	m := &EnergyMonitor{site: site, Clock: clock}
	if measure {
		m.meter = &powermeter.Meter{}
	}
	return m, nil
}

// SetBusy says whether the device is working (training or serving).
func (m *EnergyMonitor) SetBusy(b bool) { m.busy.Store(b) }

// Busy reports what SetBusy last said.
func (m *EnergyMonitor) Busy() bool { return m.busy.Load() }

// Profile is the site's profile.
func (m *EnergyMonitor) Profile() energy.Profile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.site.Profile()
}

// deviceWatts is the measured draw if a meter works, else the configured one.
func (m *EnergyMonitor) deviceWatts() (float64, string) {
	p := m.site.Profile()
	configured := p.IdleWatts
	if m.busy.Load() {
		configured = p.BusyWatts
	}
	if m.meter == nil {
		return configured, powermeter.SourceConfig
	}
	m.readingMu.Lock()
	defer m.readingMu.Unlock()
	if time.Since(m.readAt) > 5*time.Second {
		m.meter.ConfiguredWatts = configured
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m.reading = m.meter.Read(ctx)
		cancel()
		m.readAt = time.Now()
	}
	if m.reading.Source == powermeter.SourceConfig {
		return configured, powermeter.SourceConfig
	}
	return m.reading.Watts, m.reading.Source
}

// State is the energy state for a heartbeat.
func (m *EnergyMonitor) State() gridmind.EnergyState {
	m.mu.Lock()
	defer m.mu.Unlock()
	watts, source := m.deviceWatts()
	return m.site.State(m.Clock(), watts, source, 6)
}

// Account charges a piece of work to the site (advancing its battery) and
// says where the energy came from.
func (m *EnergyMonitor) Account(start time.Time, d time.Duration, busyWatts float64) (energy.Usage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if busyWatts <= 0 {
		busyWatts = m.site.Profile().BusyWatts
	}
	return m.site.Account(energy.Work{Start: start, Duration: d, BusyWatts: busyWatts})
}

// ForecastSurplusWh is the surplus energy expected over the next d.
func (m *EnergyMonitor) ForecastSurplusWh(d time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.site.ForecastSurplusWh(m.Clock(), d, energy.DefaultForecast)
}
