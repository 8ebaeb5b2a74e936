package sim

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// workerRun is one node's stay on one job: the steps [start, end] it held
// the job without a break, the job energy it drew and the surplus that
// covered it.
type workerRun struct {
	node        int32
	start, end  int32
	arrival     int32   // the job's arrival step
	energyWh    float64 // job energy drawn over the run
	peakWh      float64 // the most it drew in one step
	workTF      float64 // the work it computed, TFLOP
	renewableWh float64 // of energyWh, from surplus (direct or stored)
}

// recordRun adds step s of node i, held by job j with energyWh of job
// energy of which renewableWh surplus, to the node's current run, or
// closes that run and opens another when the job changed or a step was
// missed.
func (r *runner) recordRun(i int, j int32, s int, energyWh, renewableWh, workTF float64) {
	n := &r.nodes[i]
	if n.run.energyWh >= 0 && (n.runJob != j || n.run.end != int32(s-1)) {
		r.flushRun(i)
	}
	if n.run.energyWh < 0 {
		n.runJob = j
		n.run = workerRun{node: int32(i), start: int32(s), end: int32(s), arrival: int32(r.w.jobs[j].arrival)}
	}
	n.run.end = int32(s)
	n.run.energyWh += energyWh
	n.run.renewableWh += renewableWh
	n.run.workTF += workTF
	n.run.peakWh = max(n.run.peakWh, energyWh)
}

// flushRun closes node i's current run; a run that drew no energy (a
// cheater's, or one shed before it computed) bounds nothing and is
// dropped.
func (r *runner) flushRun(i int) {
	n := &r.nodes[i]
	if n.run.energyWh > 0 {
		r.runs = append(r.runs, n.run)
	}
	n.run = workerRun{energyWh: -1}
}

// Limits of the own-runs ceiling's cost: it values every run on every
// node, and keeps a few numbers per node-step.
const (
	runCeilingMaxPairs     = 5e8 // runs × nodes (2,000 nodes × 3 days: 7e7)
	runCeilingMaxNodeSteps = 3e7
	runCeilingRates        = 32  // buckets of a run's peak draw
	runReplaceMaxWork      = 3e9 // run-steps × nodes
)

// runCeiling bounds from above and from below the surplus share the
// policy's own worker runs could reach on other nodes: each run keeps its
// timing (its first and last step), its job energy, its peak draw per
// step and the work it computed, and stays on one node for its whole
// length, a node online for all of it and fast enough to compute the
// run's work in its time. What it drops: the job's round (members' speeds
// within the ready window), its reputation floor, and that another
// device would draw other energy for the same work. It bounds the node
// choice for the policy's timing and run lengths, not another timing.
// Both are 0 when the run is too large (the limits above).
//
// ceiling is Σ_k max_i v(k,i) over the runs' energy, where v(k,i) bounds
// the surplus any schedule could give run k on node i: per step the
// device takes at most min(peak, the step's surplus after the household)
// directly, and over the run at most the battery's charge at its start
// plus what the surplus of its steps could store, each step at most the
// battery's power limit. That charge is an idle pass's (every device idle
// whenever online): a schedule that draws more only leaves the battery
// lower (the energy model's step is monotone in the draw), so it is an
// upper bound for every schedule, and so is the sum of each run's best.
// It drops that a node holds one run at a time: a Lagrangian relaxation
// of that constraint (a price per node-step, 30 projected subgradient
// steps) never lowered it at 500 nodes × 3 days in summer, winter or the
// darkest day, so the plain bound is kept.
//
// replaced is what one assignment of the runs reaches (runReplaced): a
// share the runs could reach, so the true ceiling for them lies between;
// replacedFast is the same on nodes at least as fast as the one each run
// had, so that no round would have waited longer for it.
func (w *world) runCeiling(runs []workerRun) (ceiling, replaced, replacedFast float64, err error) {
	var total float64
	for k := range runs {
		total += runs[k].energyWh
	}
	nodes, steps := len(w.nodes), w.steps
	var runSteps float64
	for k := range runs {
		runSteps += float64(runs[k].end - runs[k].start + 1)
	}
	bound := float64(len(runs))*float64(nodes) <= runCeilingMaxPairs
	replace := runSteps*float64(nodes) <= runReplaceMaxWork
	if total <= 0 || float64(nodes)*float64(steps) > runCeilingMaxNodeSteps || !bound && !replace {
		return 0, 0, 0, nil
	}
	b, err := w.runBounds()
	if err != nil {
		return 0, 0, 0, err
	}
	if bound {
		ceiling = b.bestEach(runs) / total
	}
	if replace {
		if replaced, err = w.runReplaced(runs, b, false); err != nil {
			return 0, 0, 0, err
		}
		replacedFast, err = w.runReplaced(runs, b, true)
	}
	return ceiling, replaced, replacedFast, err
}

// runBounds holds, per node and step, what bounds a run's surplus there.
type runBounds struct {
	nodes, steps int
	stepSeconds  float64
	direct       []float32 // surplus after the household, Wh
	chargeable   []float32 // what that surplus could store, Wh
	battery      []float32 // charge at the step's start in the idle pass, Wh
	online       []int32   // per node, prefix count of online steps (steps+1 each)
	limit        []float64 // per node: the battery's power limit over a step, Wh
	tflops       []float64 // per node
}

func (w *world) runBounds() (*runBounds, error) {
	nodes, steps := len(w.nodes), w.steps
	b := &runBounds{nodes: nodes, steps: steps, stepSeconds: w.cfg.Step.Seconds(),
		direct: make([]float32, nodes*steps), chargeable: make([]float32, nodes*steps), battery: make([]float32, nodes*steps),
		online: make([]int32, nodes*(steps+1)), limit: make([]float64, nodes), tflops: make([]float64, nodes)}
	hours := w.cfg.Step.Hours()
	for i := range w.nodes {
		site := w.sites[i].Clone()
		prof := site.Profile()
		limitWh, eff := site.BatteryMaxWatts()*hours, site.BatteryRoundTrip()
		if site.BatteryCapacityWh() == 0 {
			eff, limitWh = 0, 0
		}
		b.limit[i], b.tflops[i] = limitWh, w.nodes[i].tflops
		online := b.online[i*(steps+1) : (i+1)*(steps+1)]
		cursor := 0
		for s := 0; s < steps; s++ {
			t := w.start.Add(time.Duration(s) * w.cfg.Step)
			idle := 0.0
			online[s+1] = online[s]
			if w.onlineAt(i, s, &cursor) {
				online[s+1]++
				idle = prof.IdleWatts
			}
			b.battery[i*steps+s] = float32(site.BatteryWh())
			// A throwaway copy with an unbounded device measures the
			// step's surplus after the household (all of it goes to the
			// device directly).
			u, err := site.Clone().Run(t, w.cfg.Step, 1e6)
			if err != nil {
				return nil, err
			}
			b.direct[i*steps+s] = float32(u.SolarWh)
			b.chargeable[i*steps+s] = float32(min(max(u.SolarWh-idle*hours, 0), limitWh) * eff)
			if _, err := site.Run(t, w.cfg.Step, idle); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// fits reports whether run can stay on node i: online for all of it and
// fast enough for its work in its time.
func (b *runBounds) fits(run *workerRun, i int) bool {
	lo, hi := int(run.start), int(run.end)+1
	online := b.online[i*(b.steps+1):]
	return online[hi]-online[lo] == int32(hi-lo) && b.tflops[i]*float64(hi-lo)*b.stepSeconds >= run.workTF*(1-1e-9)
}

// bestEach is Σ_k max_i v(k,i), in Wh. Each run's peak is rounded up to
// one of runCeilingRates rates (a higher draw is covered at least as
// much), so v costs a few prefix-sum lookups.
func (b *runBounds) bestEach(runs []workerRun) float64 {
	steps := b.steps
	stride := steps + 1
	width := 0.0
	for k := range runs {
		width = max(width, runs[k].peakWh)
	}
	width /= runCeilingRates
	rate := make([]int8, len(runs))
	var used [runCeilingRates]bool
	for k := range runs {
		rate[k] = int8(min(max(int(math.Ceil(runs[k].peakWh/width))-1, 0), runCeilingRates-1))
		used[rate[k]] = true
	}
	best := make([]float64, len(runs))
	prefA := make([]float64, runCeilingRates*stride) // per rate: Σ min(rate, direct)
	prefB := make([]float64, runCeilingRates*stride) // per rate: Σ min((rate − direct)⁺, limit)
	prefC := make([]float64, stride)                 // Σ chargeable
	for i := 0; i < b.nodes; i++ {
		direct := b.direct[i*steps : (i+1)*steps]
		charge := b.chargeable[i*steps : (i+1)*steps]
		battery := b.battery[i*steps : (i+1)*steps]
		for s := 0; s < steps; s++ {
			prefC[s+1] = prefC[s] + float64(charge[s])
		}
		for q := range runCeilingRates {
			if !used[q] {
				continue
			}
			r := float64(q+1) * width
			a, c := prefA[q*stride:(q+1)*stride], prefB[q*stride:(q+1)*stride]
			for s := 0; s < steps; s++ {
				d := float64(direct[s])
				a[s+1] = a[s] + min(r, d)
				c[s+1] = c[s] + min(max(r-d, 0), b.limit[i])
			}
		}
		for k := range runs {
			run := &runs[k]
			if best[k] >= run.energyWh || !b.fits(run, i) {
				continue
			}
			lo, hi := int(run.start), int(run.end)+1
			q := int(rate[k]) * stride
			v := prefA[q+hi] - prefA[q+lo] + min(prefB[q+hi]-prefB[q+lo], float64(battery[lo])+prefC[hi]-prefC[lo])
			best[k] = max(best[k], min(v, run.energyWh))
		}
	}
	var sum float64
	for _, v := range best {
		sum += v
	}
	return sum
}

// runReplaced re-places the policy's own worker runs, in the order they
// started, each on the free node (online for the whole run, fast enough
// for the run's work in its time) whose surplus bound covers it most,
// ties to the node with the least battery and panels (so the largest
// microgrids stay free for the night), and then runs every node's site
// through the whole run with its runs' energy spread evenly over their
// steps. The result is the surplus share that assignment reaches on the
// energy model: a share these runs could physically reach at their own
// times (the job's round, reputation and each device's own draw aside),
// against which runCeiling is the bound from above. A slower node may
// take a run when it can compute the run's work in its time, filling the
// waits of the round the faster node had; asFast forbids that (the round
// would then be slower for every member).
func (w *world) runReplaced(runs []workerRun, b *runBounds, asFast bool) (float64, error) {
	nodes, steps := len(w.nodes), w.steps
	order := make([]int32, len(runs))
	for k := range order {
		order[k] = int32(k)
	}
	slices.SortStableFunc(order, func(a, c int32) int { return cmp.Compare(runs[a].start, runs[c].start) })
	busyUntil := make([]int32, nodes)
	for i := range busyUntil {
		busyUntil[i] = -1
	}
	size := make([]float64, nodes)
	for i := range size {
		size[i] = w.sites[i].BatteryCapacityWh() + 100*w.nodes[i].profile.SolarPeakKW
	}
	draw := make(map[int32][]float64)
	for _, k := range order {
		run := &runs[k]
		lo, hi := int(run.start), int(run.end)+1
		rate := run.energyWh / float64(hi-lo)
		best, bestValue := int(run.node), -1.0
		for i := 0; i < nodes; i++ {
			if busyUntil[i] >= run.start || !b.fits(run, i) || asFast && b.tflops[i] < b.tflops[run.node] {
				continue
			}
			var v, need float64
			for s := lo; s < hi; s++ {
				d := float64(b.direct[i*steps+s])
				v += min(rate, d)
				need += max(rate-d, 0)
			}
			v += min(need, float64(b.battery[i*steps+lo]))
			if v > bestValue+1e-6 || (v > bestValue-1e-6 && size[i] < size[best]) {
				best, bestValue = i, v
			}
		}
		busyUntil[best] = run.end
		d := draw[int32(best)]
		if d == nil {
			d = make([]float64, steps)
			draw[int32(best)] = d
		}
		for s := lo; s < hi; s++ {
			d[s] += rate / w.cfg.Step.Hours()
		}
	}
	var covered, energyWh float64
	for i := 0; i < nodes; i++ {
		d := draw[int32(i)]
		if d == nil {
			continue
		}
		site := w.sites[i].Clone()
		cursor := 0
		for s := 0; s < steps; s++ {
			t := w.start.Add(time.Duration(s) * w.cfg.Step)
			watts := 0.0
			if w.onlineAt(i, s, &cursor) {
				watts = w.nodes[i].profile.IdleWatts
			}
			if d[s] > 0 {
				watts = min(d[s], 1e6)
			}
			u, err := site.Run(t, w.cfg.Step, watts)
			if err != nil {
				return 0, err
			}
			if d[s] > 0 {
				covered += u.RenewableWh()
				energyWh += u.EnergyWh
			}
		}
	}
	if energyWh <= 0 {
		return 0, nil
	}
	return covered / energyWh, nil
}
