package market

import (
	"slices"
	"sync"

	"github.com/gridmind/gridmind"
)

// Index is the placement state a requester keeps across jobs: the
// candidates as last heard (Update on each heartbeat or ledger change,
// Remove when one leaves, or Sync to a whole list), scored once per
// change, and grouped in a tree whose groups bound their nodes' scores
// and resources, so a placement visits the few groups that could hold the
// best feasible nodes instead of every node.
//
// Index.Place decides exactly as Place does on the same candidates and
// seed — the same nodes in the same order, the same errors — and explains
// itself only when asked: the Placement it returns keeps a snapshot of
// the candidates (a checkpoint and a log of changes: see candStore), and
// Complete (or WriteText, Explain, JSON) runs Place's full explanation on
// it, so `gridmind jobs explain` prints what it printed before. A node
// Sync lists twice counts once, as its first listing (Place considers
// only that one too, but lists the others as duplicates).
//
// The zero value is an empty index with DefaultWeights. An Index is safe
// for concurrent use.
type Index struct {
	mu      sync.Mutex
	weights Weights
	ready   bool

	slots map[gridmind.NodeID]int32 // node → its slot in nodes and cands
	free  []int32                   // slots of removed nodes, for reuse
	nodes []node                    // by slot: the compact form the search checks
	cands candStore                 // by slot: the candidates as given
	count int                       // nodes in the index

	ext    extremeCounts
	norm   normalizer
	marks  regionMarks
	tree   scoreTree
	layout []int32   // scratch for laying out the tree
	keys   []sortKey // scratch for laying out the tree
	// Work deferred to the next placement, so a burst of changes costs
	// one pass: rescan finds the extremes again (their last holder left
	// or changed), rescore recomputes every score (an extreme moved, so
	// the normalizer did), relayout rebuilds the tree (nodes came or went,
	// or drift score changes have mixed its leaves).
	rescan, rescore, relayout bool
	drift                     int

	// Ties in score go to the node earlier in the seeded source, as in
	// Place: rank is each slot's position in node id order, tiePos the
	// seeded source's position of each rank, for tieSeed and tieN nodes.
	rankStale bool
	rank      []int32
	tieSeed   int64
	tieN      int
	tiePos    []int32

	heap      []treeItem
	hits      []hit
	syncStamp uint32
	synced    []uint32 // by slot: syncStamp when Sync last saw it
}

// NewIndex returns an empty index ranking with weights (the zero value
// means DefaultWeights).
func NewIndex(weights Weights) (*Index, error) {
	if weights == (Weights{}) {
		weights = DefaultWeights()
	}
	if err := weights.validate(); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, "market.index", "%w", err)
	}
	x := &Index{weights: weights}
	x.init()
	return x, nil
}

func (x *Index) init() {
	if x.ready {
		return
	}
	if x.weights == (Weights{}) {
		x.weights = DefaultWeights()
	}
	x.slots = map[gridmind.NodeID]int32{}
	x.ext.reset()
	x.norm = x.ext.normalizer()
	x.ready = true
}

// Len is the number of candidates in the index.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.count
}

// Update adds c, or replaces what the index holds for c.Offer.Node. An
// unchanged candidate costs a comparison; a changed one a rescore of that
// node and O(log n) bounds. The index keeps its own copy of c (but shares
// c.Offer.Hardware.GPUs, which callers must not modify).
func (x *Index) Update(c Candidate) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	x.upsert(&c)
}

// Remove drops node id from the index (no-op if absent).
func (x *Index) Remove(id gridmind.NodeID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	if slot, ok := x.slots[id]; ok {
		x.remove(id, slot)
	}
}

// Sync makes the index hold exactly cands: it updates those that changed,
// adds the new and removes the ones not listed. For a caller that
// rebuilds its whole candidate list each time; cost O(len(cands)).
func (x *Index) Sync(cands []Candidate) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	x.syncStamp++
	if x.syncStamp == 0 {
		clear(x.synced)
		x.syncStamp = 1
	}
	seen := 0
	for i := range cands {
		c := &cands[i]
		slot, known := x.slots[c.Offer.Node]
		if known && x.synced[slot] == x.syncStamp {
			continue // a later listing of a node: Place ignores it too
		}
		slot = x.upsertAt(c, slot, known)
		x.synced[slot] = x.syncStamp
		seen++
	}
	if seen == x.count {
		return
	}
	for id, slot := range x.slots {
		if x.synced[slot] != x.syncStamp {
			x.remove(id, slot)
		}
	}
}

// upsert is Update with the lock held.
func (x *Index) upsert(c *Candidate) {
	slot, known := x.slots[c.Offer.Node]
	x.upsertAt(c, slot, known)
}

// upsertAt is upsert for a node known to be at slot, or not known, and
// returns its slot.
func (x *Index) upsertAt(c *Candidate, slot int32, known bool) int32 {
	var old *Candidate
	if known {
		old = x.cands.get(slot)
		if sameCandidate(old, c) {
			return slot
		}
	} else {
		slot = x.newSlot()
		x.slots[c.Offer.Node] = slot
		x.count++
		x.relayout, x.rankStale = true, true
	}
	own := new(Candidate)
	*own = *c
	// Count the new values before uncounting the old, so a node that
	// alone holds an extreme and keeps it (a busy flag changed) does not
	// leave it unheld for a moment.
	if x.ext.add(own) {
		x.rescore = true
	}
	if old != nil && x.ext.remove(old) {
		x.rescan = true
	}
	x.cands.set(int(slot), own)
	prev := x.nodes[slot]
	x.nodes[slot] = x.compact(own)
	if x.rescore || x.relayout {
		return slot // the next placement rescores or lays out everything
	}
	nd := &x.nodes[slot]
	if nd.base != prev.base || nd.green != prev.green {
		x.drift++
	}
	x.tree.update(x.nodes, slot, &prev)
	return slot
}

func (x *Index) remove(id gridmind.NodeID, slot int32) {
	if x.ext.remove(x.cands.get(slot)) {
		x.rescan = true
	}
	x.cands.set(int(slot), nil)
	x.nodes[slot] = node{flag: CheckBusy}
	delete(x.slots, id)
	x.free = append(x.free, slot)
	x.count--
	x.relayout, x.rankStale = true, true
}

func (x *Index) newSlot() int32 {
	if n := len(x.free); n > 0 {
		slot := x.free[n-1]
		x.free = x.free[:n-1]
		return slot
	}
	slot := int32(len(x.nodes))
	x.nodes = append(x.nodes, node{})
	x.synced = append(x.synced, 0)
	x.rank = append(x.rank, 0)
	return slot
}

// compact is c's node as the search checks it, scored with the current
// normalizer (which prepare redoes if it is about to change).
func (x *Index) compact(c *Candidate) node {
	nd := node{
		memory: c.Offer.Hardware.MemoryBytes,
		tput:   c.Offer.ThroughputMFLOPS,
		price:  uint64(c.Offer.PricePerUnit),
		stake:  uint64(c.Stake),
		rep:    c.Reputation,
		region: x.marks.intern(c.Offer.Region),
	}
	if c.Busy {
		nd.flag = CheckBusy
	}
	sc := x.norm.scores(c, x.weights)
	nd.base, nd.green = sc.Base, sc.Green
	return nd
}

// prepare does the work changes deferred, before a placement reads the tree.
func (x *Index) prepare() {
	if x.rescan {
		x.ext.reset()
		x.cands.each(func(_ int, c *Candidate) { x.ext.add(c) })
		x.rescan = false
		// Nodes changed meanwhile were scored with x.norm: right unless
		// the normalizer moved.
		if x.ext.normalizer() != x.norm {
			x.rescore = true
		}
	}
	if x.rescore {
		x.norm = x.ext.normalizer()
		x.cands.each(func(slot int, c *Candidate) {
			sc := x.norm.scores(c, x.weights)
			x.nodes[slot].base, x.nodes[slot].green = sc.Base, sc.Green
		})
		x.rescore = false
		// Every score moved with the normalizer, mostly in step, so the
		// layout stays useful; its bounds do not.
		if !x.relayout {
			x.tree.refreshAll(x.nodes)
			x.drift += x.count / 4
		}
	}
	if x.relayout || x.drift > x.count {
		x.layout = x.layout[:0]
		x.cands.each(func(slot int, _ *Candidate) { x.layout = append(x.layout, int32(slot)) })
		x.keys = x.tree.build(x.nodes, x.layout, len(x.nodes), x.keys)
		x.relayout, x.drift = false, 0
	}
}

// Place chooses spec.Workers nodes as Place(spec, candidates, seed) would
// on the index's candidates, without examining them all. The explanation
// (Feasible, Examined, Candidates) is filled when asked (see Complete).
// When too few nodes are feasible it returns Place's ErrNoCapacity error
// (counting every rejection: O(n)) with the placement, unexplained too.
func (x *Index) Place(spec gridmind.JobSpec, seed int64) (*Placement, error) {
	if spec.Workers < 1 {
		return nil, gridmind.E(gridmind.KindInvalid, "market.place", "workers %d: want at least 1", spec.Workers)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.init()
	x.prepare()
	r := x.marks.compile(&spec)
	hits := x.search(&r, spec.Workers)
	spec.RegionsAllowed = slices.Clone(spec.RegionsAllowed)
	spec.RegionsExcluded = slices.Clone(spec.RegionsExcluded)
	// One allocation holds the placement, what explains it and (for a
	// few workers) the chosen list.
	lp := &lazyPlacement{
		Placement: Placement{Job: spec.Name, Seed: seed, Workers: spec.Workers},
		lazy:      lazyExplanation{spec: spec, seed: seed, weights: x.weights, cands: x.cands.snapshot()},
	}
	p := &lp.Placement
	p.lazy = &lp.lazy
	if len(hits) < spec.Workers {
		// Place's error counts every rejection of every candidate.
		var counts [numChecks]int
		feasible := 0
		x.cands.each(func(slot int, _ *Candidate) {
			if x.marks.countRejections(&x.nodes[slot], &r, &counts) {
				feasible++
			}
		})
		return p, noCapacity(&spec, feasible, x.count, rejectionSummary(&counts, 0))
	}
	x.breakTies(hits, spec.Workers, seed)
	if spec.Workers <= len(lp.chosen) {
		p.Chosen = lp.chosen[:spec.Workers:spec.Workers]
	} else {
		p.Chosen = make([]gridmind.NodeID, spec.Workers)
	}
	for i, h := range hits[:spec.Workers] {
		p.Chosen[i] = x.cands.get(h.slot).Offer.Node
	}
	return p, nil
}

// sameCandidate reports whether a and b are equal in every field placement reads or explains.
func sameCandidate(a, b *Candidate) bool {
	ao, bo := &a.Offer, &b.Offer
	return ao.Node == bo.Node && ao.Hardware.CPUCores == bo.Hardware.CPUCores && ao.Hardware.MemoryBytes == bo.Hardware.MemoryBytes &&
		slices.Equal(ao.Hardware.GPUs, bo.Hardware.GPUs) && ao.ThroughputMFLOPS == bo.ThroughputMFLOPS &&
		ao.PricePerUnit == bo.PricePerUnit && ao.Region == bo.Region && ao.EnergyZone == bo.EnergyZone &&
		ao.EnergyProfile == bo.EnergyProfile && a.Stake == b.Stake && a.Reputation == b.Reputation &&
		a.LatencyMs == b.LatencyMs && a.Energy == b.Energy && a.Busy == b.Busy
}

// extremeCounts are the extremes with how many candidates hold each, so
// an update knows when it moved one (a new extreme: every score changes)
// or may have (the last holder left: find them again).
type extremeCounts struct {
	extremes
	nPrice, nTput, nLatency, nCarbon int
}

func (e *extremeCounts) reset() { *e = extremeCounts{}; e.extremes.reset() }

// add counts c and reports whether it moved an extreme.
func (e *extremeCounts) add(c *Candidate) (moved bool) {
	switch p := uint64(c.Offer.PricePerUnit); {
	case p < e.minPrice:
		e.minPrice, e.nPrice, moved = p, 1, true
	case p == e.minPrice:
		e.nPrice++
	}
	switch t := c.Offer.ThroughputMFLOPS; {
	case t > e.maxTput:
		e.maxTput, e.nTput, moved = t, 1, true
	case t == e.maxTput:
		e.nTput++
	}
	if l := finite(c.LatencyMs); l > 0 {
		switch {
		case l < e.minLatency:
			e.minLatency, e.nLatency, moved = l, 1, true
		case l == e.minLatency:
			e.nLatency++
		}
	}
	switch g := finite(c.Energy.CarbonGPerKWh); {
	case g > e.maxCarbon:
		e.maxCarbon, e.nCarbon, moved = g, 1, true
	case g == e.maxCarbon:
		e.nCarbon++
	}
	return moved
}

// remove uncounts c and reports whether an extreme lost its last holder.
func (e *extremeCounts) remove(c *Candidate) (stale bool) {
	last := func(n *int) bool { *n--; return *n <= 0 }
	if uint64(c.Offer.PricePerUnit) == e.minPrice && last(&e.nPrice) {
		stale = true
	}
	if c.Offer.ThroughputMFLOPS == e.maxTput && last(&e.nTput) {
		stale = true
	}
	if l := finite(c.LatencyMs); l > 0 && l == e.minLatency && last(&e.nLatency) {
		stale = true
	}
	if finite(c.Energy.CarbonGPerKWh) == e.maxCarbon && last(&e.nCarbon) {
		stale = true
	}
	return stale
}

// lazyExplanation is what an Index's placement needs to explain itself
// later: the job, the seed and a snapshot of the candidates.
type lazyExplanation struct {
	once    sync.Once
	spec    gridmind.JobSpec
	seed    int64
	weights Weights
	cands   candSnapshot
}

// lazyPlacement is an Index's placement with what Complete needs.
type lazyPlacement struct {
	Placement
	lazy   lazyExplanation
	chosen [4]gridmind.NodeID
}

// explainSnapshot runs Place, the eager explaining path, on a snapshot.
func explainSnapshot(snap candSnapshot, spec gridmind.JobSpec, seed int64, w Weights) (*Placement, error) {
	s, err := newScheduler(snap.candidates(), Options{Seed: seed, Weights: w})
	if err != nil {
		return nil, err
	}
	return s.Place(spec)
}
