package sim

// flowNet is a directed network with integer capacities for a maximum
// flow (Dinic's algorithm: breadth-first levels, then blocking flows along
// them). The net ceiling (netceiling.go) is a transportation problem of a
// few thousand sources and a few hundred sinks with a million arcs; no
// library we use carries a max-flow solver, and this one is small.
type flowNet struct {
	head  []int32 // per vertex: its first arc, -1 when none
	next  []int32 // per arc: the vertex's next arc
	to    []int32
	cap   []int64 // residual capacity
	level []int32
	iter  []int32
	queue []int32
}

func newFlowNet(vertices int) *flowNet {
	f := &flowNet{head: make([]int32, vertices), level: make([]int32, vertices), iter: make([]int32, vertices)}
	for v := range f.head {
		f.head[v] = -1
	}
	return f
}

// arc adds an arc u→v of capacity c (and its residual twin v→u, at index
// arc^1).
func (f *flowNet) arc(u, v int, c int64) {
	for _, e := range [2]struct {
		from, to int
		cap      int64
	}{{u, v, c}, {v, u, 0}} {
		f.to = append(f.to, int32(e.to))
		f.cap = append(f.cap, e.cap)
		f.next = append(f.next, f.head[e.from])
		f.head[e.from] = int32(len(f.to) - 1)
	}
}

// flowOf is the flow an arc carries (by its index, the order added ×2).
func (f *flowNet) flowOf(arc int) int64 { return f.cap[arc^1] }

// maxFlow pushes the most flow from s to t and returns its value.
func (f *flowNet) maxFlow(s, t int) int64 {
	var total int64
	for f.levels(s, t) {
		copy(f.iter, f.head)
		for {
			pushed := f.push(int32(s), int32(t), 1<<62)
			if pushed == 0 {
				break
			}
			total += pushed
		}
	}
	return total
}

// levels numbers the vertices by their distance from s over arcs with
// room left, and reports whether t is reachable.
func (f *flowNet) levels(s, t int) bool {
	for v := range f.level {
		f.level[v] = -1
	}
	f.level[s] = 0
	f.queue = append(f.queue[:0], int32(s))
	for k := 0; k < len(f.queue); k++ {
		u := f.queue[k]
		for e := f.head[u]; e >= 0; e = f.next[e] {
			if v := f.to[e]; f.cap[e] > 0 && f.level[v] < 0 {
				f.level[v] = f.level[u] + 1
				f.queue = append(f.queue, v)
			}
		}
	}
	return f.level[t] >= 0
}

// push sends up to limit from u to t along arcs one level further each,
// skipping arcs found full (iter), and returns what it sent. The depth is
// the level of t, a handful of arcs here.
func (f *flowNet) push(u, t int32, limit int64) int64 {
	if u == t {
		return limit
	}
	for ; f.iter[u] >= 0; f.iter[u] = f.next[f.iter[u]] {
		e := f.iter[u]
		v := f.to[e]
		if f.cap[e] <= 0 || f.level[v] != f.level[u]+1 {
			continue
		}
		if d := f.push(v, t, min(limit, f.cap[e])); d > 0 {
			f.cap[e] -= d
			f.cap[e^1] += d
			return d
		}
	}
	return 0
}
