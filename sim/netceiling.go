package sim

import (
	"math"
)

// The net ceiling bounds from above the net surplus share (sim.go's
// netSurplusShare) any placement of a policy's extra device energy, step
// by step as the policy drew it, could reach. The gross ceilings credit a
// device with battery energy the household then misses; the net share
// takes that back, so the net share needs a ceiling of its own.
//
// Why it is an upper bound. For one node, let the job world be the run
// and the idle world the same node with its device idle whenever online.
// Over the whole horizon, the energy balance (solar + grid = household +
// device + spilled + loss + the battery's change) of the two worlds gives
// the node's net-covered extra energy — extra device energy less extra
// grid import (the household's included) less the battery charge missing
// at the end — as the idle world's spill and loss the job world avoided,
// so at most the idle world's spill + loss over the horizon (the node's
// total). A node without a battery stores nothing, so in each step its
// device draws net at most what the idle world spilled in that step.
// Within a stretch of steps where the idle world spills nothing
// (a night, or a day whose surplus all goes into the battery), all the
// surplus the idle world had was stored, so what a device draws there
// without any extra import comes out of stored energy: at most the idle
// world's charge at the stretch's end plus the charging loss it avoided
// there (the stretch's cap; 0 for a node without a battery). And no node
// draws more than its device's extra power (busy less idle) in a step,
// nor the fleet more than the policy's extra energy in that step. The
// most energy that meets all of these is a maximum flow
//
//	source → node (its total) → stretch (its cap) → step (the device's
//	extra over the step, where online) → sink (the policy's extra)
//
// and every schedule's net-covered energy is a flow of this network, so
// the maximum bounds it. It drops, like the same-step gross ceiling, that
// work cannot move between nodes each step, the jobs' rounds and deadlines.

// netStretch is a run of one node's steps in the idle world, [start, end).
// A stretch without spill is also split where the idle world's charge
// plus the loss avoided before it is lowest (split): the steps before it
// draw net at most that (headWh), since the same argument holds for every
// prefix of the stretch — a night cannot borrow from the morning's
// charging.
type netStretch struct {
	start, end int32
	capWh      float64 // net energy a device could draw there; +Inf where the idle world spilled
	split      int32   // steps [start, split) are held to headWh too; split == start: no head
	headWh     float64
}

// netBudget is one node's budget in the net ceiling.
type netBudget struct {
	totalWh  float64 // the idle world's spill and loss over the horizon
	stretch  []netStretch
	open     int32   // the stretch being built: its first step
	spilling bool    // and whether it spills
	lossWh   float64 // its loss so far
	// lowAt and lowWh: the step before which its charge plus the loss
	// avoided so far was lowest yet, and that value (its head, if any).
	lowAt int32
	lowWh float64
	// spillWh is, for a node without a battery, the idle world's spill in
	// each step: with nothing stored, a device there draws net at most
	// what the idle world exported in that same step. Nil with a battery.
	spillWh []float32
}

// observe adds step s of the idle world: spilledWh and lossWh in it, and
// the battery's charge before it.
func (b *netBudget) observe(s int, spilledWh, lossWh, batteryBeforeWh float64) {
	spilling := spilledWh > 1e-9
	if s > 0 && spilling != b.spilling {
		b.close(s, batteryBeforeWh)
	}
	if s == 0 || spilling != b.spilling {
		b.open, b.spilling, b.lossWh = int32(s), spilling, 0
		b.lowAt, b.lowWh = int32(s), math.Inf(1)
	} else {
		b.lower(s, batteryBeforeWh)
	}
	b.totalWh += spilledWh + lossWh
	b.lossWh += lossWh
	if b.spillWh != nil {
		b.spillWh = append(b.spillWh, float32(spilledWh))
	}
}

// close ends the stretch being built before step end, the battery then
// holding batteryWh.
func (b *netBudget) close(end int, batteryWh float64) {
	st := netStretch{start: b.open, end: int32(end), capWh: math.Inf(1), split: b.open}
	if !b.spilling {
		st.capWh = batteryWh + b.lossWh
		b.lower(end, batteryWh)
		if b.lowAt < int32(end) {
			st.split, st.headWh = b.lowAt, b.lowWh
		}
	}
	b.stretch = append(b.stretch, st)
}

// lower notes the charge batteryWh before step s of the stretch being
// built, with the loss of its steps before s, if it is the lowest yet.
func (b *netBudget) lower(s int, batteryWh float64) {
	if head := batteryWh + b.lossWh; !b.spilling && head < b.lowWh {
		b.lowAt, b.lowWh = int32(s), head
	}
}

// netCeilingMaxArcs bounds the flow network's size: nodes × steps with
// extra energy to place (10,000 nodes × 9 days is 8.6 million; 100,000
// nodes × 3 days, 29 million, is not bounded).
const netCeilingMaxArcs = 1.2e7

// netCeiling is the most of extraWh[s] (the policy's extra device energy
// in step s) that any placement could cover net, as a share of its sum;
// 0 when there is none or the network would be too large.
func (w *world) netCeiling(extraWh []float64) float64 {
	var total float64
	for _, e := range extraWh {
		total += e
	}
	if total <= 0 || len(w.netBudgets) != len(w.nodes) {
		return 0
	}
	hours := w.cfg.Step.Hours()
	node, cursor := -1, 0
	covered, ok := netFlow(w.netBudgets, min(len(extraWh), w.steps), extraWh,
		func(i int) float64 {
			prof := &w.nodes[i].profile
			return max(prof.BusyWatts-prof.IdleWatts, 0) * hours
		},
		func(i, s int) bool {
			if i != node {
				node, cursor = i, 0
			}
			return w.onlineAt(i, s, &cursor)
		})
	if !ok {
		return 0
	}
	return covered / total
}

// netFlow is the maximum flow of the net ceiling's network over budgets
// (one per node) and the first steps of extraWh, in Wh: a node draws at
// most perStepWh(i) in a step it is online (online is asked for each node
// in turn, its steps in order). It reports false when the network would
// exceed netCeilingMaxArcs.
func netFlow(budgets []netBudget, steps int, extraWh []float64, perStepWh func(i int) float64, online func(i, s int) bool) (float64, bool) {
	// Milliwatt-hours: integer capacities keep the flow exact.
	const unit = 1000.0
	toUnits := func(wh float64) int64 {
		if math.IsInf(wh, 1) || wh*unit > 1<<60 {
			return 1 << 60
		}
		return int64(math.Floor(max(wh, 0) * unit))
	}
	// Refuse a network that could outgrow the limit before building any
	// of it: a node-step with extra energy to place is at most one arc.
	busySteps := 0
	for s := 0; s < steps; s++ {
		if extraWh[s] > 0 {
			busySteps++
		}
	}
	if float64(len(budgets))*float64(busySteps) > netCeilingMaxArcs {
		return 0, false
	}
	stretches := 0
	for i := range budgets {
		stretches += len(budgets[i].stretch)
	}
	// Vertices: source, sink, the nodes, the stretches and their heads,
	// the steps.
	src, sink := 0, 1
	firstNode, firstStretch := 2, 2+len(budgets)
	firstStep := firstStretch + 2*stretches
	f := newFlowNet(firstStep + steps)
	for s := 0; s < steps; s++ {
		if extraWh[s] > 0 {
			f.arc(firstStep+s, sink, toUnits(extraWh[s]))
		}
	}
	k := firstStretch
	for i := range budgets {
		b := &budgets[i]
		f.arc(src, firstNode+i, toUnits(b.totalWh))
		perStep := toUnits(perStepWh(i))
		for _, st := range b.stretch {
			if st.capWh > 0 && perStep > 0 {
				f.arc(firstNode+i, k, toUnits(st.capWh))
				if st.split > st.start {
					f.arc(k, k+1, toUnits(st.headWh))
				}
				for s := int(st.start); s < int(st.end) && s < steps; s++ {
					if extraWh[s] > 0 && online(i, s) {
						c := perStep
						if b.spillWh != nil {
							c = min(c, toUnits(float64(b.spillWh[s])))
						}
						from := k
						if s < int(st.split) {
							from = k + 1
						}
						f.arc(from, firstStep+s, c)
					}
				}
			}
			k += 2
		}
	}
	return float64(f.maxFlow(src, sink)) / unit, true
}
