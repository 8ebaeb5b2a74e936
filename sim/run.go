package sim

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

type jobState uint8

const (
	jobQueued jobState = iota
	jobRunning
	jobDone
)

// runJob is a job's life under one policy.
type runJob struct {
	def        *simJobDef
	state      jobState
	members    []int32
	round      roundModel
	progressTF float64
	claimedTF  float64 // work its members claimed: progressTF plus what cheaters skipped
	rounds     float64 // rounds done, fractional
	counted    int     // whole rounds credited to reputation and pay
	penalty    float64 // seconds of stall owed (a crash's take-over)
	started    float64 // step, fractional
	finished   float64
	excluded   []int32 // caught cheating on this job
	leased     []int32 // nodes holding a ledger lease on this job
	receipted  int     // ledger rounds receipted
	auditedAt  int     // counted at the last audit of its cheaters
	usage      energy.Usage
	peak       int // most workers at once
}

// runNode is a provider's life under one policy.
type runNode struct {
	site     *energy.Site
	job      int32 // running job index + 1, 0 when idle
	online   bool
	cursor   int
	caught   int
	upSeen   uint64  // hourly uptime checks passed since the last attestation
	upChecks uint64  // and made
	busyFrac float64 // share of this step the device computes
	busyJob  int32   // for which job (index)
	runJob   int32   // the job of run
	run      workerRun
}

// runner plays one policy on the world.
type runner struct {
	w      *world
	policy Policy
	sun    market.SunPolicy
	nodes  []runNode
	jobs   []runJob
	queue  []int32 // queued jobs, arrival order
	run    []int32 // running jobs
	rng    *rand.Rand
	chain  *simChain       // this policy's ledger: escrow, leases, pay, slashes, reputation
	ctx    context.Context // the run stops when it is done
	audit  verify.Policy
	stepS  float64
	out    PolicyResult
	// per-step admission cache: coverage of node i for a run of bucket b,
	// valid when stamp matches the step.
	cover      [][outlookBuckets]float32
	coverStamp [][outlookBuckets]int32
	failBucket [outlookBuckets]bool // a gated walk found nobody this step
	cands      []market.Candidate
	spec       gridmind.JobSpec
	sched      *market.Scheduler
	runs       []workerRun // every node's stays on jobs, for the run-aware ceiling
}

// placeLimit is how many feasible candidates (under the sun policy:
// admitted ones) a placement ranks before it takes the best, the market's
// Nomad-style limit. Ranking every node made each placement walk the
// whole fleet, so a step cost nodes × placements: 20,000 nodes × 1 day
// took 70 s of CPU for the sun policy alone, 100,000 nodes hours. The
// best of 64 random admitted candidates is, with eight zones, almost
// always in the cleanest zone the best of all would be in: at 2,000
// nodes × 3 days every policy's figures moved by under 1%.
const placeLimit = 64

// outlookBuckets are the run lengths admission forecasts: 1, 2, 4, 8 and 16 hours.
const outlookBuckets = 5

// rankHours is the run length whose forecast coverage ranks nodes under
// the sun policy (market.SunPolicy.SunEnergy): the scheduler scores every
// node once a step, not once per job, and admission has already checked
// each job's own run.
const rankHours = 2

func bucketOf(hours float64) int {
	b := 0
	for b < outlookBuckets-1 && float64(int(1)<<b) < hours {
		b++
	}
	return b
}

func newRunner(ctx context.Context, w *world, p Policy) (*runner, error) {
	chain, err := newSimChain(w)
	if err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, w: w, policy: p, sun: w.cfg.Sun, chain: chain, audit: verify.DefaultPolicy(), stepS: w.cfg.Step.Seconds()}
	r.rng = rand.New(rand.NewPCG(uint64(w.cfg.Seed), uint64(len(p))*0x9e37+uint64(p[0])))
	r.nodes = make([]runNode, len(w.nodes))
	for i := range r.nodes {
		r.nodes[i].site = w.sites[i].Clone()
		r.nodes[i].run.energyWh = -1
	}
	r.jobs = make([]runJob, len(w.jobs))
	for j := range r.jobs {
		r.jobs[j].def = &w.jobs[j]
	}
	r.cover = make([][outlookBuckets]float32, len(w.nodes))
	r.coverStamp = make([][outlookBuckets]int32, len(w.nodes))
	r.cands = make([]market.Candidate, len(w.nodes))
	for i, n := range w.nodes {
		r.cands[i] = market.Candidate{
			Offer: gridmind.Offer{Node: n.id, Hardware: gridmind.Hardware{MemoryBytes: n.memory}, ThroughputMFLOPS: uint64(n.tflops * 1e6),
				PricePerUnit: n.price, Region: n.region, EnergyZone: n.profile.Zone},
			Stake: n.stake, LatencyMs: n.rttMs,
		}
	}
	// A provider the ledger would not lease (its stake below the chain's
	// minimum: a caught cheater's was slashed) is not a candidate.
	if !slices.IsSortedFunc(r.cands, func(a, b market.Candidate) int { return cmp.Compare(a.Offer.Node, b.Offer.Node) }) {
		return nil, fmt.Errorf("sim: nodes are not in node id order, the order the market names candidates by")
	}
	r.spec = gridmind.JobSpec{Workers: 1, MinReputation: minReputation, MinStake: chain.fork.Params().MinProviderStake}
	switch p {
	case PolicySun:
		r.spec.GreenPreference = w.cfg.GreenPreference
	case PolicyCarbon:
		r.spec.GreenPreference = 100
	}
	r.out = PolicyResult{Policy: p}
	r.out.zoneIDs = slices.Clone(w.zoneIDs)
	r.out.zones = make([]energy.Usage, len(w.zoneIDs))
	return r, nil
}

func (r *runner) at(step float64) time.Time {
	return r.w.start.Add(time.Duration(step * float64(r.w.cfg.Step)))
}

// height is the ledger's height at step's first block: one block a second.
func (r *runner) height(step int) uint64 { return uint64(r.chain.heightOf(step)) }

// play runs every step.
func (r *runner) play(progress func()) error {
	w := r.w
	next := 0
	stepsPerHour := stepsOf(time.Hour, w.cfg.Step)
	for s := 0; s < w.steps; s++ {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.chain.beginStep(s); err != nil {
			return err
		}
		r.churn(s)
		for next < len(w.jobs) && w.jobs[next].arrival == s {
			if err := r.chain.postJob(int32(next)); err != nil {
				return err
			}
			r.queue = append(r.queue, int32(next))
			next++
		}
		if s%stepsPerHour == 0 {
			r.observeUptime(s)
		}
		if len(r.queue) > 0 || len(r.run) > 0 {
			if err := r.schedule(s); err != nil {
				return err
			}
		}
		if err := r.advance(s); err != nil {
			return err
		}
		if progress != nil {
			progress()
		}
		if next == len(w.jobs) && len(r.queue) == 0 && len(r.run) == 0 && s >= w.arrivalEnd {
			r.out.StepsRun = s + 1
			break
		}
		r.out.StepsRun = s + 1
	}
	for i := range r.nodes {
		r.flushRun(i)
	}
	if err := r.chain.finish(append(slices.Clone(r.queue), r.run...)); err != nil {
		return err
	}
	r.out.Ledger = r.chain.out
	r.out.Ledger.Hardware = r.chain.hardware()
	r.sampleTrust(r.out.StepsRun)
	return nil
}

// churn brings nodes up and down; a node that goes down under a lease
// fails its round.
func (r *runner) churn(s int) {
	for i := range r.nodes {
		n := &r.nodes[i]
		up := r.w.onlineAt(i, s, &n.cursor)
		if n.online && !up && n.job != 0 {
			// Its lease stays: the ledger counts the rounds it misses.
			r.dropMember(n.job-1, int32(i), true, s)
		}
		n.online = up
	}
}

// attestHours is how often the observers attest what their hourly
// checks saw: each attestation is a few transactions of a thousand nodes.
const attestHours = 6

// observeUptime checks every node in the network each hour and, every
// attestHours, has the observers attest the counts on the ledger.
func (r *runner) observeUptime(s int) {
	for i := range r.nodes {
		n := &r.nodes[i]
		if s < r.w.nodes[i].join || s >= r.w.nodes[i].leave {
			continue
		}
		n.upChecks++
		if n.online {
			n.upSeen++
		}
	}
	if hour := s / stepsOf(time.Hour, r.w.cfg.Step); hour%attestHours != attestHours-1 {
		return
	}
	var obs []ledger.Observation
	for i := range r.nodes {
		n := &r.nodes[i]
		if n.upChecks > 0 {
			obs = append(obs, ledger.Observation{Node: r.w.nodes[i].id, Seen: n.upSeen, Expected: n.upChecks})
			n.upSeen, n.upChecks = 0, 0
		}
	}
	r.chain.attest(obs)
}

// dropMember takes node i out of job j: a crash loses the round in flight.
func (r *runner) dropMember(j int32, i int32, crashed bool, s int) {
	job := &r.jobs[j]
	k := slices.Index(job.members, i)
	if k < 0 {
		return
	}
	if crashed {
		ids := make([]gridmind.NodeID, len(job.members))
		for m, x := range job.members {
			ids[m] = r.w.nodes[x].id
		}
		wasLeader := train.LeaderOf(ids, uint64(job.counted), 0) == r.w.nodes[i].id
		job.penalty += crashPenalty(wasLeader)
		// The round in flight is lost for everyone.
		lost := job.rounds - math.Floor(job.rounds)
		job.progressTF -= lost * float64(job.round.useful) * job.def.roundTF
		job.rounds = math.Floor(job.rounds)
		r.out.CrashesUnderLease++
	}
	job.members = slices.Delete(job.members, k, k+1)
	r.nodes[i].job = 0
	job.round = modelRound(job.def, job.members, r.w.nodes)
}

func (r *runner) addMember(j int32, i int32) {
	job := &r.jobs[j]
	job.members = append(job.members, i)
	r.nodes[i].job = j + 1
	job.round = modelRound(job.def, job.members, r.w.nodes)
	job.peak = max(job.peak, len(job.members))
}

// buildScheduler prepares the market over the idle online nodes.
func (r *runner) buildScheduler(s int) error {
	now := r.at(float64(s))
	h := r.height(s)
	for i := range r.nodes {
		n := &r.nodes[i]
		c := &r.cands[i]
		c.Busy = !n.online || n.job != 0
		if c.Busy {
			continue
		}
		c.Reputation = r.chain.reputation(i).Score(int64(h)).Total
		switch r.policy {
		case PolicySun, PolicyCarbon:
			// Carbon only: the grid's intensity now. Sun: the cost of a
			// unit of work, the grid weighed against the node's sun
			// (market.SunPolicy.SunEnergy).
			if r.policy == PolicySun {
				c.Energy = r.sun.SunEnergy(n.site, now, r.coverage(i, s, rankHours), r.w.nodes[i].tflops)
			} else {
				c.Energy = market.GridEnergy(n.site, now)
			}
		}
	}
	opts := market.Options{Seed: r.w.cfg.Seed + int64(s), Limit: placeLimit}
	switch r.policy {
	case PolicyPrice:
		opts.Weights = market.Weights{Price: 1}
	case PolicyRandom, PolicyCarbon:
		// Random: every node scores the same and the seeded source decides;
		// carbon: the green score decides (green preference 100).
		opts.Weights = market.Weights{Latency: 1}
		for i := range r.cands {
			r.cands[i].LatencyMs = 0
		}
	}
	if r.policy == PolicyRandom {
		opts.Limit = 1
	}
	var err error
	r.sched, err = market.NewScheduler(r.cands, opts)
	if r.policy == PolicyRandom || r.policy == PolicyCarbon {
		for i := range r.cands {
			r.cands[i].LatencyMs = r.w.nodes[i].rttMs
		}
	}
	return err
}

// coverage is the forecast share of a run of hours on node i that surplus
// covers, cached per step and run-length bucket.
func (r *runner) coverage(i int, s int, hours float64) float64 {
	b := bucketOf(hours)
	if r.coverStamp[i][b] == int32(s+1) {
		return float64(r.cover[i][b])
	}
	n := &r.nodes[i]
	prof := &r.w.nodes[i].profile
	var c float64
	if prof.SolarPeakKW > 0 {
		d := time.Duration(float64(int(1)<<b) * float64(time.Hour))
		c = market.Outlook(n.site, r.at(float64(s)), d, prof.BusyWatts).Coverage()
	}
	r.cover[i][b], r.coverStamp[i][b] = float32(c), int32(s+1)
	return c
}

// workerHours is how long a worker of job on node i (-1: a median node)
// would run: the work left spread over the job's target workers.
func (r *runner) workerHours(job *runJob, i int, workers int) float64 {
	left := job.def.workTF - job.progressTF
	tflops := r.w.medianTF
	if i >= 0 {
		tflops = r.w.nodes[i].tflops
	}
	return left / float64(max(workers, 1)) / tflops / 3600
}

// remaining is the wall time job needs to finish with workers: at the
// pace its current members show (communication, stragglers and cheaters
// included), or the expected pace before it has any, plus stalls owed.
func (r *runner) remaining(job *runJob, workers int) time.Duration {
	left := job.def.workTF - job.progressTF
	pace := job.def.paceTF
	if len(job.members) > 0 && job.round.seconds > 0 {
		pace = min(pace, float64(job.round.useful)*job.def.roundTF/job.round.seconds/float64(len(job.members)))
	}
	pace = max(pace, job.def.paceTF/4)
	secs := left/(pace*float64(max(workers, 1))) + job.penalty
	return time.Duration(secs * float64(time.Second))
}

// placeOne places one worker of job. Every policy asks that the node fit
// the job's round (fitsRound: nobody misses the ready deadline); with no
// such node it takes any. Under the sun policy every placement also asks
// that the node finish its share before the deadline (SunPolicy.InTime);
// gated placements also ask for surplus over the run
// (SunPolicy.AdmitsCoverage). An urgent placement that finds no node fast
// enough takes the best feasible one.
func (r *runner) placeOne(j int32, s int, gated bool) bool {
	job := &r.jobs[j]
	lo, hi := speedRange(job.members, r.w.nodes)
	fits := func(i int) bool { return fitsRound(job.def, lo, hi, r.w.nodes[i].tflops) }
	var c int
	var ok bool
	if r.policy == PolicySun {
		now := r.at(float64(s))
		deadline := r.at(float64(job.def.deadline))
		target := job.def.maxWorkers
		// A walk that found no node with surplus is remembered per run
		// length, so a dark hour costs one walk per bucket, not one per
		// job. Surplus is asked first so that the memory is right: a
		// walk that also turned sunny nodes down for the job's own sake
		// (too slow for its deadline, out of step with its round) says
		// nothing about the next job, and remembering it sent every job
		// of the bucket to wait out the step (at 10,000 nodes over a week,
		// the queue this built cut the surplus share from 99% to 70%).
		b := bucketOf(r.workerHours(job, -1, target))
		if gated && r.failBucket[b] {
			return false
		}
		jobSpecific := false
		c, _, ok = r.sched.PlaceTaskAdmit(&r.spec, func(i int) bool {
			if gated && !r.sun.AdmitsWorker(r.nodes[i].site.CarbonIntensity(now), r.coverage(i, s, r.workerHours(job, i, target))) {
				return false
			}
			if !fits(i) || !r.sun.InTime(now, deadline, r.remainingOn(job, i, target)) {
				jobSpecific = true
				return false
			}
			return true
		})
		if !ok && gated && !jobSpecific {
			r.failBucket[b] = true
		}
		if !ok && !gated {
			if c, _, ok = r.sched.PlaceTaskAdmit(&r.spec, fits); !ok {
				c, _, ok = r.sched.PlaceTask(&r.spec)
			}
		}
	} else if c, _, ok = r.sched.PlaceTaskAdmit(&r.spec, fits); !ok {
		c, _, ok = r.sched.PlaceTask(&r.spec)
	}
	if !ok {
		return false
	}
	r.sched.SetBusy(c, true)
	if slices.Contains(job.excluded, int32(c)) {
		return r.placeOne(j, s, gated)
	}
	r.addMember(j, int32(c))
	return true
}

// lease has the ledger lease every member of the running jobs that holds
// no lease on its job yet. A member the ledger refuses (its stake no
// longer covers the pots of all its leases) leaves the job; the node is
// not offered again this step.
func (r *runner) lease() {
	for _, j := range r.run {
		job := &r.jobs[j]
		for k := len(job.members) - 1; k >= 0; k-- {
			i := job.members[k]
			if slices.Contains(job.leased, i) {
				continue
			}
			if r.chain.lease(j, i, uint64(job.receipted)) {
				job.leased = append(job.leased, i)
				continue
			}
			r.out.LeasesRefused++
			r.dropMember(j, i, false, 0)
		}
	}
}

// remainingOn is the wall time job needs with workers like node i: its
// share of the work at i's speed, stretched by the job's expected
// communication and ready wait per round. (The pace the job was drawn
// with is no measure of i: it holds the speed of the nodes it was drawn
// on, so a job drawn on fast nodes got a tight deadline and then admitted
// nodes too slow for it.)
func (r *runner) remainingOn(job *runJob, i int, workers int) time.Duration {
	left := job.def.workTF - job.progressTF
	secs := left / float64(max(workers, 1)) / r.w.nodes[i].tflops * max(job.def.overhead, 1)
	return time.Duration(secs*float64(time.Second)) + time.Duration(job.penalty*float64(time.Second))
}

// schedule places queued jobs and, under the sun policy, lets running
// jobs follow the sun.
func (r *runner) schedule(s int) error {
	if err := r.buildScheduler(s); err != nil {
		return err
	}
	r.failBucket = [outlookBuckets]bool{}
	now := r.at(float64(s))
	step := r.w.cfg.Step
	remaining := r.remaining
	deadline := func(job *runJob) time.Time { return r.at(float64(job.def.deadline)) }

	if r.policy != PolicySun {
		// Replace crashed workers with standbys.
		for _, j := range r.run {
			job := &r.jobs[j]
			for len(job.members) < job.def.maxWorkers && r.placeOne(j, s, false) {
			}
		}
	} else {
		// Running jobs first: they hold leases and deadlines.
		for _, j := range r.run {
			job := &r.jobs[j]
			urgent := r.sun.Urgent(now, deadline(job), remaining(job, len(job.members)), step)
			if !urgent && len(job.members) > job.def.minWorkers {
				for k := len(job.members) - 1; k >= 0 && len(job.members) > job.def.minWorkers; k-- {
					i := job.members[k]
					if !r.sun.KeepsWorker(r.nodes[i].site.CarbonIntensity(now), r.coverage(int(i), s, 1)) {
						r.dropMember(j, i, false, s)
						r.out.Shed++
						r.sched.SetBusy(int(i), false)
					}
				}
			}
			for len(job.members) < job.def.maxWorkers {
				// A deadline wins: an urgent job grows to its maximum
				// on the best feasible nodes, whatever their energy.
				gated := !urgent
				if !r.placeOne(j, s, gated) {
					break
				}
				if gated {
					r.out.Grown++
				}
			}
		}
	}

	waiting := r.queue[:0]
	for _, j := range r.queue {
		job := &r.jobs[j]
		switch r.policy {
		case PolicySun:
			for len(job.members) < job.def.maxWorkers && r.placeOne(j, s, true) {
			}
			mayWait := r.sun.MayWait(now, r.at(float64(job.def.arrival)), deadline(job), remaining(job, job.def.maxWorkers), step)
			if len(job.members) < job.def.minWorkers && !mayWait {
				for len(job.members) < job.def.maxWorkers && r.placeOne(j, s, false) {
				}
			}
			if len(job.members) < job.def.minWorkers {
				for len(job.members) > 0 {
					i := job.members[len(job.members)-1]
					r.dropMember(j, i, false, s)
					r.sched.SetBusy(int(i), false)
				}
				waiting = append(waiting, j)
				continue
			}
		default:
			for len(job.members) < job.def.maxWorkers && r.placeOne(j, s, false) {
			}
			if len(job.members) < job.def.maxWorkers {
				for len(job.members) > 0 {
					i := job.members[len(job.members)-1]
					r.dropMember(j, i, false, s)
					r.sched.SetBusy(int(i), false)
				}
				waiting = append(waiting, j)
				continue
			}
		}
		job.state = jobRunning
		job.started = float64(s)
		r.run = append(r.run, j)
	}
	r.queue = waiting
	r.lease()
	return nil
}

// minReputation is the reputation floor (0..100) every simulated job
// sets in its spec, under every policy. A new provider starts at 12 and
// stays above 10 through a crash; one caught cheating falls below it and
// gets no more work until it earns its way back. Without the floor the
// ranking policies placed the same caught cheaters job after job (sun
// caught 7,575 cheats from 115 cheaters at 2,000 nodes × 3 days, 66% load),
// and every deadline sun still missed in winter was a job that had
// waited for the sun and then lost rounds to cheaters.
const minReputation = 10
