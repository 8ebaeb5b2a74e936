package sim

import (
	"cmp"
	"math"
	"slices"
)

// This file bounds displacement CO₂ from below: the least any placement
// could emit, counting all job energy at its zone's and hour's grid
// intensity, while keeping a given share of that energy from surplus. It
// answers whether the displacement goal can be met together with the
// surplus goal at all on the world's traces, in the same model as the
// same-step ceiling (every online device flat out, its battery serving the
// household first; work may hop between nodes every step; another device
// drawing other energy for the same work is ignored).

// carbonCell is the flat-out energy of the node-steps of one step in one
// zone whose surplus covered the same share (a ceiling bin): they share
// one grid intensity (co2g / energyWh).
type carbonCell struct {
	energyWh, renewableWh, co2g float64
}

// carbonCells holds, per step, the cells of that step (zone-major, then
// bin); only cells with energy are kept.
type carbonCells [][]carbonCell

// add records one node-step's flat-out usage in zone z at step s.
func (c carbonCells) add(s, zones, z, bin int, energyWh, renewableWh, co2g float64) {
	if c[s] == nil {
		c[s] = make([]carbonCell, zones*ceilingBins)
	}
	cell := &c[s][z*ceilingBins+bin]
	cell.energyWh += energyWh
	cell.renewableWh += renewableWh
	cell.co2g += co2g
}

// compact drops the empty cells.
func (c carbonCells) compact() {
	for s := range c {
		c[s] = slices.DeleteFunc(c[s], func(k carbonCell) bool { return k.energyWh <= 0 })
	}
}

// carbonFloor is the least displacement CO₂ (grams) of job energy
// stepEnergyWh[s] placed in each step s on that step's node-steps with at
// least minShare of it covered by surplus (the same-step timing); with
// anyStep, the energy may go to any step of the run (deadlines and
// arrivals ignored). It returns +Inf when no placement covers minShare.
//
// It is the linear programme's optimum by Lagrangian duality: for a price
// λ on surplus, each unit's cost is its intensity less λ times its
// covered share, and every g(λ) = Σ cheapest fill + λ · minShare · E is
// a lower bound on the programme; g is concave in λ, so a golden-section
// search over λ finds its maximum (what is returned is the best g found,
// a lower bound whatever the search's precision).
func carbonFloor(cells carbonCells, stepEnergyWh []float64, minShare float64, anyStep bool) float64 {
	type item struct{ cost, ratio, energyWh float64 }
	var total, maxIntensity float64
	for _, e := range stepEnergyWh {
		total += e
	}
	if total <= 0 {
		return 0
	}
	groups := make([][]item, 0, len(cells))
	var pool []item
	for s, cs := range cells {
		var g []item
		for _, k := range cs {
			it := item{cost: k.co2g / k.energyWh, ratio: k.renewableWh / k.energyWh, energyWh: k.energyWh}
			maxIntensity = max(maxIntensity, it.cost)
			if anyStep {
				pool = append(pool, it)
			} else if s < len(stepEnergyWh) && stepEnergyWh[s] > 0 {
				g = append(g, it)
			}
		}
		if !anyStep {
			groups = append(groups, g)
		}
	}
	demand := stepEnergyWh
	if anyStep {
		groups, demand = [][]item{pool}, []float64{total}
	}
	buf := make([]item, 0)
	// dual returns g(λ) and the covered share of the cheapest fill at λ.
	dual := func(lambda float64) (g, covered float64) {
		for k, items := range groups {
			left := 0.0
			if k < len(demand) {
				left = demand[k]
			}
			if left <= 0 {
				continue
			}
			buf = append(buf[:0], items...)
			slices.SortFunc(buf, func(a, b item) int {
				return cmp.Compare(a.cost-lambda*a.ratio, b.cost-lambda*b.ratio)
			})
			for _, it := range buf {
				take := min(left, it.energyWh)
				g += take * (it.cost - lambda*it.ratio)
				covered += take * it.ratio
				if left -= take; left <= 0 {
					break
				}
			}
			if left > 1e-9 {
				return math.Inf(1), 0 // less capacity than job energy: nothing bounds it
			}
		}
		return g + lambda*minShare*total, covered / total
	}
	// At a λ where even the cheapest fill covers less than minShare, no
	// placement can: every unit's surplus is then worth more than any
	// intensity difference.
	hi := 1e3 * max(maxIntensity, 1e-9)
	if _, c := dual(hi); c < minShare-1e-9 {
		return math.Inf(1)
	}
	best, _ := dual(0)
	lo := 0.0
	const phi = 0.6180339887498949
	a, b := hi-phi*(hi-lo), lo+phi*(hi-lo)
	ga, _ := dual(a)
	gb, _ := dual(b)
	for range 60 {
		best = max(best, ga, gb)
		if ga < gb {
			lo, a, ga = a, b, gb
			b = lo + phi*(hi-lo)
			gb, _ = dual(b)
		} else {
			hi, b, gb = b, a, ga
			a = hi - phi*(hi-lo)
			ga, _ = dual(a)
		}
	}
	return max(best, ga, gb)
}

// floorShare is the surplus share the displacement floor keeps: the
// issue's goal at 45% load.
const floorShare = 0.9

// floorKg is a floor in grams as the report's kilograms, −1 for none
// (JSON has no infinity).
func floorKg(g float64) float64 {
	if math.IsInf(g, 1) {
		return -1
	}
	return g / 1000
}
