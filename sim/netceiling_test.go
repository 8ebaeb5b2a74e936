package sim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridmind/gridmind/energy"
)

// TestMaxFlowMatchesMinCut checks the flow solver against the max-flow
// min-cut theorem on small random networks: the flow equals the least
// capacity of any cut separating source from sink, found by trying them
// all, and every arc's flow stays within its capacity.
func TestMaxFlowMatchesMinCut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 3000; trial++ {
		n := 2 + rng.IntN(9)
		type arc struct {
			u, v int
			c    int64
		}
		var arcs []arc
		f := newFlowNet(n)
		for k := rng.IntN(3 * n * n / 2); k > 0; k-- {
			a := arc{rng.IntN(n), rng.IntN(n), rng.Int64N(20)}
			if a.u == a.v {
				continue
			}
			arcs = append(arcs, a)
			f.arc(a.u, a.v, a.c)
		}
		got := f.maxFlow(0, 1)
		best := int64(1 << 62)
		for set := 0; set < 1<<n; set++ {
			if set&1 == 0 || set&2 != 0 { // the source side holds 0, not 1
				continue
			}
			var cut int64
			for _, a := range arcs {
				if set&(1<<a.u) != 0 && set&(1<<a.v) == 0 {
					cut += a.c
				}
			}
			best = min(best, cut)
		}
		if got != best {
			t.Fatalf("trial %d (%d vertices, %d arcs): flow %d, min cut %d", trial, n, len(arcs), got, best)
		}
		for k, a := range arcs {
			if fl := f.flowOf(2 * k); fl < 0 || fl > a.c {
				t.Fatalf("trial %d: arc %d→%d carries %d of %d", trial, a.u, a.v, fl, a.c)
			}
		}
	}
}

// TestNetCeilingBoundsOneSite checks the net ceiling's premise on single
// sites: for random on/off schedules of a device on preset sites (every
// kind, in June, December and late November), the energy the schedule
// really drew without extra grid import — against the same site with the
// device idle, households' import and a battery left emptier included —
// never exceeds the ceiling's flow for that one node. A stretch cap that
// forgot stored energy (a night worth nothing) or the avoided loss, a
// night held to its lowest charge over the morning's charging too, or a
// night's head without the loss avoided before it fails here.
func TestNetCeilingBoundsOneSite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	profiles := energy.Presets(64)
	step := 15 * time.Minute
	hours := step.Hours()
	steps := 4 * 24 * 3
	tight := 0
	for trial := 0; trial < 1000; trial++ {
		prof := profiles[rng.IntN(len(profiles))]
		start := []time.Time{time.Date(2023, 6, 21, 0, 0, 0, 0, time.UTC), time.Date(2023, 12, 21, 0, 0, 0, 0, time.UTC),
			time.Date(2023, 11, 21, 0, 0, 0, 0, time.UTC)}[rng.IntN(3)]
		site, err := energy.NewSite(prof)
		if err != nil {
			t.Fatal(err)
		}
		site.SetBatteryWh(rng.Float64() * site.BatteryCapacityWh())
		idle, busy := site.Clone(), site.Clone()
		var b netBudget
		if site.BatteryCapacityWh() == 0 {
			b.spillWh = []float32{}
		}
		var idleUse, busyUse energy.Usage
		extra := make([]float64, steps)
		on := rng.Float64() // this schedule's duty
		for s := 0; s < steps; s++ {
			at := start.Add(time.Duration(s) * step)
			before := idle.BatteryWh()
			v, err := idle.Run(at, step, prof.IdleWatts)
			if err != nil {
				t.Fatal(err)
			}
			b.observe(s, v.SpilledWh, v.LossWh, before)
			idleUse.Add(v)
			watts := prof.IdleWatts
			if rng.Float64() < on {
				watts = prof.BusyWatts
				extra[s] = (prof.BusyWatts - prof.IdleWatts) * hours
			}
			u, err := busy.Run(at, step, watts)
			if err != nil {
				t.Fatal(err)
			}
			busyUse.Add(u)
		}
		b.close(steps, idle.BatteryWh())
		var extraWh float64
		for _, e := range extra {
			extraWh += e
		}
		importWh := busyUse.GridWh + busyUse.HouseGridWh - idleUse.GridWh - idleUse.HouseGridWh
		netWh := extraWh - importWh - max(idle.BatteryWh()-busy.BatteryWh(), 0)
		bound, ok := netFlow([]netBudget{b}, steps, extra, func(int) float64 { return (prof.BusyWatts - prof.IdleWatts) * hours },
			func(int, int) bool { return true })
		if !ok {
			t.Fatal("a one-node network refused as too large")
		}
		if netWh > bound+1e-6*extraWh+1e-3 {
			t.Errorf("trial %d (%s from %s, duty %.2f): %.1f Wh drawn net of import, over the ceiling's %.1f Wh (extra %.1f Wh)",
				trial, prof.Name, start.Format("01-02"), on, netWh, bound, extraWh)
		}
		if bound > extraWh+1e-3 {
			t.Errorf("trial %d: ceiling %.1f Wh over the extra energy %.1f Wh", trial, bound, extraWh)
		}
		if netWh > 0.9*bound && netWh < extraWh-1e-3 {
			tight++
		}
	}
	// The bound must also bind: on sites where part of the energy could
	// not be covered, it should often lie near what was covered.
	if tight < 50 {
		t.Errorf("only %d of 1000 schedules came within 10%% of a binding ceiling: the bound says little", tight)
	}
}

// TestNetCeilingBoundsEveryPolicy checks the fleet's net ceiling against
// what each policy reached on the net measure, in June and on a dark
// November day at high load.
func TestNetCeilingBoundsEveryPolicy(t *testing.T) {
	for _, start := range []time.Time{time.Date(2023, 6, 21, 0, 0, 0, 0, time.UTC), time.Date(2023, 11, 21, 0, 0, 0, 0, time.UTC)} {
		cfg := small(3)
		cfg.Start, cfg.Utilisation = start, 0.66
		for _, p := range run(t, cfg).Results {
			if p.NetCeilingShare <= 0 || p.NetCeilingShare > 1+1e-9 {
				t.Fatalf("%s %s: net ceiling %v", start.Format("01-02"), p.Policy, p.NetCeilingShare)
			}
			if p.NetSurplusShare > p.NetCeilingShare+1e-9 {
				t.Errorf("%s %s: net share %.4f over the net ceiling %.4f", start.Format("01-02"), p.Policy, p.NetSurplusShare, p.NetCeilingShare)
			}
		}
	}
}

// TestNetFlowRefusesAnOversizedNetwork checks that a network that could
// outgrow netCeilingMaxArcs is refused before it is built (the report
// then shows no net ceiling), and one just under is solved.
func TestNetFlowRefusesAnOversizedNetwork(t *testing.T) {
	steps := 100
	extra := make([]float64, steps)
	for s := range extra {
		extra[s] = 1
	}
	perStep := func(int) float64 { return 1 }
	asked := 0
	online := func(int, int) bool { asked++; return true }
	over := make([]netBudget, int(netCeilingMaxArcs)/steps+1)
	if _, ok := netFlow(over, steps, extra, perStep, online); ok || asked > 0 {
		t.Fatalf("%d nodes × %d steps: solved (%v) or built (%d node-steps asked)", len(over), steps, ok, asked)
	}
	under := make([]netBudget, 2)
	for i := range under {
		under[i] = netBudget{totalWh: 1e9, stretch: []netStretch{{start: 0, end: int32(steps), capWh: math.Inf(1)}}}
	}
	got, ok := netFlow(under, steps, extra, perStep, online)
	if !ok || math.Abs(got-float64(steps)) > 1e-6 {
		t.Fatalf("2 nodes: flow %v (ok %v), want %d Wh: each step's 1 Wh covered", got, ok, steps)
	}
}
