package market

import (
	"cmp"
	"slices"
)

// treeItem is a group waiting in the search's max-heap, by bound.
type treeItem struct {
	bound float64
	group int32
}

// hit is a feasible node the search found, with its final score.
type hit struct {
	score float64
	slot  int32
	pos   int32 // in the seeded source, filled only to break ties
}

// search finds the k best feasible nodes, best first, and every node
// tying with the k-th: a best-first walk of the tree by group bound that
// stops when no group left can beat the k-th score found.
func (x *Index) search(r *req, k int) []hit {
	hits := x.hits[:0]
	heap := x.heap[:0]
	t := &x.tree
	if len(t.groups) > 1 && !t.groups[1].excludes(r) {
		heap = pushItem(heap, treeItem{t.groups[1].bound(r.green), 1})
	}
	for len(heap) > 0 {
		if len(hits) >= k && heap[0].bound < hits[k-1].score {
			break
		}
		var top treeItem
		heap, top = popItem(heap)
		g := int(top.group)
		// Dive: go down to the better child straight away while it is
		// the best group left, queueing only its sibling.
		for g < t.leaves {
			a, b := 2*g, 2*g+1
			aBound, aOK := t.boundOf(a, r)
			bBound, bOK := t.boundOf(b, r)
			if !aOK && !bOK {
				break
			}
			if !aOK || bOK && bBound > aBound {
				a, aBound, b, bBound, bOK = b, bBound, a, aBound, aOK
			}
			if bOK {
				heap = pushItem(heap, treeItem{bBound, int32(b)})
			}
			if len(heap) > 0 && heap[0].bound > aBound || len(hits) >= k && aBound < hits[k-1].score {
				heap = pushItem(heap, treeItem{aBound, int32(a)})
				break
			}
			g = a
		}
		if g < t.leaves {
			continue
		}
		leaf := g - t.leaves
		for _, slot := range t.order[leaf*leafSize : (leaf+1)*leafSize] {
			if slot < 0 {
				continue
			}
			nd := &x.nodes[slot]
			if x.marks.check(nd, r) != CheckNone {
				continue
			}
			score := nd.base + r.green*(nd.green-nd.base)
			if len(hits) >= k && score < hits[k-1].score {
				continue
			}
			// Insert after equal scores; drop what falls below the k-th.
			at, _ := slices.BinarySearchFunc(hits, score, func(h hit, s float64) int {
				if h.score >= s {
					return -1
				}
				return 1
			})
			hits = slices.Insert(hits, at, hit{score: score, slot: slot})
			if len(hits) > k {
				kth := hits[k-1].score
				for len(hits) > k && hits[len(hits)-1].score < kth {
					hits = hits[:len(hits)-1]
				}
			}
		}
	}
	x.hits, x.heap = hits, heap
	return hits
}

// breakTies orders the first k hits (sorted by score) as Place does:
// equal scores by their position in the source seeded with seed. Only a
// group of equal scores that reaches into the first k needs ordering, and
// of the group that crosses the k-th place only its best.
func (x *Index) breakTies(hits []hit, k int, seed int64) {
	for a := 0; a < k; {
		b := a + 1
		for b < len(hits) && hits[b].score == hits[a].score {
			b++
		}
		if b-a > 1 {
			group := hits[a:b]
			x.seededPositions(group, seed)
			need := min(b, k) - a
			for j := range need { // selection: need is at most k
				best := j
				for i := j + 1; i < len(group); i++ {
					if group[i].pos < group[best].pos {
						best = i
					}
				}
				group[j], group[best] = group[best], group[j]
			}
		}
		a = b
	}
}

// seededPositions fills in each hit's position in the source seeded with seed.
func (x *Index) seededPositions(hits []hit, seed int64) {
	if x.rankStale {
		byID := x.layout[:0]
		x.cands.each(func(slot int, _ *Candidate) { byID = append(byID, int32(slot)) })
		slices.SortFunc(byID, func(a, b int32) int {
			return cmp.Compare(x.cands.get(a).Offer.Node, x.cands.get(b).Offer.Node)
		})
		for i, slot := range byID {
			x.rank[slot] = int32(i)
		}
		x.layout = byID
		x.rankStale = false
		x.tieN = -1
	}
	if x.tieN != x.count || x.tieSeed != seed {
		x.tiePos = seededPositions(x.tiePos, x.count, seed)
		x.tieN, x.tieSeed = x.count, seed
	}
	for i := range hits {
		hits[i].pos = x.tiePos[x.rank[hits[i].slot]]
	}
}

// seededPositions returns, for each of n candidates in node id order, its
// position in the source NewScheduler shuffles with seed.
func seededPositions(pos []int32, n int, seed int64) []int32 {
	src := make([]int32, n)
	for i := range src {
		src[i] = int32(i)
	}
	rng := splitmix(uint64(seed))
	for i := n - 1; i > 0; i-- {
		j := int(rng.next() % uint64(i+1))
		src[i], src[j] = src[j], src[i]
	}
	pos = slices.Grow(pos[:0], n)[:n]
	for k, i := range src {
		pos[i] = int32(k)
	}
	return pos
}

func pushItem(h []treeItem, it treeItem) []treeItem {
	h = append(h, it)
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if h[parent].bound >= h[i].bound {
			break
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
	return h
}

func popItem(h []treeItem) ([]treeItem, treeItem) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, r, big := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].bound > h[big].bound {
			big = l
		}
		if r < len(h) && h[r].bound > h[big].bound {
			big = r
		}
		if big == i {
			break
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
	return h, top
}
