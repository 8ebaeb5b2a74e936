package market

import (
	"cmp"
	"errors"
	"slices"

	"github.com/gridmind/gridmind"
)

// Options configure a Scheduler.
type Options struct {
	// Seed orders the candidate source. The same candidates and seed give
	// the same placements, whatever order the candidates came in.
	Seed int64
	// Limit is how many feasible candidates one placement examines before
	// picking the best of them (Nomad's limit iterator); 0 examines all.
	// A placement of k workers examines at least k.
	Limit int
	// Weights of the rankers; the zero value means DefaultWeights.
	Weights Weights
	// TrackMemory makes each placement consume the job's MinMemoryBytes on
	// the chosen node, so many small tasks bin-pack onto a node; without
	// it every node takes at most one worker of a job and memory is a floor.
	TrackMemory bool
}

// node is the hot, compact form of a candidate the pipeline walks.
type node struct {
	memory uint64 // free memory (consumed with TrackMemory)
	tput   uint64
	price  uint64
	stake  uint64
	rep    uint64
	region uint32
	flag   Check   // CheckDuplicate or CheckBusy when the node can never be used
	base   float64 // weighted price, reputation, throughput and latency scores
	green  float64 // clean-energy score
}

// Scheduler places jobs on a fixed set of candidates. Building it sorts,
// shuffles and scores the candidates once (O(n log n)); each placement
// then walks the shuffled source from where the previous one stopped, so
// a placement with a limit costs O(limit) rather than O(n). A Scheduler
// is not safe for concurrent use.
type Scheduler struct {
	cands []Candidate // sorted by node id
	// The candidate source is a seeded shuffle, and nodes are stored in
	// that order so the walk reads memory sequentially: nodes[k] is
	// candidate src[k], and pos[i] is where candidate i sits.
	nodes  []node
	src    []int32
	pos    []int32
	cursor int
	opts   Options
	norm   normalizer
	marks  regionMarks
}

// NewScheduler prepares candidates for placement.
func NewScheduler(cands []Candidate, opts Options) (*Scheduler, error) {
	return newScheduler(slices.Clone(cands), opts)
}

// newScheduler is NewScheduler taking cands for its own.
func newScheduler(cands []Candidate, opts Options) (*Scheduler, error) {
	if opts.Weights == (Weights{}) {
		opts.Weights = DefaultWeights()
	}
	if err := opts.Weights.validate(); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, "market.scheduler", "%w", err)
	}
	if opts.Limit < 0 {
		return nil, gridmind.E(gridmind.KindInvalid, "market.scheduler", "limit %d: want 0 (all) or more", opts.Limit)
	}
	s := &Scheduler{opts: opts}
	s.cands = cands
	slices.SortStableFunc(s.cands, func(a, b Candidate) int { return cmp.Compare(a.Offer.Node, b.Offer.Node) })
	s.norm = newNormalizer(s.cands)
	n := len(s.cands)
	s.src = make([]int32, n)
	for i := range s.src {
		s.src[i] = int32(i)
	}
	rng := splitmix(uint64(opts.Seed))
	for i := n - 1; i > 0; i-- {
		j := int(rng.next() % uint64(i+1))
		s.src[i], s.src[j] = s.src[j], s.src[i]
	}
	s.pos = make([]int32, n)
	for k, i := range s.src {
		s.pos[i] = int32(k)
	}
	// Intern regions in node id order so ids do not depend on the seed.
	regionOf := make([]uint32, n)
	for i := range s.cands {
		regionOf[i] = s.marks.intern(s.cands[i].Offer.Region)
	}
	s.nodes = make([]node, n)
	for k, i := range s.src {
		c := &s.cands[i]
		nd := &s.nodes[k]
		*nd = node{
			memory: c.Offer.Hardware.MemoryBytes,
			tput:   c.Offer.ThroughputMFLOPS,
			price:  uint64(c.Offer.PricePerUnit),
			stake:  uint64(c.Stake),
			rep:    c.Reputation,
			region: regionOf[i],
		}
		switch {
		case i > 0 && s.cands[i-1].Offer.Node == c.Offer.Node:
			nd.flag = CheckDuplicate
		case c.Busy:
			nd.flag = CheckBusy
		}
		sc := s.norm.scores(c, opts.Weights)
		nd.base, nd.green = sc.Base, sc.Green
	}
	return s, nil
}

// Len is the number of candidates.
func (s *Scheduler) Len() int { return len(s.cands) }

// Candidate returns candidate i (in node id order) as given.
func (s *Scheduler) Candidate(i int) *Candidate { return &s.cands[i] }

// SetBusy marks candidate i busy (or free again) for later placements,
// for callers that run work on the nodes they place.
func (s *Scheduler) SetBusy(i int, busy bool) {
	nd := &s.nodes[s.pos[i]]
	switch {
	case nd.flag == CheckDuplicate:
	case busy:
		nd.flag = CheckBusy
	default:
		nd.flag = CheckNone
	}
}

// FreeMemory is what is left of candidate i's memory (with TrackMemory).
func (s *Scheduler) FreeMemory(i int) uint64 { return s.nodes[s.pos[i]].memory }

// splitmix is SplitMix64: tiny, fully specified, so a seed means the same
// order on every machine and Go version.
type splitmix uint64

func (x *splitmix) next() uint64 {
	*x += 0x9e3779b97f4a7c15
	z := uint64(*x)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ErrNoCapacity is returned when fewer feasible candidates exist than
// the job needs workers.
var ErrNoCapacity = errors.New("market: not enough feasible nodes")

// PlaceTask places one worker of spec: it walks the candidate source from
// where the last placement stopped until it has seen Limit feasible
// candidates (or every candidate), and returns the best of them. It
// allocates nothing; it is the path the benchmark measures. examined
// counts the candidates walked.
func (s *Scheduler) PlaceTask(spec *gridmind.JobSpec) (chosen int, examined int, ok bool) {
	return s.placeTask(spec, nil)
}

// PlaceTaskAdmit is PlaceTask with one more feasibility check, admit,
// which the caller supplies for facts that depend on the job and the
// moment (energy over the worker's whole run: see SunPolicy). It runs last,
// only on candidates that pass every other check, so an expensive check
// runs rarely; the limit counts admitted candidates. admit gets the
// candidate's index in node id order (Candidate(i)).
func (s *Scheduler) PlaceTaskAdmit(spec *gridmind.JobSpec, admit func(i int) bool) (chosen int, examined int, ok bool) {
	return s.placeTask(spec, admit)
}

func (s *Scheduler) placeTask(spec *gridmind.JobSpec, admit func(i int) bool) (chosen int, examined int, ok bool) {
	r := s.compile(spec)
	n := len(s.nodes)
	limit := s.opts.Limit
	if limit <= 0 || limit > n {
		limit = n
	}
	best, bestScore, found := -1, -1.0, 0
	k := s.cursor
	for examined < n && found < limit {
		nd := &s.nodes[k]
		at := k
		k++
		if k == n {
			k = 0
		}
		examined++
		if s.check(nd, &r) != CheckNone {
			continue
		}
		if admit != nil && !admit(int(s.src[at])) {
			continue
		}
		found++
		// Strictly greater: among equal scores the first in the seeded
		// source wins, which is deterministic and spreads ties.
		if sc := nd.base + r.green*(nd.green-nd.base); sc > bestScore {
			best, bestScore = at, sc
		}
	}
	s.cursor = k
	if best < 0 {
		return -1, examined, false
	}
	if s.opts.TrackMemory {
		s.nodes[best].memory -= r.minMem
	}
	return int(s.src[best]), examined, true
}

// Place chooses spec.Workers distinct nodes and explains the decision for
// every candidate. It examines candidates in the seeded order from the
// scheduler's cursor, up to the limit (at least Workers feasible ones);
// the feasible ones are ranked by score, ties broken by their position in
// the seeded order. When fewer than Workers are feasible it chooses none
// and returns ErrNoCapacity (kind unavailable) with the explanation.
func (s *Scheduler) Place(spec gridmind.JobSpec) (*Placement, error) {
	if spec.Workers < 1 {
		return nil, gridmind.E(gridmind.KindInvalid, "market.place", "workers %d: want at least 1", spec.Workers)
	}
	r := s.compile(&spec)
	n := len(s.nodes)
	limit := s.opts.Limit
	if limit <= 0 || limit > n {
		limit = n
	}
	limit = max(limit, min(spec.Workers, n))

	p := &Placement{Job: spec.Name, Seed: s.opts.Seed, Workers: spec.Workers, Candidates: make([]Explanation, n)}
	type ranked struct {
		idx   int
		pos   int
		score float64
	}
	var feasible []ranked
	for i := range s.cands {
		p.Candidates[i] = Explanation{Node: s.cands[i].Offer.Node, Region: s.cands[i].Offer.Region, Price: s.cands[i].Offer.PricePerUnit}
	}
	k := s.cursor
	for pos := 0; pos < n && len(feasible) < limit; pos++ {
		i := int(s.src[k])
		k++
		if k == n {
			k = 0
		}
		e := &p.Candidates[i]
		e.Examined = true
		p.Examined++
		e.Rejections = s.explainChecks(i, &spec, &r)
		e.Scores = s.norm.scores(&s.cands[i], s.opts.Weights)
		e.Scores.Final = e.Scores.Base + r.green*(e.Scores.Green-e.Scores.Base)
		if len(e.Rejections) == 0 {
			e.Feasible = true
			nd := &s.nodes[s.pos[i]]
			feasible = append(feasible, ranked{idx: i, pos: pos, score: nd.base + r.green*(nd.green-nd.base)})
		}
	}
	s.cursor = k
	slices.SortFunc(feasible, func(a, b ranked) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	p.Feasible = len(feasible)
	for rank, f := range feasible {
		p.Candidates[f.idx].Rank = rank + 1
	}
	if len(feasible) < spec.Workers {
		p.sort()
		return p, noCapacity(&spec, len(feasible), n, p.rejectionSummary())
	}
	for _, f := range feasible[:spec.Workers] {
		p.Candidates[f.idx].Chosen = true
		p.Chosen = append(p.Chosen, s.cands[f.idx].Offer.Node)
		if s.opts.TrackMemory {
			s.nodes[s.pos[f.idx]].memory -= r.minMem
		}
	}
	p.sort()
	return p, nil
}

// Place chooses spec.Workers nodes among cands with the default weights,
// examining every candidate, and explains the choice. The same candidates
// (in any order) and seed give the same placement.
func Place(spec gridmind.JobSpec, cands []Candidate, seed int64) (*Placement, error) {
	s, err := NewScheduler(cands, Options{Seed: seed})
	if err != nil {
		return nil, err
	}
	return s.Place(spec)
}
