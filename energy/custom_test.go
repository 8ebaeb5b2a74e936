package energy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// yearCSV writes a trace file: a header and one row per hour of year,
// with timestamps when withTime.
func yearCSV(year int, withTime bool, value func(h int) string) string {
	var b strings.Builder
	if withTime {
		b.WriteString("time,value\n")
	} else {
		b.WriteString("value\n")
	}
	t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := 0; t.Year() == year; h++ {
		if withTime {
			fmt.Fprintf(&b, "%s,%s\n", t.Format(time.DateTime), value(h))
		} else {
			b.WriteString(value(h) + "\n")
		}
		t = t.Add(time.Hour)
		if !withTime && h == HoursPerYear-1 {
			break
		}
	}
	return b.String()
}

func TestParseTraceCSV(t *testing.T) {
	tr, err := ParseTraceCSV(strings.NewReader(yearCSV(2023, true, func(h int) string { return fmt.Sprint(h % 500) })), KindCarbon, "mine")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Year != 2023 || tr.Values[0] != 0 || tr.Values[8759] != float64(8759%500) || tr.Unit != "gCO2/kWh" {
		t.Errorf("trace %s year %d first %v last %v", tr.Name, tr.Year, tr.Values[0], tr.Values[8759])
	}
	// A leap year's 29 February is dropped: 1 March 00:00 becomes hour 59*24.
	leap, err := ParseTraceCSV(strings.NewReader(yearCSV(2024, true, func(h int) string { return fmt.Sprintf("%.3f", float64(h)/10000) })), KindSolar, "leap")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leap.Values[59*24], float64(60*24)/10000; got != want {
		t.Errorf("leap year: hour 59*24 = %v, want 1 March's %v", got, want)
	}
	if _, err := ParseTraceCSV(strings.NewReader(yearCSV(2023, false, func(int) string { return "0.5" })), KindLoad, "plain"); err != nil {
		t.Errorf("one column: %v", err)
	}

	bad := []struct {
		name, kind, body, want string
	}{
		{"empty", KindCarbon, "", "empty file"},
		{"kind", "wind", "value\n1\n", `kind "wind"`},
		{"columns", KindCarbon, "a,b,c\n", "3 columns"},
		{"short", KindCarbon, "value\n1\n2\n", "2 hourly rows, want 8760"},
		{"not a number", KindCarbon, "value\n1\nabc\n", `line 3: value "abc" is not a number`},
		{"negative", KindLoad, "value\n-1\n", "line 2: value -1 outside"},
		{"solar in kW", KindSolar, "value\n0.2\n3.5\n", "line 3: value 3.5 outside 0..1.2 fraction of peak"},
		{"gap", KindCarbon, "time,value\n2023-01-01 00:00:00,1\n2023-01-01 02:00:00,1\n", "line 3: time 2023-01-01 02:00:00, want 2023-01-01 01:00:00"},
		{"bad time", KindCarbon, "time,value\nyesterday,1\n", `line 2: time "yesterday"`},
		{"ragged", KindCarbon, "time,value\n2023-01-01 00:00:00\n", "line 2: 1 columns"},
	}
	for _, tt := range bad {
		_, err := ParseTraceCSV(strings.NewReader(tt.body), tt.kind, "x")
		if err == nil || gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want an invalid-input error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := ParseTraceCSV(strings.NewReader("value\n"), KindCarbon, "Bad Name"); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("bad name: %v", err)
	}
}

func TestRegisteredTracesBuildSites(t *testing.T) {
	// A flat 0.5 of peak, day and night: unphysical but easy to check.
	solar, err := ParseTraceCSV(strings.NewReader(yearCSV(2023, false, func(int) string { return "0.5" })), KindSolar, "test-flat")
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterTrace(solar); err != nil {
		t.Fatal(err)
	}
	carbon, err := ParseTraceCSV(strings.NewReader(yearCSV(2023, true, func(h int) string { return fmt.Sprint(100 + h%24) })), KindCarbon, "test-zone")
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterZone(Zone{ID: "XX-TEST", UTCOffsetMinutes: 120, SolarTrace: "test-flat"}, carbon); err != nil {
		t.Fatal(err)
	}
	z, ok := ZoneByID("XX-TEST")
	if !ok || z.Region != "xx-test" || z.Name != "XX-TEST" {
		t.Fatalf("zone %+v %v", z, ok)
	}
	if zs := Zones(); zs[len(zs)-1].ID != "XX-TEST" {
		t.Errorf("Zones() ends with %s", zs[len(zs)-1].ID)
	}
	s, err := NewSite(Profile{Zone: "XX-TEST", UTCOffsetMinutes: 120, SolarPeakKW: 2, SolarTrace: "test-flat", BusyWatts: 100})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2023, 3, 1, 5, 0, 0, 0, time.UTC)
	if got := s.SolarWatts(at); got != 1000 {
		t.Errorf("solar %v W, want 1000", got)
	}
	if got := s.CarbonIntensity(at); got != 105 {
		t.Errorf("carbon %v, want 105 (hour 5 of the day)", got)
	}
	if err := RegisterTrace(&Trace{Name: "solar/almeria", Values: solar.Values}); err == nil {
		t.Error("replacing an embedded trace was accepted")
	}
	if err := RegisterTrace(carbon); err == nil {
		t.Error("a carbon trace registered without a zone")
	}
	if err := RegisterZone(Zone{ID: "bad id!"}, carbon); err == nil {
		t.Error("bad zone id accepted")
	}
	if _, err := NewSite(Profile{Zone: "XX-TEST", SolarPeakKW: 1, SolarTrace: "test-missing", BusyWatts: 1}); err == nil || !strings.Contains(err.Error(), "solar_trace") {
		t.Errorf("unknown custom trace: %v", err)
	}
}

// TestBatteryLosses: with an 80% round trip, 1 kWh of surplus stores 0.8.
func TestBatteryLosses(t *testing.T) {
	solar, err := ParseTraceCSV(strings.NewReader(yearCSV(2023, false, func(h int) string {
		if h%24 < 12 {
			return "1"
		}
		return "0"
	})), KindSolar, "test-halfday")
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterTrace(solar); err != nil {
		t.Fatal(err)
	}
	s, err := NewSite(Profile{Zone: "GB", SolarPeakKW: 1, SolarTrace: "test-halfday", BatteryKWh: 100, BatteryMaxKW: 10, BatteryRoundTripPct: 80, BusyWatts: 500})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC)
	u, err := s.Run(day, 12*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !near(u.ChargedWh, 12000) || !near(u.LossWh, 2400) || !near(s.BatteryWh(), 9600) {
		t.Errorf("charged %v loss %v stored %v, want 12000 2400 9600", u.ChargedWh, u.LossWh, s.BatteryWh())
	}
	u, err = s.Run(day.Add(12*time.Hour), 12*time.Hour, 500)
	if err != nil {
		t.Fatal(err)
	}
	if !near(u.BatteryWh, 6000) || !near(s.BatteryWh(), 3600) {
		t.Errorf("night: from battery %v, left %v; want 6000 and 3600", u.BatteryWh, s.BatteryWh())
	}
}
