package market

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

func TestPlaceTaskAdmit(t *testing.T) {
	// Node c is the cheapest, but only a and b are admitted.
	cands := []Candidate{
		cand("a", func(c *Candidate) { c.Offer.PricePerUnit = 300 }),
		cand("b", func(c *Candidate) { c.Offer.PricePerUnit = 200 }),
		cand("c", func(c *Candidate) { c.Offer.PricePerUnit = 50 }),
	}
	s, err := NewScheduler(cands, Options{Seed: 1, Weights: Weights{Price: 1}})
	if err != nil {
		t.Fatal(err)
	}
	spec := job(1)
	asked := map[int]int{}
	admit := func(i int) bool { asked[i]++; return s.Candidate(i).Offer.Node != "c" }
	i, _, ok := s.PlaceTaskAdmit(&spec, admit)
	if !ok || s.Candidate(i).Offer.Node != "b" {
		t.Fatalf("chose %v (%v), want b: the cheapest admitted", i, ok)
	}
	// Admission runs only after the other checks pass: a busy node is never asked.
	s.SetBusy(i, true)
	asked = map[int]int{}
	if i2, _, ok := s.PlaceTaskAdmit(&spec, admit); !ok || s.Candidate(i2).Offer.Node != "a" {
		t.Errorf("second placement %v %v, want a", i2, ok)
	}
	if asked[i] != 0 {
		t.Errorf("admission asked about a busy node")
	}
	// Without admission the cheapest wins.
	if i3, _, ok := s.PlaceTask(&spec); !ok || s.Candidate(i3).Offer.Node != "c" {
		t.Errorf("plain placement chose %v", i3)
	}
	// Nobody admitted: no placement.
	s2, _ := NewScheduler(cands, Options{Seed: 1})
	if _, _, ok := s2.PlaceTaskAdmit(&spec, func(int) bool { return false }); ok {
		t.Error("placed with every candidate refused")
	}
}

func TestSunPolicyDeadlines(t *testing.T) {
	p := DefaultSunPolicy()
	now := time.Date(2023, 6, 21, 20, 0, 0, 0, time.UTC)
	step := 15 * time.Minute
	tests := []struct {
		name      string
		deadline  time.Time
		remaining time.Duration
		urgent    bool
	}{
		{"no deadline", time.Time{}, 100 * time.Hour, false},
		{"far", now.Add(24 * time.Hour), 4 * time.Hour, false},
		// 4 h × 1.5 + 15 min = 6h15: a deadline 6h10 away is urgent, 6h20 is not.
		{"just inside", now.Add(6*time.Hour + 10*time.Minute), 4 * time.Hour, true},
		{"just outside", now.Add(6*time.Hour + 20*time.Minute), 4 * time.Hour, false},
		{"passed", now.Add(-time.Hour), time.Hour, true},
	}
	for _, tt := range tests {
		if got := p.Urgent(now, tt.deadline, tt.remaining, step); got != tt.urgent {
			t.Errorf("%s: urgent %v, want %v", tt.name, got, tt.urgent)
		}
	}
	arrival := now.Add(-90 * time.Minute)
	if !p.MayWait(now, arrival, now.Add(48*time.Hour), time.Hour, step) {
		t.Error("a job that waited 90 min may wait up to 2 h")
	}
	if p.MayWait(now, now.Add(-2*time.Hour), now.Add(48*time.Hour), time.Hour, step) {
		t.Error("a job that waited 2 h waits no more")
	}
	if p.MayWait(now, now, now.Add(time.Hour), time.Hour, step) {
		t.Error("a job whose deadline is close may not wait")
	}
}

func TestSunPolicyAdmission(t *testing.T) {
	p := DefaultSunPolicy()
	if !p.Admits(energy.Outlook{EnergyWh: 100, SolarWh: 60, BatteryWh: 30}) {
		t.Error("90% covered is admitted")
	}
	if p.Admits(energy.Outlook{EnergyWh: 100, SolarWh: 60, BatteryWh: 40, HouseholdShortWh: 20}) {
		t.Error("battery energy the household needs counted as surplus")
	}
	if !p.Keeps(energy.Outlook{EnergyWh: 100, SolarWh: 50}) || p.Keeps(energy.Outlook{EnergyWh: 100, SolarWh: 49}) {
		t.Error("keep threshold is 50%")
	}
	// A real site: a German microgrid at noon in June is admitted for two
	// hours of a 300 W device, not at midnight without a battery.
	site, err := energy.NewSite(energy.Profile{Zone: "DE-LU", UTCOffsetMinutes: 60, SolarPeakKW: 5, SolarTrace: "utrecht",
		LoadTrace: "sceaux", LoadScale: 1, IdleWatts: 30, BusyWatts: 300})
	if err != nil {
		t.Fatal(err)
	}
	noon := time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	if !p.Admits(Outlook(site, noon, 2*time.Hour, 300)) {
		t.Errorf("noon outlook %+v not admitted", Outlook(site, noon, 2*time.Hour, 300))
	}
	if p.Admits(Outlook(site, noon.Add(12*time.Hour), 2*time.Hour, 300)) {
		t.Error("midnight admitted")
	}
	if e := (SunPolicy{SurplusValue: -1}).SunEnergy(site, noon, 1, 2); e.SurplusWatts != 0 || e.CarbonGPerKWh != site.CarbonIntensity(noon) || e.BusyWatts != 300 {
		t.Errorf("SunEnergy with the weighing off %+v", e)
	}
	// Weighed: (intensity − 450 × coverage + 450) × 300 W / 2 TFLOP/s / 1000.
	want := (site.CarbonIntensity(noon) - 450*0.5 + 450) * 300 / 2 / 1000
	if e := DefaultSunPolicy().SunEnergy(site, noon, 0.5, 2); math.Abs(e.CarbonGPerKWh-want) > 1e-9 {
		t.Errorf("SunEnergy ranks on %v, want %v", e.CarbonGPerKWh, want)
	}
}

// The weighing of grid against sun: a clean grid's power is admitted and
// kept without surplus, a sunny node on a coal-heavy grid is admitted on
// its coverage alone, and a dirty grid without sun is not; ranking puts the
// clean grid ahead of the sunny coal grid and an efficient device ahead of
// a hungry one on the same grid and sun.
func TestSunPolicyWeighsGridAgainstSun(t *testing.T) {
	p := DefaultSunPolicy()
	for _, c := range []struct {
		name                string
		intensity, coverage float64
		admitted, kept      bool
	}{
		{"São Paulo's grid at night", 80, 0, true, true},
		{"Johannesburg in full sun", 700, 1, true, true},
		{"Johannesburg at night", 700, 0, false, false},
		{"Seoul at 60% sun", 400, 0.6, false, true},
		{"London at 20% sun", 200, 0.25, true, true},
	} {
		if got := p.AdmitsWorker(c.intensity, c.coverage); got != c.admitted {
			t.Errorf("%s: admitted %v, want %v", c.name, got, c.admitted)
		}
		if got := p.KeepsWorker(c.intensity, c.coverage); got != c.kept {
			t.Errorf("%s: kept %v, want %v", c.name, got, c.kept)
		}
	}
	off := SunPolicy{SurplusValue: -1}
	if off.AdmitsWorker(80, 0) || !off.AdmitsWorker(700, 0.95) || off.Cost(300, 1) != 300 {
		t.Error("with the weighing off, admission is by coverage alone and cost is the intensity")
	}
	if !(p.Cost(80, 0) < p.Cost(700, 1)) {
		t.Errorf("a clean grid costs %v, a sunny coal grid %v", p.Cost(80, 0), p.Cost(700, 1))
	}
	site, err := energy.NewSite(energy.Profile{Zone: "GB", SolarPeakKW: 5, SolarTrace: "utrecht", LoadTrace: "sceaux", LoadScale: 1, IdleWatts: 30, BusyWatts: 300})
	if err != nil {
		t.Fatal(err)
	}
	noon := time.Date(2023, 6, 21, 12, 0, 0, 0, time.UTC)
	if fast, slow := p.SunEnergy(site, noon, 0.5, 3), p.SunEnergy(site, noon, 0.5, 1); !(fast.CarbonGPerKWh < slow.CarbonGPerKWh) {
		t.Errorf("3 TFLOP/s ranks on %v, 1 TFLOP/s on %v: the efficient device should cost less", fast.CarbonGPerKWh, slow.CarbonGPerKWh)
	}
}

func TestSunPolicyValidate(t *testing.T) {
	for _, tt := range []struct {
		p    SunPolicy
		want string
	}{
		{SunPolicy{MinCoverage: 1.1}, "min_coverage"},
		{SunPolicy{KeepCoverage: -0.1}, "keep_coverage"},
		{SunPolicy{MaxWait: -time.Second}, "max_wait"},
		{SunPolicy{Margin: 11}, "margin"},
		{SunPolicy{SurplusValue: math.NaN()}, "surplus_value"},
		{SunPolicy{CleanBar: math.Inf(1)}, "clean_bar"},
	} {
		err := tt.p.Validate()
		if err == nil || gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.p, err, tt.want)
		}
	}
	if err := DefaultSunPolicy().Validate(); err != nil {
		t.Error(err)
	}
}
