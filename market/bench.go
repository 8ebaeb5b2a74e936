package market

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// BenchOptions configure RunBench.
type BenchOptions struct {
	Nodes int   // default 10,000
	Tasks int   // default 100,000
	Limit int   // feasible candidates examined per placement: 0 means ceil(log2(Nodes)) as Nomad does, -1 means every node
	Seed  int64 // for the synthetic nodes and tasks, and the candidate source
	// At is the hour whose real energy traces the nodes report; the zero
	// value means 2023-06-21 12:00 UTC.
	At time.Time
	// Now is the clock that times the run; nil means time.Now. This is the
	// only clock the package reads, and only here.
	Now func() time.Time
}

// BenchReport is what RunBench measured.
type BenchReport struct {
	Nodes              int           `json:"nodes"`
	Tasks              int           `json:"tasks"`
	Limit              int           `json:"limit"` // 0: every node
	Placed             int           `json:"placed"`
	Unplaced           int           `json:"unplaced"`
	Setup              time.Duration `json:"setup_ns"`   // building nodes, tasks and the scheduler (not timed below)
	Elapsed            time.Duration `json:"elapsed_ns"` // placing every task
	PlacementsPerSec   float64       `json:"placements_per_sec"`
	MeanExamined       float64       `json:"mean_examined"` // candidates walked per placement
	AllocsPerPlacement float64       `json:"allocs_per_placement"`
	GOMAXPROCS         int           `json:"gomaxprocs"`
	// GreenOnSurplus is the share of tasks with green_preference >= 50 that
	// landed on a node whose surplus covers at least half of its draw: a
	// check that the fast path still honours clean energy.
	GreenOnSurplus float64 `json:"green_on_surplus"`
}

// MarkdownHeader is the header of the table MarkdownRow fills.
func (BenchReport) MarkdownHeader() string {
	return "| nodes | tasks | limit | placed | placements/s (1 core) | mean examined | allocs/placement | green tasks on surplus |\n" +
		"|---:|---:|---:|---:|---:|---:|---:|---:|"
}

// MarkdownRow prints the report as one row of a Markdown table.
func (r BenchReport) MarkdownRow() string {
	limit := fmt.Sprint(r.Limit)
	if r.Limit == 0 {
		limit = "all"
	}
	return fmt.Sprintf("| %d | %d | %s | %d | %.0f | %.1f | %.2f | %.0f%% |",
		r.Nodes, r.Tasks, limit, r.Placed, r.PlacementsPerSec, r.MeanExamined, r.AllocsPerPlacement, 100*r.GreenOnSurplus)
}

// RunBench measures placement throughput: Tasks single-worker placements
// on Nodes synthetic providers whose energy comes from the real traces at
// At, each placement consuming memory on its node (bin packing), on one
// core (it sets GOMAXPROCS to 1 for the run and restores it).
func RunBench(opts BenchOptions) (BenchReport, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 10_000
	}
	if opts.Tasks == 0 {
		opts.Tasks = 100_000
	}
	if opts.Nodes < 1 || opts.Tasks < 1 || opts.Limit < -1 {
		return BenchReport{}, gridmind.E(gridmind.KindInvalid, "market.bench", "nodes %d, tasks %d, limit %d: want positive counts and limit >= -1", opts.Nodes, opts.Tasks, opts.Limit)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	limit := opts.Limit
	switch limit {
	case 0:
		limit = max(2, bits.Len(uint(opts.Nodes-1))) // ceil(log2(n))
	case -1:
		limit = 0
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	start := now()
	cands, err := BenchCandidates(opts.Nodes, opts.Seed, opts.At)
	if err != nil {
		return BenchReport{}, err
	}
	tasks := BenchTasks(opts.Tasks, opts.Seed, cands)
	sched, err := NewScheduler(cands, Options{Seed: opts.Seed, Limit: limit, TrackMemory: true})
	if err != nil {
		return BenchReport{}, err
	}
	rep := BenchReport{Nodes: opts.Nodes, Tasks: opts.Tasks, Limit: limit, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	chosen := make([]int32, len(tasks))
	runtime.GC()
	rep.Setup = now().Sub(start)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	examined := 0
	t0 := now()
	for i := range tasks {
		c, ex, ok := sched.PlaceTask(&tasks[i])
		examined += ex
		if !ok {
			c = -1
		}
		chosen[i] = int32(c)
	}
	rep.Elapsed = now().Sub(t0)
	runtime.ReadMemStats(&after)

	green, greenOnSurplus := 0, 0
	for i, c := range chosen {
		if c < 0 {
			rep.Unplaced++
			continue
		}
		rep.Placed++
		if tasks[i].GreenPreference >= 50 {
			green++
			if cands[c].Energy.Coverage() >= 0.5 {
				greenOnSurplus++
			}
		}
	}
	if green > 0 {
		rep.GreenOnSurplus = float64(greenOnSurplus) / float64(green)
	}
	rep.MeanExamined = float64(examined) / float64(len(tasks))
	rep.AllocsPerPlacement = float64(after.Mallocs-before.Mallocs) / float64(len(tasks))
	if rep.Elapsed > 0 {
		rep.PlacementsPerSec = float64(len(tasks)) / rep.Elapsed.Seconds()
	}
	return rep, nil
}

// benchRand draws the synthetic population.
type benchRand struct{ splitmix }

func (r *benchRand) intn(n int) int { return int(r.next() % uint64(n)) }

// between is uniform in [lo, hi].
func (r *benchRand) between(lo, hi uint64) uint64 { return lo + r.next()%(hi-lo+1) }

// BenchCandidates builds n synthetic providers for benchmarks and the
// simulator: energy profiles from energy.Presets (eight real zones, real
// PV and carbon traces at the hour at, forecast over four hours), and
// hardware, price, stake, reputation and latency drawn from seed.
func BenchCandidates(n int, seed int64, at time.Time) ([]Candidate, error) {
	if at.IsZero() {
		at = time.Date(2023, 6, 21, 12, 0, 0, 0, time.UTC)
	}
	rng := benchRand{splitmix(uint64(seed) ^ 0xc0ffee)}
	profiles := energy.Presets(n)
	out := make([]Candidate, n)
	for i, prof := range profiles {
		site, err := energy.NewSite(prof)
		if err != nil {
			return nil, err
		}
		z, _ := energy.ZoneByID(prof.Zone)
		out[i] = Candidate{
			Offer: gridmind.Offer{
				Node:             benchNodeID(i),
				Hardware:         gridmind.Hardware{CPUCores: 4 << rng.intn(4), MemoryBytes: rng.between(16, 128) << 30},
				ThroughputMFLOPS: rng.between(50_000, 5_000_000),
				PricePerUnit:     gridmind.Amount(rng.between(50, 1000)),
				Region:           z.Region,
				EnergyZone:       z.ID,
			},
			Stake:      gridmind.Amount(rng.between(0, 2000)) * gridmind.UnitsPerGRID,
			Reputation: rng.between(0, 1_000_000),
			LatencyMs:  float64(rng.between(5, 300)),
			Energy:     EnergyFromSite(site, at, 4*time.Hour),
			Busy:       rng.intn(20) == 0,
		}
	}
	return out, nil
}

// benchNodeID is a readable stand-in id; placement only compares ids.
func benchNodeID(i int) gridmind.NodeID { return gridmind.NodeID(fmt.Sprintf("bench-node-%06d", i)) }

// BenchTasks draws n single-worker task specs against the regions of cands:
// 1–8 GiB each, half with a throughput floor, half with a price cap, a
// fifth limited to one or two regions, a tenth excluding one, green
// preference uniform in 0..100, some with reputation and stake floors.
func BenchTasks(n int, seed int64, cands []Candidate) []gridmind.JobSpec {
	rng := benchRand{splitmix(uint64(seed) ^ 0x7a5c)}
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
			Name: "task", Model: "mlp", Workers: 1, Rounds: 1, InnerSteps: 1, Budget: gridmind.UnitsPerGRID,
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
