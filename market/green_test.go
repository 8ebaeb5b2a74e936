package market

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// realNode is a candidate whose energy comes from the embedded traces:
// the zone's carbon, and when kWp > 0 panels on the zone's PV trace with
// a household load, all at the hour at.
func realNode(t *testing.T, id, zone string, kWp float64, price gridmind.Amount, at time.Time) Candidate {
	t.Helper()
	z, ok := energy.ZoneByID(zone)
	if !ok {
		t.Fatalf("zone %s", zone)
	}
	prof := energy.Profile{Zone: zone, UTCOffsetMinutes: z.UTCOffsetMinutes, Southern: z.Southern, IdleWatts: 50, BusyWatts: 400}
	if kWp > 0 {
		prof.SolarPeakKW, prof.SolarTrace, prof.LoadTrace, prof.LoadScale = kWp, z.SolarTrace, "sceaux", 1
	}
	site, err := energy.NewSite(prof)
	if err != nil {
		t.Fatal(err)
	}
	c := cand(id, func(c *Candidate) {
		c.Offer.PricePerUnit = price
		c.Offer.Region = z.Region
		c.Offer.EnergyZone = zone
	})
	c.Energy = EnergyFromSite(site, at, 3*time.Hour)
	return c
}

// TestGreenPreferenceFollowsTheSun places the same two-worker job on the
// same six nodes at two hours of the same real day, 21 June 2023: at
// 12:00 UTC it is midday in Europe and night in California, Korea and
// Sydney; at 20:00 UTC it is midday in California. The solar nodes cost
// four times as much as the grid-only ones.
func TestGreenPreferenceFollowsTheSun(t *testing.T) {
	nodes := func(at time.Time) []Candidate {
		return []Candidate{
			realNode(t, "de-solar", "DE-LU", 6, 400, at),
			realNode(t, "gb-solar", "GB", 6, 420, at),
			realNode(t, "cal-solar", "US-CAL-CISO", 6, 410, at),
			realNode(t, "za-grid", "ZA", 0, 100, at),
			realNode(t, "kr-grid", "KR", 0, 105, at),
			realNode(t, "au-grid", "AU-NSW", 0, 110, at),
		}
	}
	europeNoon := time.Date(2023, 6, 21, 12, 0, 0, 0, time.UTC)
	californiaNoon := time.Date(2023, 6, 21, 20, 0, 0, 0, time.UTC)

	// The premise, from the traces: who has surplus sun at each hour.
	sunny := func(cs []Candidate) []string {
		var out []string
		for _, c := range cs {
			if c.Energy.SurplusWatts >= c.Energy.BusyWatts {
				out = append(out, string(c.Offer.Node))
			}
		}
		return out
	}
	if got := sunny(nodes(europeNoon)); !slices.Equal(got, []string{"de-solar", "gb-solar"}) {
		t.Fatalf("at 12:00 UTC the nodes with surplus sun are %v, want de-solar and gb-solar", got)
	}
	if got := sunny(nodes(californiaNoon)); !slices.Equal(got, []string{"cal-solar"}) {
		t.Fatalf("at 20:00 UTC the nodes with surplus sun are %v, want cal-solar", got)
	}

	tests := []struct {
		name  string
		at    time.Time
		green int
		want  []string
	}{
		{"green, European noon", europeNoon, 80, []string{"de-solar", "gb-solar"}},
		{"price only, European noon", europeNoon, 0, []string{"za-grid", "kr-grid"}},
		// One sunny node: the second worker goes to the cleanest grid
		// left, Britain's in the evening, not to the cheapest.
		{"green, Californian noon", californiaNoon, 80, []string{"cal-solar", "gb-solar"}},
		{"price only, Californian noon", californiaNoon, 0, []string{"za-grid", "kr-grid"}},
	}
	for _, tt := range tests {
		spec := job(2, func(s *gridmind.JobSpec) { s.GreenPreference = tt.green })
		p, err := Place(spec, nodes(tt.at), 7)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range p.Chosen {
			got = append(got, string(id))
		}
		if testing.Verbose() {
			var buf bytes.Buffer
			_ = p.WriteText(&buf)
			t.Logf("%s:\n%s", tt.name, buf.String())
		}
		if !slices.Equal(got[:len(tt.want)], tt.want) {
			var buf bytes.Buffer
			_ = p.WriteText(&buf)
			t.Errorf("%s: chose %v, want %v first\n%s", tt.name, got, tt.want, buf.String())
		}
	}
}
