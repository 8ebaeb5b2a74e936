package energy

import (
	"reflect"
	"testing"
)

func TestPresets(t *testing.T) {
	ps := Presets(64)
	if !reflect.DeepEqual(ps, Presets(64)) {
		t.Fatal("Presets is not deterministic")
	}
	if !reflect.DeepEqual(ps[:10], Presets(10)) {
		t.Fatal("Presets(10) is not a prefix of Presets(64)")
	}
	zoneSeen := map[string]bool{}
	var solar, battery, gridOnly int
	names := map[string]bool{}
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if names[p.Name] {
			t.Fatalf("duplicate name %s", p.Name)
		}
		names[p.Name] = true
		zoneSeen[p.Zone] = true
		switch {
		case p.BatteryKWh > 0:
			battery++
		case p.SolarPeakKW > 0:
			solar++
		default:
			gridOnly++
		}
	}
	if len(zoneSeen) != 8 || solar == 0 || battery == 0 || gridOnly == 0 {
		t.Errorf("not diverse: zones %d, solar-only %d, with battery %d, grid-only %d", len(zoneSeen), solar, battery, gridOnly)
	}
	if Presets(0) != nil || Presets(-1) != nil {
		t.Error("Presets of a non-positive count is not empty")
	}
}
