package market

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// EnergyBenchOptions configure RunEnergyBench.
type EnergyBenchOptions struct {
	Nodes int // default 1,000, spread over the eight zones by energy.Presets
	Jobs  int // default 2,000, arriving over the first 20 hours
	// Day is the UTC day simulated; the zero value means 2023-06-21.
	Day  time.Time
	Seed int64
	// GreenPreference of every job under our policy; default 80.
	GreenPreference int
}

// PolicyResult is what one placement policy achieved over the day.
type PolicyResult struct {
	Policy         string  `json:"policy"`
	JobsFinished   int     `json:"jobs_finished"`
	EnergyKWh      float64 `json:"energy_kwh"`      // the jobs' device energy
	RenewableShare float64 `json:"renewable_share"` // of it, covered by surplus solar (direct or stored)
	CO2Kg          float64 `json:"co2_kg"`          // from the grid share
	GramsPerPFLOP  float64 `json:"g_per_pflop"`     // CO2 per unit of work (10^15 FLOP)
	MeanHours      float64 `json:"mean_hours"`      // arrival to finish
	P95Hours       float64 `json:"p95_hours"`
}

// EnergyBenchReport compares the policies on the same nodes and jobs.
type EnergyBenchReport struct {
	Nodes, Jobs int
	Day         time.Time
	Results     []PolicyResult // ours, price only, random
	// LaterHours is how much later, on average, jobs finish under ours than
	// under price-only placement (negative: sooner).
	LaterHours float64
}

// Markdown prints the comparison as a table.
func (r EnergyBenchReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes, %d jobs, %s (UTC), real carbon and PV traces\n\n", r.Nodes, r.Jobs, r.Day.Format("2006-01-02"))
	b.WriteString("| policy | jobs finished | job energy (kWh) | surplus renewable share | CO2 (kg) | g CO2 per PFLOP | mean completion (h) | p95 completion (h) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Results {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.1f%% | %.1f | %.2f | %.2f | %.2f |\n",
			p.Policy, p.JobsFinished, p.EnergyKWh, 100*p.RenewableShare, p.CO2Kg, p.GramsPerPFLOP, p.MeanHours, p.P95Hours)
	}
	fmt.Fprintf(&b, "\nJobs finish %.2f h later on average under ours than under price-only placement.\n", r.LaterHours)
	return b.String()
}

const (
	simTick    = 15 * time.Minute
	simHorizon = 48 * time.Hour // jobs arriving late in the day may finish the next
	// forecastWindow is the window candidates forecast surplus over: about
	// the length of a typical job here.
	forecastWindow = 2 * time.Hour
)

type simJob struct {
	arrival  time.Time
	workers  int
	workTF   float64 // per worker, TFLOP
	finish   time.Time
	left     int // workers still running
	placed   bool
	finished bool
}

// RunEnergyBench simulates a day of jobs on nodes with real energy traces
// under three policies — ours (the market with a green preference), price
// only, and carbon-agnostic random — and reports the share of job energy
// that was surplus renewable, the CO2 per unit of work, and completion
// times. Each node runs one worker at a time; a worker's duration is its
// work divided by the node's throughput; batteries charge from surplus
// while nodes idle. Deterministic for a given seed.
func RunEnergyBench(opts EnergyBenchOptions) (EnergyBenchReport, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 1000
	}
	if opts.Jobs == 0 {
		opts.Jobs = 2000
	}
	if opts.Day.IsZero() {
		opts.Day = time.Date(2023, 6, 21, 0, 0, 0, 0, time.UTC)
	}
	if opts.GreenPreference == 0 {
		opts.GreenPreference = 80
	}
	if opts.Nodes < 1 || opts.Jobs < 1 || opts.GreenPreference < 0 || opts.GreenPreference > 100 {
		return EnergyBenchReport{}, gridmind.E(gridmind.KindInvalid, "market.energybench", "nodes %d, jobs %d, green preference %d: want positive counts and 0..100", opts.Nodes, opts.Jobs, opts.GreenPreference)
	}
	rep := EnergyBenchReport{Nodes: opts.Nodes, Jobs: opts.Jobs, Day: opts.Day}
	for _, policy := range []string{"ours", "price only", "random"} {
		res, err := simulateDay(opts, policy)
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, res)
	}
	rep.LaterHours = rep.Results[0].MeanHours - rep.Results[1].MeanHours
	return rep, nil
}

func simulateDay(opts EnergyBenchOptions, policy string) (PolicyResult, error) {
	res := PolicyResult{Policy: policy}
	base, err := BenchCandidates(opts.Nodes, opts.Seed, opts.Day)
	if err != nil {
		return res, err
	}
	profiles := energy.Presets(opts.Nodes)
	sites := make([]*energy.Site, opts.Nodes)
	for i, p := range profiles {
		if sites[i], err = energy.NewSite(p); err != nil {
			return res, err
		}
		// Throughput within 4x so that slower green nodes cost time, but
		// not absurdly: 0.5 to 2 TFLOPS.
		base[i].Offer.ThroughputMFLOPS = 500_000 + base[i].Offer.ThroughputMFLOPS%1_500_001
		base[i].Busy = false
	}
	index := make(map[gridmind.NodeID]int, len(base))
	for i, c := range base {
		index[c.Offer.Node] = i
	}

	rng := benchRand{splitmix(uint64(opts.Seed) ^ 0xe4e1)}
	jobs := make([]simJob, opts.Jobs)
	for i := range jobs {
		jobs[i] = simJob{
			arrival: opts.Day.Add(time.Duration(rng.intn(20*4)) * simTick),
			workers: 1 + rng.intn(4),
			workTF:  float64(rng.between(3600, 14400)), // 1 to 4 hours at 1 TFLOPS
		}
	}

	spec := gridmind.JobSpec{Workers: 1}
	opt := Options{Seed: opts.Seed}
	switch policy {
	case "ours":
		spec.GreenPreference = opts.GreenPreference
	case "price only":
		opt.Weights = Weights{Price: 1}
	}
	pick := benchRand{splitmix(uint64(opts.Seed) ^ 0x7a4d)}

	running := make([]int, opts.Nodes) // job index + 1, 0 when idle
	remaining := make([]time.Duration, opts.Nodes)
	var usage energy.Usage
	var workTF float64
	next := 0 // next job to arrive (jobs are placed in arrival order)
	var queue []int
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return jobs[a].arrival.Compare(jobs[b].arrival) })

	for t := opts.Day; t.Before(opts.Day.Add(simHorizon)); t = t.Add(simTick) {
		for next < len(order) && !jobs[order[next]].arrival.After(t) {
			queue = append(queue, order[next])
			next++
		}
		if len(queue) > 0 {
			idle := 0
			for i := range base {
				base[i].Busy = running[i] != 0
				if !base[i].Busy {
					idle++
					base[i].Energy = EnergyFromSite(sites[i], t, forecastWindow)
				}
			}
			var sched *Scheduler
			if policy != "random" {
				if sched, err = NewScheduler(base, opt); err != nil {
					return res, err
				}
			}
			waiting := queue[:0]
			for _, j := range queue {
				job := &jobs[j]
				if job.workers > idle {
					waiting = append(waiting, j) // backfill: smaller jobs behind it may still fit
					continue
				}
				for range job.workers {
					var n int
					if policy == "random" {
						n = randomIdle(&pick, running)
					} else {
						c, _, ok := sched.PlaceTask(&spec)
						if !ok {
							return res, gridmind.E(gridmind.KindInternal, "market.energybench", "no idle node although %d are idle", idle)
						}
						n = index[sched.Candidate(c).Offer.Node]
						sched.SetBusy(c, true)
					}
					running[n] = j + 1
					remaining[n] = time.Duration(job.workTF * 1e6 / float64(base[n].Offer.ThroughputMFLOPS) * float64(time.Second))
					idle--
				}
				job.placed, job.left = true, job.workers
			}
			queue = waiting
		}
		// Advance every node by one tick: busy for what is left of its
		// worker, idle for the rest, so batteries charge in between.
		for i, site := range sites {
			prof := site.Profile()
			busy := min(remaining[i], simTick)
			if busy > 0 {
				u, err := site.Run(t, busy, prof.BusyWatts)
				if err != nil {
					return res, err
				}
				usage.Add(u)
				remaining[i] -= busy
				if remaining[i] == 0 {
					job := &jobs[running[i]-1]
					job.left--
					if end := t.Add(busy); end.After(job.finish) {
						job.finish = end
					}
					if job.left == 0 {
						job.finished = true
						workTF += job.workTF * float64(job.workers)
					}
					running[i] = 0
				}
			}
			if _, err := site.Run(t.Add(busy), simTick-busy, prof.IdleWatts); err != nil {
				return res, err
			}
		}
	}

	var hours []float64
	for _, j := range jobs {
		if j.finished {
			hours = append(hours, j.finish.Sub(j.arrival).Hours())
		}
	}
	res.JobsFinished = len(hours)
	res.EnergyKWh = usage.EnergyWh / 1000
	res.RenewableShare = usage.RenewableShare()
	res.CO2Kg = usage.CO2Grams / 1000
	if workTF > 0 {
		res.GramsPerPFLOP = usage.CO2Grams / (workTF / 1000)
	}
	res.MeanHours, res.P95Hours = meanAndP95(hours)
	return res, nil
}

// randomIdle picks a uniformly random idle node.
func randomIdle(r *benchRand, running []int) int {
	idle := 0
	for _, j := range running {
		if j == 0 {
			idle++
		}
	}
	k := r.intn(idle)
	for i, j := range running {
		if j == 0 {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return -1
}

func meanAndP95(xs []float64) (mean, p95 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), xs...)
	var sum float64
	for _, x := range s {
		sum += x
	}
	slices.Sort(s)
	idx := int(math.Ceil(0.95*float64(len(s)))) - 1
	return sum / float64(len(s)), s[max(idx, 0)]
}
