package sim

import (
	"math"
	"testing"
)

// The floor is the linear programme's optimum on cells small enough to
// solve by hand: a clean zone without surplus and a dirty one with.
func TestCarbonFloorSolvesSmallProgrammes(t *testing.T) {
	clean := carbonCell{energyWh: 100, renewableWh: 0, co2g: 10}   // 0.1 g/Wh, no surplus
	dirty := carbonCell{energyWh: 100, renewableWh: 100, co2g: 50} // 0.5 g/Wh, all surplus
	sunnyClean := carbonCell{energyWh: 200, renewableWh: 200, co2g: 20}
	cells := carbonCells{{clean, dirty}, {sunnyClean}}
	demand := []float64{100, 0}
	for _, c := range []struct {
		name    string
		share   float64
		anyStep bool
		want    float64
	}{
		{"no surplus asked: all on the clean zone", 0, false, 10},
		{"90% surplus: 90 Wh on the dirty zone's surplus", 0.9, false, 90*0.5 + 10*0.1},
		{"all surplus", 1, false, 50},
		{"any step: the next step's clean sun", 0.9, true, 10},
	} {
		got := carbonFloor(cells, demand, c.share, c.anyStep)
		if math.Abs(got-c.want) > 1e-6*c.want+1e-9 {
			t.Errorf("%s: floor %.6f g, want %.6f", c.name, got, c.want)
		}
	}
	// Too little surplus for the share: no placement reaches it.
	small := carbonCells{{clean, {energyWh: 50, renewableWh: 50, co2g: 25}}}
	if got := carbonFloor(small, []float64{100}, 0.9, false); !math.IsInf(got, 1) {
		t.Errorf("with at most 50%% surplus the 90%% floor is %v, want +Inf", got)
	}
	if got := floorKg(math.Inf(1)); got != -1 {
		t.Errorf("floorKg(+Inf) = %v, want -1", got)
	}
}
