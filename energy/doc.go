// Package energy models a node's energy: solar panels, a battery, a
// household load and a grid zone, driven by real hourly traces embedded in
// the binary (Electricity Maps carbon intensity for eight zones, three
// measured PV plants, one household; see data/README.md for sources and
// licences).
//
// Build a Site from a Profile and ask it about a time:
//
//	site, err := energy.NewSite(profile)
//	w := site.SurplusWatts(t)                          // solar beyond the household load
//	g := site.CarbonIntensity(t)                       // gCO2/kWh from the grid
//	wh := site.ForecastSurplusWh(t, 4*time.Hour, energy.DefaultForecast)
//	u, err := site.Account(energy.Work{Start: t, Duration: time.Hour, BusyWatts: 300})
//	share := u.RenewableShare()                        // of the work's energy
//	hb := site.State(t, watts, "rapl", 4)              // gridmind.EnergyState for heartbeats
//
// The package is pure: time is an argument, there is no I/O beyond the
// embedded files, and the same inputs give the same outputs. Reading the
// device's real power draw is the job of the energy/powermeter subpackage.
package energy
