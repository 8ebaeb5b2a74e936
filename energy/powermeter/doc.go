// Package powermeter reads how much power the compute device draws now:
// from the CPU's RAPL counters (/sys/class/powercap) when they are
// readable, from nvidia-smi (NVML) when that binary exists, and otherwise
// from the configured watts. Unlike its parent package energy it does I/O.
//
//	m := &powermeter.Meter{ConfiguredWatts: 300}
//	r := m.Read(ctx) // r.Watts, r.Source is "rapl", "nvml", "rapl+nvml" or "config"
//
// Put r.Source in the node's status and heartbeats (gridmind.EnergyState.PowerSource)
// so that anyone reading the number knows whether it was measured.
package powermeter
