// Package marketbench measures placement as requesters run it: a
// market.Index kept across jobs, fed the heartbeats each placement causes,
// placing single-worker jobs on thousands of synthetic providers whose
// energy comes from the real traces; in the same run it places the first
// tasks with market.Place (a scheduler rebuilt per job, every candidate
// explained) for the ratio and to check both choose the same nodes.
// Candidates and Tasks draw the synthetic fleet and jobs.
//
// `gridmind bench market` is the command line over Run.
package marketbench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/market"
)

// Options configure Run.
type Options struct {
	Nodes int   // default 10,000
	Tasks int   // default 100,000
	Seed  int64 // for the synthetic nodes, tasks and heartbeats
	// Baseline is how many of the tasks are also placed the old way, with
	// market.Place rebuilding a Scheduler from the whole candidate list and
	// explaining every candidate (default 100; it takes tens of ms each).
	Baseline int
	// At is the hour whose real energy traces the nodes report; the zero
	// value means 2023-06-21 12:00 UTC.
	At time.Time
	// Now is the clock that times the run; nil means time.Now. This is the
	// only clock the harness reads.
	Now func() time.Time
	// CPU, if set, reads the process's CPU time, so that the report also
	// gives placements per CPU second: on a shared machine the wall clock
	// counts the time other processes held the core.
	CPU func() time.Duration
}

// Report is what Run measured.
type Report struct {
	Nodes    int `json:"nodes"`
	Tasks    int `json:"tasks"`
	Placed   int `json:"placed"`
	Unplaced int `json:"unplaced"`
	// HeartbeatsPerPlacement are the market.Index updates applied (and timed)
	// with each placement: the chosen node turning busy, a finished
	// task's node turning free, one node's new latency and surplus.
	HeartbeatsPerPlacement float64       `json:"heartbeats_per_placement"`
	BusyAtEnd              float64       `json:"busy_at_end"` // share of nodes busy when the run ended
	Setup                  time.Duration `json:"setup_ns"`    // building nodes, tasks and the index (not timed below)
	Elapsed                time.Duration `json:"elapsed_ns"`  // placing every task, with its heartbeats
	PlacementsPerSec       float64       `json:"placements_per_sec"`
	CPU                    time.Duration `json:"cpu_ns"` // CPU time placing every task (with CPU set)
	PlacementsPerCPUSec    float64       `json:"placements_per_cpu_sec"`
	AllocsPerPlacement     float64       `json:"allocs_per_placement"`
	BytesPerPlacement      float64       `json:"bytes_per_placement"`
	GOMAXPROCS             int           `json:"gomaxprocs"`
	// The old path on the first Baseline tasks, with the same heartbeats:
	// its rate, the ratio, and on how many tasks both chose the same nodes.
	Baseline         int           `json:"baseline_tasks"`
	BaselineElapsed  time.Duration `json:"baseline_elapsed_ns"`
	BaselinePerSec   float64       `json:"baseline_placements_per_sec"`
	BaselineCPU      time.Duration `json:"baseline_cpu_ns"`
	Speedup          float64       `json:"speedup"`
	BaselineAgreed   int           `json:"baseline_agreed"`
	BaselineAllocsPP float64       `json:"baseline_allocs_per_placement"`
	// Explain is the time to explain the last placement when asked
	// (Complete: every candidate, as `gridmind jobs explain` prints).
	Explain time.Duration `json:"explain_ns"`
	// Sync is the time for market.Index.Sync of the whole candidate list with 1%
	// of it changed: what Requester.Submit adds per job while it rebuilds
	// its candidate list from the ledger for every job.
	Sync time.Duration `json:"sync_ns"`
	// GreenOnSurplus is the share of tasks with green_preference >= 50 that
	// landed on a node whose surplus covers at least half of its draw: a
	// check that the fast path still honours clean energy.
	GreenOnSurplus float64 `json:"green_on_surplus"`
}

// MarkdownHeader is the header of the table MarkdownRow fills.
func (Report) MarkdownHeader() string {
	return "| nodes | tasks | placed | placements/s (wall) | placements per CPU second | allocs/placement | old path placements/s (wall) | speedup (wall) | same choice as old path | explain on demand | Sync of the full list | busy at end | green tasks on surplus |\n" +
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}

// MarkdownRow prints the report as one row of a Markdown table.
func (r Report) MarkdownRow() string {
	perCPU := "–"
	if r.PlacementsPerCPUSec > 0 {
		perCPU = fmt.Sprintf("%.0f", r.PlacementsPerCPUSec)
	}
	return fmt.Sprintf("| %d | %d | %d | %.0f | %s | %.2f | %.1f | %.0f× | %d/%d | %s | %s | %.0f%% | %.0f%% |",
		r.Nodes, r.Tasks, r.Placed, r.PlacementsPerSec, perCPU, r.AllocsPerPlacement, r.BaselinePerSec, r.Speedup,
		r.BaselineAgreed, r.Baseline, r.Explain.Round(time.Millisecond/10), r.Sync.Round(time.Microsecond), 100*r.BusyAtEnd, 100*r.GreenOnSurplus)
}

// fleet is the synthetic network a benchmark run drives: the
// candidates as their heartbeats last described them, and the tasks
// running on them.
type fleet struct {
	cands   []market.Candidate
	slot    map[gridmind.NodeID]int
	rng     rng64
	running []int // node of each running task, oldest first
	hold    int   // placements a task runs for
}

func newFleet(cands []market.Candidate, seed int64) *fleet {
	f := &fleet{cands: cands, slot: make(map[gridmind.NodeID]int, len(cands)), rng: rng64{uint64(seed) ^ 0x4eb7}, hold: len(cands) / 2}
	for i := range cands {
		f.slot[cands[i].Offer.Node] = i
	}
	return f
}

// heartbeats applies what the network reports after a placement: the
// chosen node (if any) is busy, the oldest task ends once hold tasks
// run, and one node reports a new latency and energy. update is called
// with each changed candidate.
func (f *fleet) heartbeats(chosen gridmind.NodeID, update func(*market.Candidate)) {
	if i, ok := f.slot[chosen]; ok {
		f.cands[i].Busy = true
		update(&f.cands[i])
		f.running = append(f.running, i)
	}
	if len(f.running) > f.hold {
		i := f.running[0]
		f.running = f.running[1:]
		f.cands[i].Busy = false
		update(&f.cands[i])
	}
	// A new round-trip sample and a new surplus reading, within ±20% and
	// ±10% of the last ones.
	c := &f.cands[f.rng.intn(len(f.cands))]
	c.LatencyMs = min(max(c.LatencyMs*(0.8+0.4*f.rng.unit()), 1), 1000)
	c.Energy.SurplusWatts *= 0.9 + 0.2*f.rng.unit()
	update(c)
}

// Run measures the placement Requester.Submit runs: a market.Index kept
// across jobs and fed by heartbeats, placing Tasks single-worker jobs on
// Nodes synthetic providers whose energy comes from the real traces at
// At, each placement followed by the heartbeats it causes (its node turns
// busy, an older task's node turns free, one node reports new latency
// and energy), on one core (it sets GOMAXPROCS to 1 for the run and
// restores it). In the same run it places the first Baseline tasks the
// old way (market.Place on the whole list) to report the speedup and check that
// both choose the same nodes.
func Run(opts Options) (Report, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 10_000
	}
	if opts.Tasks == 0 {
		opts.Tasks = 100_000
	}
	if opts.Baseline == 0 {
		opts.Baseline = 100
	}
	if opts.Nodes < 1 || opts.Tasks < 1 || opts.Baseline < 0 {
		return Report{}, gridmind.E(gridmind.KindInvalid, "marketbench", "nodes %d, tasks %d, baseline %d: want positive counts", opts.Nodes, opts.Tasks, opts.Baseline)
	}
	opts.Baseline = min(opts.Baseline, opts.Tasks)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	cpu := opts.CPU
	if cpu == nil {
		cpu = func() time.Duration { return 0 }
	}
	rep := Report{Nodes: opts.Nodes, Tasks: opts.Tasks, Baseline: opts.Baseline, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	start := now()
	initial, err := Candidates(opts.Nodes, opts.Seed, opts.At)
	if err != nil {
		return Report{}, err
	}
	tasks := Tasks(opts.Tasks, opts.Seed, initial)

	// The old path: a fresh Scheduler over the whole list per job.
	var before, after runtime.MemStats
	fleet := newFleet(slices.Clone(initial), opts.Seed)
	baseline := make([]gridmind.NodeID, opts.Baseline)
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0, c0 := now(), cpu()
	for i := range baseline {
		var chosen gridmind.NodeID
		if p, err := market.Place(tasks[i], fleet.cands, tasks[i].Seed); err == nil {
			chosen = p.Chosen[0]
		}
		baseline[i] = chosen
		fleet.heartbeats(chosen, func(*market.Candidate) {})
	}
	rep.BaselineElapsed, rep.BaselineCPU = now().Sub(t0), cpu()-c0
	runtime.ReadMemStats(&after)
	if opts.Baseline > 0 {
		rep.BaselineAllocsPP = float64(after.Mallocs-before.Mallocs) / float64(opts.Baseline)
		rep.BaselinePerSec = float64(opts.Baseline) / rep.BaselineElapsed.Seconds()
	}

	// The production path, from the same start.
	setup := now()
	fleet = newFleet(slices.Clone(initial), opts.Seed)
	var index market.Index
	index.Sync(fleet.cands)
	if _, err := index.Place(tasks[0], 0); err != nil && !errors.Is(err, market.ErrNoCapacity) {
		return Report{}, err // (the first placement lays the index out)
	}
	update := func(c *market.Candidate) { index.Update(*c) }
	chosen := make([]int32, len(tasks))
	var last *market.Placement
	runtime.GC()
	rep.Setup = setup.Sub(start) + now().Sub(setup)
	runtime.ReadMemStats(&before)
	t0, c0 = now(), cpu()
	for i := range tasks {
		var id gridmind.NodeID
		chosen[i] = -1
		if p, err := index.Place(tasks[i], tasks[i].Seed); err == nil {
			id, last = p.Chosen[0], p
			chosen[i] = int32(fleet.slot[id])
		}
		fleet.heartbeats(id, update)
	}
	rep.Elapsed, rep.CPU = now().Sub(t0), cpu()-c0
	runtime.ReadMemStats(&after)
	rep.HeartbeatsPerPlacement = 3

	for i, want := range baseline {
		if chosen[i] >= 0 && initial[chosen[i]].Offer.Node == want || chosen[i] < 0 && want == "" {
			rep.BaselineAgreed++
		}
	}
	busy := 0
	for i := range fleet.cands {
		if fleet.cands[i].Busy {
			busy++
		}
	}
	rep.BusyAtEnd = float64(busy) / float64(len(fleet.cands))
	if last != nil {
		t := now()
		last.Complete()
		rep.Explain = now().Sub(t)
	}
	// Submit today rebuilds its list from the ledger per job and Syncs it.
	for i := 0; i < len(fleet.cands); i += 100 {
		fleet.cands[i].LatencyMs++
	}
	t := now()
	index.Sync(fleet.cands)
	rep.Sync = now().Sub(t)

	green, greenOnSurplus := 0, 0
	for i, c := range chosen {
		if c < 0 {
			rep.Unplaced++
			continue
		}
		rep.Placed++
		if tasks[i].GreenPreference >= 50 {
			green++
			if initial[c].Energy.Coverage() >= 0.5 {
				greenOnSurplus++
			}
		}
	}
	if green > 0 {
		rep.GreenOnSurplus = float64(greenOnSurplus) / float64(green)
	}
	rep.AllocsPerPlacement = float64(after.Mallocs-before.Mallocs) / float64(len(tasks))
	rep.BytesPerPlacement = float64(after.TotalAlloc-before.TotalAlloc) / float64(len(tasks))
	if rep.Elapsed > 0 {
		rep.PlacementsPerSec = float64(len(tasks)) / rep.Elapsed.Seconds()
	}
	if rep.CPU > 0 {
		rep.PlacementsPerCPUSec = float64(len(tasks)) / rep.CPU.Seconds()
	}
	if rep.BaselinePerSec > 0 {
		rep.Speedup = rep.PlacementsPerSec / rep.BaselinePerSec
	}
	return rep, nil
}

// rng64 draws the synthetic population: SplitMix64 (as market's seeded
// source), so a seed means the same fleet on every machine.
type rng64 struct{ state uint64 }

func (r *rng64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng64) intn(n int) int { return int(r.next() % uint64(n)) }

// unit is uniform in [0, 1].
func (r *rng64) unit() float64 { return float64(r.next()>>11) / (1 << 53) }

// between is uniform in [lo, hi].
func (r *rng64) between(lo, hi uint64) uint64 { return lo + r.next()%(hi-lo+1) }

// Candidates builds n synthetic providers for benchmarks and the
// simulator: energy profiles from energy.Presets (eight real zones, real
// PV and carbon traces at the hour at, forecast over four hours), and
// hardware, price, stake, reputation and latency drawn from seed.
func Candidates(n int, seed int64, at time.Time) ([]market.Candidate, error) {
	if at.IsZero() {
		at = time.Date(2023, 6, 21, 12, 0, 0, 0, time.UTC)
	}
	rng := rng64{uint64(seed) ^ 0xc0ffee}
	profiles := energy.Presets(n)
	out := make([]market.Candidate, n)
	for i, prof := range profiles {
		site, err := energy.NewSite(prof)
		if err != nil {
			return nil, err
		}
		z, _ := energy.ZoneByID(prof.Zone)
		out[i] = market.Candidate{
			Offer: gridmind.Offer{
				Node:             nodeID(i),
				Hardware:         gridmind.Hardware{CPUCores: 4 << rng.intn(4), MemoryBytes: rng.between(16, 128) << 30},
				ThroughputMFLOPS: rng.between(50_000, 5_000_000),
				PricePerUnit:     gridmind.Amount(rng.between(50, 1000)),
				Region:           z.Region,
				EnergyZone:       z.ID,
			},
			Stake:      gridmind.Amount(rng.between(0, 2000)) * gridmind.UnitsPerGRID,
			Reputation: rng.between(0, 1_000_000),
			LatencyMs:  float64(rng.between(5, 300)),
			Energy:     market.EnergyFromSite(site, at, 4*time.Hour),
			Busy:       rng.intn(20) == 0,
		}
	}
	return out, nil
}

// nodeID is a readable stand-in id; placement only compares ids.
func nodeID(i int) gridmind.NodeID { return gridmind.NodeID(fmt.Sprintf("bench-node-%06d", i)) }

// Tasks draws n single-worker task specs against the regions of cands:
// 1–8 GiB each, half with a throughput floor, half with a price cap, a
// fifth limited to one or two regions, a tenth excluding one, green
// preference uniform in 0..100, some with reputation and stake floors.
func Tasks(n int, seed int64, cands []market.Candidate) []gridmind.JobSpec {
	rng := rng64{uint64(seed) ^ 0x7a5c}
	var regions []string
	seen := map[string]bool{}
	for _, c := range cands {
		if !seen[c.Offer.Region] {
			seen[c.Offer.Region] = true
			regions = append(regions, c.Offer.Region)
		}
	}
	out := make([]gridmind.JobSpec, n)
	for i := range out {
		s := gridmind.JobSpec{
			Name: "task", Model: "mlp", Workers: 1, Rounds: 1, InnerSteps: 1, Budget: gridmind.UnitsPerGRID, Seed: int64(i),
			MinMemoryBytes:  rng.between(1, 8) << 30,
			GreenPreference: rng.intn(101),
		}
		if rng.intn(2) == 0 {
			s.MinThroughputMFLOPS = rng.between(50_000, 1_000_000)
		}
		if rng.intn(2) == 0 {
			s.MaxPricePerUnit = gridmind.Amount(rng.between(200, 1000))
		}
		if len(regions) > 0 && rng.intn(5) == 0 {
			s.RegionsAllowed = []string{regions[rng.intn(len(regions))]}
			if rng.intn(2) == 0 {
				s.RegionsAllowed = append(s.RegionsAllowed, regions[rng.intn(len(regions))])
			}
		} else if len(regions) > 0 && rng.intn(8) == 0 {
			s.RegionsExcluded = []string{regions[rng.intn(len(regions))]}
		}
		if rng.intn(10) < 3 {
			s.MinReputation = 10 + rng.intn(51)
		}
		if rng.intn(10) < 3 {
			s.MinStake = gridmind.Amount(rng.between(1, 500)) * gridmind.UnitsPerGRID
		}
		out[i] = s
	}
	return out
}
