package market

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// leafSize is how many nodes one leaf group of a scoreTree holds: small
// enough that a leaf's bounds stay tight, large enough that the tree is
// shallow and a leaf is scanned in one pass over adjacent memory.
const leafSize = 16

// scoreSlack is added to every group's score bound. A final score is
// base + g*(green-base) rounded three times, and so is the bound from the
// group's maxima, so a node's rounded score can exceed its group's
// rounded bound by a few ulps; scores lie in 0..1, so 1e-12 covers that
// many times over and only ever makes the search look a little further.
const scoreSlack = 1e-12

// groupBounds summarize the available (not busy) nodes of a group: the
// best each score and each checked quantity could be. A group whose
// bounds fail a job's checks holds no feasible node, and no node in it
// can score above its bound.
type groupBounds struct {
	maxBase, maxGreen                    float64
	minPrice                             uint64
	maxMemory, maxTput, maxStake, maxRep uint64
	regions                              uint64 // regionBit of each node's region
	// any says the group has an available node. (A count would change
	// every group up to the root on each busy or free heartbeat; a flag
	// lets the update stop early.)
	any bool
}

var emptyGroup = groupBounds{minPrice: math.MaxUint64}

func (g *groupBounds) add(n *node) {
	g.maxBase = max(g.maxBase, n.base)
	g.maxGreen = max(g.maxGreen, n.green)
	g.minPrice = min(g.minPrice, n.price)
	g.maxMemory = max(g.maxMemory, n.memory)
	g.maxTput = max(g.maxTput, n.tput)
	g.maxStake = max(g.maxStake, n.stake)
	g.maxRep = max(g.maxRep, n.rep)
	g.regions |= regionBit(n.region)
	g.any = true
}

func merge(a, b *groupBounds) groupBounds {
	return groupBounds{
		maxBase:   max(a.maxBase, b.maxBase),
		maxGreen:  max(a.maxGreen, b.maxGreen),
		minPrice:  min(a.minPrice, b.minPrice),
		maxMemory: max(a.maxMemory, b.maxMemory),
		maxTput:   max(a.maxTput, b.maxTput),
		maxStake:  max(a.maxStake, b.maxStake),
		maxRep:    max(a.maxRep, b.maxRep),
		regions:   a.regions | b.regions,
		any:       a.any || b.any,
	}
}

// bound is the highest final score a node of the group can have for a
// job with green preference green (0..1): the final score is a weighted
// mean of base and green, so it is at most the same mean of their maxima.
func (g *groupBounds) bound(green float64) float64 {
	return g.maxBase + green*(g.maxGreen-g.maxBase) + scoreSlack
}

// excludes reports whether the group certainly holds no node that passes
// r's checks. It mirrors regionMarks.check one bound at a time, so it
// never excludes a group that holds a feasible node.
func (g *groupBounds) excludes(r *req) bool {
	return !g.any ||
		(r.maxPrice > 0 && g.minPrice > r.maxPrice) ||
		g.maxMemory < r.minMem ||
		g.maxTput < r.minTput ||
		g.maxStake < r.minStake ||
		g.maxRep < r.minRep ||
		(r.restrict && g.regions&r.allowedMask == 0) ||
		g.regions&^r.excludedMask == 0
}

// boundOf is group g's score bound for r, and false if it holds no
// feasible node.
func (t *scoreTree) boundOf(g int, r *req) (float64, bool) {
	b := &t.groups[g]
	if b.excludes(r) {
		return 0, false
	}
	return b.bound(r.green), true
}

// scoreTree groups an Index's nodes so a placement can skip most of them:
// leaves of leafSize nodes with similar scores, under an implicit binary
// tree (groups[1] is the root, the leaves are groups[leaves:2*leaves])
// whose every group holds the bounds of the nodes below it. A node's
// change updates its leaf and the bounds above it (O(log n)); its leaf
// stays where the layout put it, so bounds only loosen as scores drift,
// and the Index lays the tree out again now and then.
type scoreTree struct {
	leaves int     // a power of two
	order  []int32 // slots, leafSize per leaf in leaf order; -1 where empty
	leafOf []int32 // by slot: its leaf
	groups []groupBounds
}

// build lays out the nodes in slots: sorted by base score into strips,
// each strip sorted by green score and cut into leaves, so a leaf is a
// small box in (base, green) and its bound is tight for every green
// preference. nslots sizes leafOf; keys is scratch, returned for reuse.
func (t *scoreTree) build(nodes []node, slots []int32, nslots int, keys []sortKey) []sortKey {
	n := len(slots)
	t.leaves = 1
	for t.leaves*leafSize < n {
		t.leaves *= 2
	}
	strips := 1 << ((bits.TrailingZeros(uint(t.leaves)) + 1) / 2)
	perStrip := t.leaves / strips
	t.order = slices.Grow(t.order[:0], t.leaves*leafSize)[:t.leaves*leafSize]
	for i := range t.order {
		t.order[i] = -1
	}
	t.leafOf = slices.Grow(t.leafOf[:0], nslots)[:nslots]
	// Sort keys copied out of the nodes: comparisons stay in one array.
	keys = keys[:0]
	for _, slot := range slots {
		keys = append(keys, sortKey{nodes[slot].base, slot})
	}
	slices.SortFunc(keys, byKey)
	for s := range strips {
		strip := keys[s*n/strips : (s+1)*n/strips]
		for i := range strip {
			strip[i].key = nodes[strip[i].slot].green
		}
		slices.SortFunc(strip, byKey)
		for j := range perStrip {
			leaf := s*perStrip + j
			part := strip[j*len(strip)/perStrip : (j+1)*len(strip)/perStrip]
			for i, k := range part {
				t.order[leaf*leafSize+i] = k.slot
				t.leafOf[k.slot] = int32(leaf)
			}
		}
	}
	t.groups = slices.Grow(t.groups[:0], 2*t.leaves)[:2*t.leaves]
	t.refreshAll(nodes)
	return keys
}

// sortKey is a node's slot with the score it is being sorted by.
type sortKey struct {
	key  float64
	slot int32
}

// byKey orders by key, highest first, then by slot, so a layout does not
// depend on the sort's algorithm.
func byKey(a, b sortKey) int {
	if c := cmp.Compare(b.key, a.key); c != 0 {
		return c
	}
	return cmp.Compare(a.slot, b.slot)
}

// refreshAll recomputes every group's bounds from the nodes, in place.
func (t *scoreTree) refreshAll(nodes []node) {
	for leaf := range t.leaves {
		t.refreshLeaf(nodes, leaf)
	}
	for i := t.leaves - 1; i >= 1; i-- {
		t.groups[i] = merge(&t.groups[2*i], &t.groups[2*i+1])
	}
}

// improved reports whether n is at least as good as prev in every bound.
func improved(prev, n *node) bool {
	return n.base >= prev.base && n.green >= prev.green && n.price <= prev.price && n.memory >= prev.memory &&
		n.tput >= prev.tput && n.stake >= prev.stake && n.rep >= prev.rep && n.region == prev.region
}

func (t *scoreTree) refreshLeaf(nodes []node, leaf int) {
	g := emptyGroup
	for _, slot := range t.order[leaf*leafSize : (leaf+1)*leafSize] {
		if slot >= 0 && nodes[slot].flag == CheckNone {
			g.add(&nodes[slot])
		}
	}
	t.groups[t.leaves+leaf] = g
}

// update refreshes the bounds on the path from slot's leaf to the root
// after the node there changed from prev.
func (t *scoreTree) update(nodes []node, slot int32, prev *node) {
	leaf := int(t.leafOf[slot])
	n := &nodes[slot]
	switch {
	case n.flag != CheckNone && prev.flag != CheckNone:
		return // busy before and after: it is in no bounds
	case n.flag == CheckNone && (prev.flag != CheckNone || improved(prev, n)):
		t.groups[t.leaves+leaf].add(n) // maxima (and the cheapest) can only move its way
	default:
		t.refreshLeaf(nodes, leaf)
	}
	// Stop where a group's bounds come out unchanged: the ones above it
	// are merged from the same values.
	for i := (t.leaves + leaf) / 2; i >= 1; i /= 2 {
		g := merge(&t.groups[2*i], &t.groups[2*i+1])
		if g == t.groups[i] {
			break
		}
		t.groups[i] = g
	}
}
