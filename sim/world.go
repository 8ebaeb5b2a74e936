package sim

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// simNode is a provider as the world defines it, the same under every policy.
type simNode struct {
	id        gridmind.NodeID
	profile   energy.Profile
	region    string
	tflops    float64 // measured throughput, TFLOP/s
	linkMbps  float64 // the slower of up and down, Mbit/s
	rttMs     float64
	price     gridmind.Amount // µGRID per GFLOP
	stake     gridmind.Amount
	memory    uint64
	cheater   bool
	microgrid bool
	// down are the intervals the node is off, in steps from the run's
	// first step, sorted and disjoint; joins at join, leaves at leave.
	down        [][2]int
	join, leave int
}

// simJobDef is a job as the world defines it.
type simJobDef struct {
	name        string
	arrival     int // step
	deadline    int // step; the job must be done by then
	minWorkers  int
	maxWorkers  int
	workTF      float64 // total useful work, TFLOP
	roundTF     float64 // one worker's work per round (H inner steps), TFLOP
	params      float64 // model parameters, for the all-reduce
	budget      gridmind.Amount
	rounds      int     // ledger rounds: one per full round of maxWorkers' work (roundsOf)
	expectSteps int     // at maxWorkers on median nodes
	paceTF      float64 // expected useful TFLOP per wall second per worker, communication included
	overhead    float64 // expected wall time of a round over its compute time (≥ 1)
}

// world is the shared input of every policy's run.
type world struct {
	cfg        Config
	start      time.Time // the first step (after warmup)
	steps      int       // steps simulated from start
	arrivalEnd int       // jobs arrive in [0, arrivalEnd)
	nodes      []simNode
	jobs       []simJobDef
	sites      []*energy.Site       // after warmup, batteries earned; each run clones them
	keys       []ed25519.PrivateKey // each node's key: its id, and its signed lease acceptances
	medianTF   float64
	zoneIDs    []string // the nodes' zones, in order of first appearance
	nodeZone   []int    // each node's index in zoneIDs
	// idleWorld is the whole fleet's energy over all the steps with
	// every device idle whenever online (no jobs), households included,
	// and idleBatteryWh its batteries' charge at the end: the
	// counterfactual of the net surplus share. Set by ceiling.
	idleWorld     energy.Usage
	idleBatteryWh float64
	netBudgets    []netBudget // per node, the idle world's budget for the net ceiling
}

func stepsOf(d, step time.Duration) int { return int(d / step) }

// buildWorld draws nodes, churn and jobs from the seed.
func buildWorld(cfg Config) (*world, error) {
	w := &world{cfg: cfg, start: cfg.Start}
	day := stepsOf(24*time.Hour, cfg.Step)
	w.arrivalEnd = cfg.Days * day
	w.steps = w.arrivalEnd + 2*day
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))

	// Leavers are replaced by joiners: the world holds both.
	leavers := int(math.Round(cfg.Churn.LeavesPerDay * float64(cfg.Nodes) * float64(cfg.Days)))
	total := cfg.Nodes + leavers
	profiles := cfg.Profiles
	if len(profiles) == 0 {
		profiles = energy.Presets(total)
	}
	w.nodes = make([]simNode, total)
	w.keys = make([]ed25519.PrivateKey, total)
	for i := range w.nodes {
		p := profiles[i%len(profiles)]
		z, _ := energy.ZoneByID(p.Zone)
		n := &w.nodes[i]
		w.keys[i] = keyOf(cfg.Seed, "node", i)
		n.id = idOf(w.keys[i])
		n.profile = p
		n.region = z.Region
		if n.region == "" {
			n.region = "other"
		}
		n.microgrid = p.BatteryKWh >= 30
		// Throughput grows with the device's draw (a bigger GPU), with a
		// spread: 150 W ≈ 0.5 TFLOP/s, 450 W ≈ 1.5, ×0.7..1.3.
		n.tflops = p.BusyWatts / 300 * (0.7 + 0.6*rng.Float64())
		n.linkMbps = []float64{50, 100, 100, 300, 1000}[rng.IntN(5)]
		n.rttMs = 20 + 180*rng.Float64()
		n.price = gridmind.Amount(50 + rng.IntN(950))
		n.stake = gridmind.Amount(100+rng.IntN(1900)) * gridmind.UnitsPerGRID
		n.memory = uint64(16+rng.IntN(112)) << 30
		n.cheater = rng.Float64() < cfg.CheatShare
		n.join, n.leave = 0, math.MaxInt
		if i >= cfg.Nodes { // a joiner replaces a leaver
			n.join = rng.IntN(w.arrivalEnd)
		}
	}
	// The leavers: distinct starting nodes, each leaving at a random step
	// of the arrival period.
	for _, i := range rng.Perm(cfg.Nodes)[:leavers] {
		w.nodes[i].leave = rng.IntN(w.arrivalEnd)
	}
	for i := range w.nodes {
		w.nodes[i].down = churnOf(cfg, &w.nodes[i], w.start, w.steps, rng)
	}
	w.sortByID()
	w.indexZones()
	tfs := make([]float64, len(w.nodes))
	for i := range w.nodes {
		tfs[i] = w.nodes[i].tflops
	}
	slices.Sort(tfs)
	w.medianTF = tfs[len(tfs)/2]

	if err := w.warmup(); err != nil {
		return nil, err
	}
	w.drawJobs(rng)
	return w, nil
}

// indexZones numbers the nodes' zones in order of first appearance.
func (w *world) indexZones() {
	w.nodeZone = make([]int, len(w.nodes))
	for i := range w.nodes {
		z := slices.Index(w.zoneIDs, w.nodes[i].profile.Zone)
		if z < 0 {
			z = len(w.zoneIDs)
			w.zoneIDs = append(w.zoneIDs, w.nodes[i].profile.Zone)
		}
		w.nodeZone[i] = z
	}
}

// sortByID puts the nodes (and their keys) in node id order. The market's
// Scheduler orders its candidates by node id and names them by that order
// (Scheduler.Candidate), so with the world in the same order a node's
// index is its candidate's.
func (w *world) sortByID() {
	order := make([]int, len(w.nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(w.nodes[a].id, w.nodes[b].id) })
	nodes, keys := make([]simNode, len(order)), make([]ed25519.PrivateKey, len(order))
	for k, i := range order {
		nodes[k], keys[k] = w.nodes[i], w.keys[i]
	}
	w.nodes, w.keys = nodes, keys
}

// churnOf draws a node's off intervals: nightly for some home nodes, and
// crashes.
func churnOf(cfg Config, n *simNode, start time.Time, steps int, rng *rand.Rand) [][2]int {
	var down [][2]int
	stepsPerHour := stepsOf(time.Hour, cfg.Step)
	if !n.microgrid && rng.Float64() < cfg.Churn.NightOffShare {
		// Off from local midnight for 6..9 hours, every night.
		offHours := 6 + rng.IntN(4)
		localMidnight := start.Add(-time.Duration(n.profile.UTCOffsetMinutes) * time.Minute)
		first := stepsOf(localMidnight.Sub(start), cfg.Step)
		for s := first - 24*stepsPerHour; s < steps; s += 24 * stepsPerHour {
			down = append(down, [2]int{max(s, 0), max(s+offHours*stepsPerHour, 0)})
		}
	}
	if cfg.Churn.CrashesPerDay > 0 {
		perStep := cfg.Churn.CrashesPerDay * cfg.Step.Hours() / 24
		meanDown := max(1, cfg.Churn.CrashMeanDown.Hours()*float64(stepsPerHour))
		for s := int(rng.ExpFloat64() / perStep); s < steps; s += 1 + int(rng.ExpFloat64()/perStep) {
			d := 1 + int(rng.ExpFloat64()*meanDown)
			down = append(down, [2]int{s, s + d})
			s += d
		}
	}
	slices.SortFunc(down, func(a, b [2]int) int { return a[0] - b[0] })
	// Merge overlaps so a lookup can walk forward.
	merged := down[:0]
	for _, iv := range down {
		if iv[1] <= iv[0] {
			continue
		}
		if k := len(merged) - 1; k >= 0 && iv[0] <= merged[k][1] {
			merged[k][1] = max(merged[k][1], iv[1])
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

// warmup builds every node's site and runs it idle for the warmup days
// from an empty battery, so the battery's charge at the start is earned.
func (w *world) warmup() error {
	w.sites = make([]*energy.Site, len(w.nodes))
	from := w.start.AddDate(0, 0, -w.cfg.WarmupDays)
	for i := range w.nodes {
		p := w.nodes[i].profile
		p.BatteryInitialPct = 0
		site, err := energy.NewSite(p)
		if err != nil {
			return err
		}
		if _, err := site.Run(from, w.start.Sub(from), p.IdleWatts); err != nil {
			return err
		}
		w.sites[i] = site
	}
	return nil
}

// drawJobs draws arrivals uniformly over the arrival period until the
// jobs' expected node-steps (workers × expected wall time on workers
// drawn from the fleet, rounds' communication included) reach Utilisation of the online
// node-steps.
func (w *world) drawJobs(rng *rand.Rand) {
	cfg := w.cfg
	var online float64
	for i := range w.nodes {
		online += float64(w.onlineSteps(i, 0, w.arrivalEnd))
	}
	stepsPerHour := float64(stepsOf(time.Hour, cfg.Step))
	target := cfg.Utilisation * online
	var booked float64
	for j := 0; booked < target; j++ {
		workers := 1 + rng.IntN(8)
		hours := 0.5 + 7.5*rng.Float64() // of compute per worker on a median node
		arrival := rng.IntN(w.arrivalEnd)
		slack := 1.5 + 2.5*rng.Float64()
		// Model size: 10M to 300M parameters, log-uniform; a round is 5 to
		// 15 minutes of compute on the median node.
		params := math.Pow(10, 7+1.5*rng.Float64())
		work := float64(workers) * hours * 3600 * w.medianTF
		roundTF := min(w.medianTF*60*(5+10*rng.Float64()), work/float64(workers))
		def := simJobDef{roundTF: roundTF, params: params}
		// The expected pace: the round on workers drawn at random from the
		// fleet among those that fit the round, as every policy places
		// them (slow links and cheaters included).
		sample := make([]int32, workers)
		for k := range sample {
			lo, hi := speedRange(sample[:k], w.nodes)
			for try := 0; try < 32; try++ {
				sample[k] = int32(rng.IntN(len(w.nodes)))
				if fitsRound(&def, lo, hi, w.nodes[sample[k]].tflops) {
					break
				}
			}
		}
		m := modelRound(&def, sample, w.nodes)
		pace := float64(max(m.useful, 1)) * roundTF / m.seconds / float64(workers)
		wallHours := work / (pace * float64(workers)) / 3600
		overhead := 1.0
		if m.compute > 0 {
			overhead = m.seconds / m.compute
		}
		expect := int(math.Ceil(wallHours * stepsPerHour))
		w.jobs = append(w.jobs, simJobDef{
			name:        fmt.Sprintf("job-%06d", j),
			arrival:     arrival,
			deadline:    arrival + max(int(math.Ceil(slack*float64(expect))), int(2*stepsPerHour)),
			minWorkers:  max(1, (workers+1)/2),
			maxWorkers:  workers,
			workTF:      work,
			roundTF:     roundTF,
			params:      params,
			budget:      gridmind.Amount(math.Ceil(work * 1000 * pricePerGFLOP)),
			rounds:      roundsOf(work, roundTF, workers),
			expectSteps: expect,
			paceTF:      pace,
			overhead:    overhead,
		})
		booked += float64(workers * expect)
	}
	slices.SortStableFunc(w.jobs, func(a, b simJobDef) int { return a.arrival - b.arrival })
	for j := range w.jobs {
		w.jobs[j].name = fmt.Sprintf("job-%06d", j)
	}
}

// onlineSteps counts the steps of [from, to) node i is up.
func (w *world) onlineSteps(i, from, to int) int {
	n := &w.nodes[i]
	from, to = max(from, n.join), min(to, n.leave)
	if to <= from {
		return 0
	}
	up := to - from
	for _, iv := range n.down {
		lo, hi := max(iv[0], from), min(iv[1], to)
		if hi > lo {
			up -= hi - lo
		}
	}
	return up
}

// onlineAt reports whether node i is up at step s; cursor is the caller's
// position in the node's down list, which only moves forward.
func (w *world) onlineAt(i, s int, cursor *int) bool {
	n := &w.nodes[i]
	if s < n.join || s >= n.leave {
		return false
	}
	for *cursor < len(n.down) && n.down[*cursor][1] <= s {
		*cursor++
	}
	return *cursor >= len(n.down) || s < n.down[*cursor][0]
}

// DarkestDay is the UTC day of the year (2023 calendar) on which the
// fleet's panels produce the least, for profiles (nil: the presets of
// nodes). Southern sites' winters fall in June, so the fleet's darkest day
// depends on its mix.
func DarkestDay(profiles []energy.Profile, nodes int) (time.Time, error) {
	if len(profiles) == 0 {
		profiles = energy.Presets(max(nodes, 1))
	}
	var daily [365]float64
	for _, p := range profiles {
		if p.SolarPeakKW == 0 {
			continue
		}
		site, err := energy.NewSite(p)
		if err != nil {
			return time.Time{}, err
		}
		day0 := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
		for h := range 365 * 24 {
			daily[h/24] += site.SolarWatts(day0.Add(time.Duration(h) * time.Hour))
		}
	}
	best := 0
	for d := range daily {
		if daily[d] < daily[best] {
			best = d
		}
	}
	return time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, best), nil
}
