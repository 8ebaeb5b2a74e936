package market

import "github.com/gridmind/gridmind"

// req is a job's requirements compiled for the fast path.
type req struct {
	minMem, minTput, maxPrice, minStake, minRep uint64
	restrict                                    bool // the job lists allowed regions
	stamp                                       uint32
	green                                       float64 // green preference, 0..1
	// Region bit masks for pruning whole groups of nodes (Index): bit r
	// for region id r < 63, bit 63 for every later region, so a mask can
	// only ever rule a group out when that is certain.
	allowedMask, excludedMask uint64
}

// regionBit is region id r's bit in a region mask.
func regionBit(r uint32) uint64 { return 1 << min(r, 63) }

// potStake is the least stake the ledger leases a provider with for the
// job (besides its own minimum): more than one round's pot, budget/rounds,
// so that losing the stake costs more than a cheated round earns. Placing
// a provider the lease would refuse would lock the escrow for nothing.
// Without a budget (a simulation's placement) there is no pot.
func potStake(spec *gridmind.JobSpec) gridmind.Amount {
	if spec.Budget == 0 {
		return 0
	}
	return spec.Budget/gridmind.Amount(max(spec.Rounds, 1)) + 1
}

// regionMarks interns region names as small ids and marks, per
// placement, which regions a job allows and excludes: allowed[r] == stamp
// means region r is in the job's allowed list, so no clearing is needed
// between placements.
type regionMarks struct {
	ids      map[string]uint32
	allowed  []uint32
	excluded []uint32
	stamp    uint32
}

func (m *regionMarks) intern(name string) uint32 {
	if m.ids == nil {
		m.ids = map[string]uint32{}
	}
	r, ok := m.ids[name]
	if !ok {
		r = uint32(len(m.ids))
		m.ids[name] = r
		m.allowed = append(m.allowed, 0)
		m.excluded = append(m.excluded, 0)
	}
	return r
}

func (m *regionMarks) compile(spec *gridmind.JobSpec) req {
	m.stamp++
	if m.stamp == 0 { // wrapped: clear the marks once every 2^32 placements
		clear(m.allowed)
		clear(m.excluded)
		m.stamp = 1
	}
	r := req{
		minMem:      spec.MinMemoryBytes,
		minTput:     spec.MinThroughputMFLOPS,
		maxPrice:    uint64(spec.MaxPricePerUnit),
		minStake:    uint64(max(spec.MinStake, potStake(spec))),
		minRep:      uint64(min(max(spec.MinReputation, 0), 100)) * 10_000,
		restrict:    len(spec.RegionsAllowed) > 0,
		stamp:       m.stamp,
		green:       float64(min(max(spec.GreenPreference, 0), 100)) / 100,
		allowedMask: regionBit(63),
	}
	for _, name := range spec.RegionsAllowed {
		if id, ok := m.ids[name]; ok {
			m.allowed[id] = m.stamp
			r.allowedMask |= regionBit(id)
		}
	}
	for _, name := range spec.RegionsExcluded {
		if id, ok := m.ids[name]; ok {
			m.excluded[id] = m.stamp
			if id < 63 {
				r.excludedMask |= regionBit(id)
			}
		}
	}
	return r
}

// check is the fast feasibility path: the first check that fails, or CheckNone.
func (m *regionMarks) check(n *node, r *req) Check {
	switch {
	case n.flag != CheckNone:
		return n.flag
	case r.restrict && m.allowed[n.region] != r.stamp, m.excluded[n.region] == r.stamp:
		return CheckRegion
	case r.maxPrice > 0 && n.price > r.maxPrice:
		return CheckPrice
	case n.memory < r.minMem:
		return CheckMemory
	case n.tput < r.minTput:
		return CheckThroughput
	case n.stake < r.minStake:
		return CheckStake
	case n.rep < r.minRep:
		return CheckReputation
	}
	return CheckNone
}

func (s *Scheduler) compile(spec *gridmind.JobSpec) req { return s.marks.compile(spec) }

func (s *Scheduler) check(n *node, r *req) Check { return s.marks.check(n, r) }
