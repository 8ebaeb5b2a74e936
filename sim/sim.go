package sim

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gridmind/gridmind/energy"
)

// Run builds the world from cfg and plays every policy on it, two at a
// time (policies are independent; the result does not depend on the
// order or the parallelism).
func Run(cfg Config) (*Report, error) { return RunContext(context.Background(), cfg) }

// RunContext is Run that stops, with ctx's error, once ctx is done: a run
// of a large world takes minutes, and an interrupt should end it.
func RunContext(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w, err := buildWorld(cfg)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Nodes: cfg.Nodes, Joined: len(w.nodes) - cfg.Nodes, Days: cfg.Days, Start: cfg.Start, Seed: cfg.Seed,
		Utilisation: cfg.Utilisation, Jobs: len(w.jobs), Step: cfg.Step, Sun: cfg.Sun.String(), WarmupDays: cfg.WarmupDays,
		Churn: cfg.Churn,
	}
	for i := range w.nodes {
		if w.nodes[i].cheater {
			rep.Cheaters++
		}
	}
	total := w.steps*len(cfg.Policies) + w.steps
	var mu sync.Mutex
	done, reported := 0, 0
	tick := func() {
		if cfg.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done++
		if done-reported >= max(1, total/400) || done == total {
			reported = done
			cfg.Progress(done, total)
		}
	}
	ceiling, perStep, cells, err := w.ceiling(tick)
	if err != nil {
		return nil, err
	}
	for b := range ceiling.renewableWh {
		rep.CeilingRenewableWh += ceiling.renewableWh[b]
	}
	results := make([]PolicyResult, len(cfg.Policies))
	errs := make([]error, len(cfg.Policies))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for k, p := range cfg.Policies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := newRunner(ctx, w, p)
			if err != nil {
				errs[k] = err
				return
			}
			if errs[k] = r.play(tick); errs[k] == nil {
				results[k], errs[k] = r.summarise(ceiling, perStep, cells)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if cfg.Progress != nil && done < total {
		cfg.Progress(total, total)
	}
	rep.Results = results
	return rep, nil
}

// ceilingBins is the resolution of the ceiling: node-steps are grouped by
// the share of a flat-out device's energy surplus could cover, in 1% bins.
const ceilingBins = 101

// ceilingCurve holds, per bin of covered share (best first), the device
// energy and the surplus part of it of every online node-step.
type ceilingCurve struct {
	energyWh, renewableWh [ceilingBins]float64
}

// share is the best surplus share any schedule could reach for jobs that
// need energyWh: the job energy placed on the node-steps where surplus
// covers the most, best first. It ignores deadlines, arrivals and what
// running at one hour does to the battery at another, so it is an upper
// bound: the fleet's physical ceiling with one device per node.
func (c *ceilingCurve) share(energyWh float64) float64 {
	if energyWh <= 0 {
		return 0
	}
	left, covered := energyWh, 0.0
	for b := ceilingBins - 1; b >= 0 && left > 0; b-- {
		take := min(left, c.energyWh[b])
		if c.energyWh[b] > 0 {
			covered += take * c.renewableWh[b] / c.energyWh[b]
		}
		left -= take
	}
	return covered / energyWh
}

// ceiling runs every node's device flat out whenever it is online over the
// whole run (its battery serving the household first) and records, for
// each node-step, how much of the device's energy surplus covered.
//
// It returns the curve of the whole run and one per step: a schedule may
// move work in time (the first bound) or only choose among the nodes of
// the step it runs in (the second, tighter bound: the fleet's ceiling for
// a policy's own timing); and the same node-steps by zone, with their grid
// intensity, for the displacement floor (carbonfloor.go). In the same
// pass it runs the idle world (w.idleWorld) for the net surplus share and
// records each node's budget in it for the net ceiling (w.netBudgets).
func (w *world) ceiling(tick func()) (*ceilingCurve, []ceilingCurve, carbonCells, error) {
	sites, idle := make([]*energy.Site, len(w.nodes)), make([]*energy.Site, len(w.nodes))
	for i := range sites {
		sites[i], idle[i] = w.sites[i].Clone(), w.sites[i].Clone()
	}
	w.idleWorld = energy.Usage{}
	w.netBudgets = make([]netBudget, len(w.nodes))
	for i := range w.netBudgets {
		if w.sites[i].BatteryCapacityWh() == 0 {
			w.netBudgets[i].spillWh = make([]float32, 0, w.steps)
		}
	}
	cursors := make([]int, len(w.nodes))
	c := &ceilingCurve{}
	perStep := make([]ceilingCurve, w.steps)
	cells := make(carbonCells, w.steps)
	for s := 0; s < w.steps; s++ {
		t := w.start.Add(time.Duration(s) * w.cfg.Step)
		for i, site := range sites {
			watts, idleWatts := 0.0, 0.0
			if w.onlineAt(i, s, &cursors[i]) {
				watts, idleWatts = w.nodes[i].profile.BusyWatts, w.nodes[i].profile.IdleWatts
			}
			u, err := site.Run(t, w.cfg.Step, watts)
			if err != nil {
				return nil, nil, nil, err
			}
			before := idle[i].BatteryWh()
			v, err := idle[i].Run(t, w.cfg.Step, idleWatts)
			if err != nil {
				return nil, nil, nil, err
			}
			w.idleWorld.Add(v)
			w.netBudgets[i].observe(s, v.SpilledWh, v.LossWh, before)
			if u.EnergyWh > 0 {
				b := min(int(u.RenewableShare()*(ceilingBins-1)), ceilingBins-1)
				c.energyWh[b] += u.EnergyWh
				c.renewableWh[b] += u.RenewableWh()
				perStep[s].energyWh[b] += u.EnergyWh
				perStep[s].renewableWh[b] += u.RenewableWh()
				cells.add(s, len(w.zoneIDs), w.nodeZone[i], b, u.EnergyWh, u.RenewableWh(), u.DisplacedCO2Grams)
			}
		}
		tick()
	}
	cells.compact()
	w.idleBatteryWh = 0
	for i, site := range idle {
		w.idleBatteryWh += site.BatteryWh()
		w.netBudgets[i].close(w.steps, site.BatteryWh())
	}
	return c, perStep, cells, nil
}

// summarise turns a finished run into its result.
func (r *runner) summarise(ceiling *ceilingCurve, perStep []ceilingCurve, cells carbonCells) (PolicyResult, error) {
	out := r.out
	u := out.usage
	out.JobsArrived = len(r.jobs)
	out.JobsFinished = len(out.completions)
	out.JobEnergyKWh = u.EnergyWh / 1000
	out.SurplusShare = u.RenewableShare()
	out.CO2Kg = u.CO2Grams / 1000
	out.DisplacedCO2Kg = u.DisplacedCO2Grams / 1000
	out.IdleEnergyKWh = out.idle.EnergyWh / 1000
	out.HouseholdGridKWh = (out.idle.HouseGridWh + u.HouseGridWh) / 1000
	out.MeanCompletionHours, out.P95CompletionHours = meanAndP95(out.completions)
	out.MeanWaitHours, _ = meanAndP95(out.waits)
	if out.onlineSteps > 0 {
		out.Utilisation = float64(out.busySteps) / float64(out.onlineSteps)
	}
	var err error
	if out.NetSurplusShare, out.netResidualWh, err = r.netSurplusShare(); err != nil {
		return out, err
	}
	out.NetCeilingShare = r.w.netCeiling(out.stepExtraWh)
	out.CeilingShare = ceiling.share(u.EnergyWh)
	if u.EnergyWh > 0 {
		var covered float64
		for s, e := range out.stepEnergyWh {
			covered += perStep[s].share(e) * e
		}
		out.StepCeilingShare = covered / u.EnergyWh
		out.DisplacementFloorKg = floorKg(carbonFloor(cells, out.stepEnergyWh, floorShare, false))
		out.DisplacementFloorAnyStepKg = floorKg(carbonFloor(cells, out.stepEnergyWh, floorShare, true))
		out.CarbonFloorKg = floorKg(carbonFloor(cells, out.stepEnergyWh, 0, false))
	}
	if r.policy == PolicySun {
		var err error
		if out.RunCeilingShare, out.RunReplacedShare, out.RunReplacedFastShare, err = r.w.runCeiling(r.runs); err != nil {
			return out, err
		}
	}
	for _, job := range r.jobs {
		if job.peak > 0 {
			out.MeanPeakWorkers += float64(job.peak)
		}
	}
	if out.JobsFinished > 0 {
		out.MeanPeakWorkers /= float64(len(r.jobs))
	}
	for h := range out.Hourly {
		hr := &out.Hourly[h]
		if hr.onlineSteps > 0 {
			hr.Busy = float64(hr.busySteps) / float64(hr.onlineSteps)
		}
		for z := range hr.Zones {
			if zh := &hr.Zones[z]; zh.onlineSteps > 0 {
				zh.Busy = float64(zh.busySteps) / float64(zh.onlineSteps)
			}
		}
	}
	out.ZoneIDs = out.zoneIDs
	for k, z := range out.zoneIDs {
		zu := out.zones[k]
		out.Zones = append(out.Zones, ZoneResult{Zone: z, EnergyKWh: zu.EnergyWh / 1000, SurplusShare: zu.RenewableShare(), CO2Kg: zu.CO2Grams / 1000})
	}
	slices.SortFunc(out.Zones, func(a, b ZoneResult) int {
		ia, ib := zoneOrder(a.Zone), zoneOrder(b.Zone)
		return ia - ib
	})
	for i := range r.nodes {
		if r.w.nodes[i].cheater {
			out.CheatersEverCaught += min(1, r.nodes[i].caught)
		}
	}
	return out, nil
}

// netSurplusShare compares the whole run with the idle world (every
// device idle whenever online, no jobs; w.idleWorld): of the extra
// energy the devices drew, the share that did not come from extra grid
// import, the households' included. Surplus solar a device takes by day
// that the battery would have stored for the household's night, or
// battery energy the household then misses, shows up here as the
// household's import, which SurplusShare does not see. Both worlds run
// to the same last step; batteries left emptier then than in the idle
// world count as import to come.
//
// It also returns how far the two worlds' energy balances disagree
// (solar + grid = household + devices + spilled + round-trip loss +
// the batteries' change, the same solar and household in both): zero up
// to rounding when every node-step was counted in both.
func (r *runner) netSurplusShare() (share, residualWh float64, err error) {
	w, out := r.w, r.out
	var all energy.Usage
	all.Add(out.usage)
	all.Add(out.idle)
	all.Add(out.offline)
	// A run stops once every job is done: its nodes go on idle to the
	// end of the idle world's steps, so that batteries a job left low by
	// night can recharge the next day as they would.
	var batteryWh float64
	for i := range r.nodes {
		site, cursor := r.nodes[i].site.Clone(), r.nodes[i].cursor
		for s := out.StepsRun; s < w.steps; s++ {
			watts := 0.0
			if w.onlineAt(i, s, &cursor) {
				watts = w.nodes[i].profile.IdleWatts
			}
			u, err := site.Run(w.start.Add(time.Duration(s)*w.cfg.Step), w.cfg.Step, watts)
			if err != nil {
				return 0, 0, err
			}
			all.Add(u)
		}
		batteryWh += site.BatteryWh()
	}
	idle, idleBatteryWh := w.idleWorld, w.idleBatteryWh
	grid := func(u energy.Usage) float64 { return u.GridWh + u.HouseGridWh }
	extraWh := all.EnergyWh - idle.EnergyWh
	importWh := grid(all) - grid(idle)
	residualWh = importWh - extraWh - (all.SpilledWh - idle.SpilledWh) - (all.LossWh - idle.LossWh) - (batteryWh - idleBatteryWh)
	if extraWh <= 0 {
		return 0, residualWh, nil
	}
	importWh += max(idleBatteryWh-batteryWh, 0)
	return 1 - importWh/extraWh, residualWh, nil
}

func zoneOrder(id string) int {
	for k, z := range energy.Zones() {
		if z.ID == id {
			return k
		}
	}
	return math.MaxInt32
}

func meanAndP95(xs []float64) (mean, p95 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	var sum float64
	for _, x := range s {
		sum += x
	}
	slices.Sort(s)
	idx := int(math.Ceil(0.95*float64(len(s)))) - 1
	return sum / float64(len(s)), s[max(idx, 0)]
}
