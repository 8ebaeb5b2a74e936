package energy

import "fmt"

// Preset kinds, cycled so that every zone gets every kind.
var presetKinds = []string{"grid", "solar", "solar+battery", "microgrid"}

// Presets returns n diverse, deterministic profiles for demos, the
// simulator and benchmarks. Profile i sits in zone i mod 8 (so consecutive
// nodes walk around the world) and is of kind (i/8) mod 4:
//
//	grid           no panels, no battery: the grid's carbon only
//	solar          4–8 kWp of panels and a household load, no battery
//	solar+battery  6–10 kWp, a 10–13.5 kWh battery starting half full
//	microgrid      20–40 kWp, 40–60 kWh, a small business's load (3x)
//
// Sizes and device draws vary with i by fixed arithmetic, not randomness,
// so the same n always gives the same profiles.
func Presets(n int) []Profile {
	if n <= 0 {
		return nil
	}
	out := make([]Profile, n)
	for i := range out {
		z := zones[i%len(zones)]
		kind := presetKinds[(i/len(zones))%len(presetKinds)]
		v := float64((i*37+11)%101) / 100 // 0..1, a fixed spread
		p := Profile{
			Name:             fmt.Sprintf("%s-%s-%d", z.ID, kind, i),
			Zone:             z.ID,
			UTCOffsetMinutes: z.UTCOffsetMinutes,
			Southern:         z.Southern,
			LoadTrace:        "sceaux",
			LoadScale:        1,
			IdleWatts:        30 + 50*v,   // 30–80 W
			BusyWatts:        150 + 300*v, // 150–450 W: a workstation GPU
		}
		switch kind {
		case "solar":
			p.SolarPeakKW, p.SolarTrace = 4+4*v, z.SolarTrace
		case "solar+battery":
			p.SolarPeakKW, p.SolarTrace = 6+4*v, z.SolarTrace
			p.BatteryKWh, p.BatteryInitialPct = 10+3.5*v, 50
		case "microgrid":
			p.SolarPeakKW, p.SolarTrace = 20+20*v, z.SolarTrace
			p.BatteryKWh, p.BatteryInitialPct = 40+20*v, 50
			p.LoadScale = 3
		}
		out[i] = p
	}
	return out
}
