package energy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
)

// Trace kinds a CSV file can supply (docs/TRACES.md).
const (
	KindCarbon = "carbon" // a zone's grid intensity, gCO2/kWh, UTC hours
	KindSolar  = "solar"  // a PV plant's output, fraction of peak, read on the site's local clock
	KindLoad   = "load"   // a household's draw, kW, read on the site's local clock
)

// Upper bounds on a trace's values; beyond them the file is almost
// certainly in another unit.
var traceMax = map[string]float64{
	KindCarbon: 3000, // the dirtiest grids are near 1,000 gCO2/kWh
	KindSolar:  1.2,  // output as a fraction of peak; a little above 1 happens on cold bright days
	KindLoad:   10_000,
}

var traceUnits = map[string]string{KindCarbon: "gCO2/kWh", KindSolar: "fraction of peak", KindLoad: "kW"}

// MaxTraceBytes bounds a trace file: a year of hourly rows with a timestamp
// is about 200 KB.
const MaxTraceBytes = 4 << 20

var traceNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// ParseTraceCSV reads one year of hourly values of a kind from CSV: a
// header row, then either one column (the value) or two (a timestamp and
// the value). Timestamps are "2006-01-02 15:04:05", "2006-01-02T15:04:05Z"
// or RFC 3339, consecutive hours of one calendar year starting 1 January
// 00:00; a leap year's 29 February is dropped so every trace has
// HoursPerYear values. Errors name the line and what is wrong with it.
func ParseTraceCSV(r io.Reader, kind, name string) (*Trace, error) {
	const op = "energy.trace"
	limit, ok := traceMax[kind]
	if !ok {
		return nil, gridmind.E(gridmind.KindInvalid, op, "kind %q: want carbon, solar or load", kind)
	}
	if !traceNamePattern.MatchString(name) {
		return nil, gridmind.E(gridmind.KindInvalid, op, "name %q: want 1-40 lower-case letters, digits, '.', '_' or '-'", name)
	}
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, op, "%s %s: %s", kind, name, fmt.Sprintf(format, args...))
	}
	cr := csv.NewReader(io.LimitReader(r, MaxTraceBytes+1))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, bad("empty file (want a header row, then %d hourly rows)", HoursPerYear)
	}
	if err != nil {
		return nil, bad("header: %v", err)
	}
	cols := len(header)
	if cols != 1 && cols != 2 {
		return nil, bad("header has %d columns, want 1 (value) or 2 (time,value)", cols)
	}
	values := make([]float64, 0, HoursPerYear)
	var next time.Time
	year := 0
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				return nil, bad("line %d: %v", perr.Line, perr.Err)
			}
			return nil, bad("line %d: %v", line, err)
		}
		if len(rec) != cols {
			return nil, bad("line %d: %d columns, the header has %d", line, len(rec), cols)
		}
		field := rec[0]
		if cols == 2 {
			ts, err := parseTraceTime(rec[0])
			if err != nil {
				return nil, bad("line %d: time %q: want 2006-01-02 15:04:05 or RFC 3339 (UTC)", line, rec[0])
			}
			if year == 0 {
				year = ts.Year()
				next = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			if !ts.Equal(next) {
				return nil, bad("line %d: time %s, want %s (rows must be consecutive hours of one year from 1 January 00:00)", line, rec[0], next.Format(time.DateTime))
			}
			next = next.Add(time.Hour)
			if ts.Month() == time.February && ts.Day() == 29 {
				continue
			}
			field = rec[1]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad("line %d: value %q is not a number", line, field)
		}
		if v < 0 || v > limit {
			return nil, bad("line %d: value %v outside 0..%v %s", line, v, limit, traceUnits[kind])
		}
		if len(values) == HoursPerYear {
			return nil, bad("line %d: more than %d hourly rows", line, HoursPerYear)
		}
		values = append(values, v)
	}
	if len(values) != HoursPerYear {
		return nil, bad("%d hourly rows, want %d (one year; a leap year may have 8,784 with 29 February)", len(values), HoursPerYear)
	}
	if year == 0 {
		year = 2023
	}
	return &Trace{Name: kind + "/" + name, Unit: traceUnits[kind], Year: year, Values: values}, nil
}

func parseTraceTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.DateTime, "2006-01-02T15:04:05Z", time.RFC3339, "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

// RegisterTrace makes a parsed solar or load trace available to profiles
// under its name (solar_trace, load_trace), beside the embedded ones. A
// name already embedded cannot be replaced; registering a name again
// replaces the earlier registration. Sites built before keep the trace
// they resolved.
func RegisterTrace(t *Trace) error {
	const op = "energy.trace"
	kind, name, _ := strings.Cut(t.Name, "/")
	if kind != KindSolar && kind != KindLoad {
		return gridmind.E(gridmind.KindInvalid, op, "%s: register carbon traces with RegisterZone", t.Name)
	}
	if len(t.Values) != HoursPerYear {
		return gridmind.E(gridmind.KindInvalid, op, "%s: %d values, want %d", t.Name, len(t.Values), HoursPerYear)
	}
	if _, ok := traceSpecs[t.Name]; ok {
		return gridmind.E(gridmind.KindInvalid, op, "%s: an embedded trace has that name; choose another", t.Name)
	}
	if !traceNamePattern.MatchString(name) {
		return gridmind.E(gridmind.KindInvalid, op, "name %q: want 1-40 lower-case letters, digits, '.', '_' or '-'", name)
	}
	traceMu.Lock()
	defer traceMu.Unlock()
	customTraces[t.Name] = t
	return nil
}

// RegisterZone adds a grid zone with its carbon trace, or replaces the
// carbon trace of a zone already known (embedded or registered), keeping
// the zone's other fields when z leaves them empty.
func RegisterZone(z Zone, carbon *Trace) error {
	const op = "energy.zone"
	if carbon == nil || carbon.Name != KindCarbon+"/"+carbonTraceName(carbon) || len(carbon.Values) != HoursPerYear {
		return gridmind.E(gridmind.KindInvalid, op, "zone %q: want a carbon trace of %d values from ParseTraceCSV", z.ID, HoursPerYear)
	}
	if !zonePattern.MatchString(z.ID) {
		return gridmind.E(gridmind.KindInvalid, op, "zone %q: want letters, digits and '-', like GB or US-CAL-CISO", z.ID)
	}
	if z.UTCOffsetMinutes < -maxOffsetMinute || z.UTCOffsetMinutes > maxOffsetMinute {
		return gridmind.E(gridmind.KindInvalid, op, "zone %s: utc offset %d min: want -840..840", z.ID, z.UTCOffsetMinutes)
	}
	traceMu.Lock()
	defer traceMu.Unlock()
	if old, ok := zoneByIDLocked(z.ID); ok {
		if z.Name == "" {
			z.Name = old.Name
		}
		if z.SolarTrace == "" {
			z.SolarTrace = old.SolarTrace
		}
		if z.Region == "" {
			z.Region = old.Region
		}
		if z.UTCOffsetMinutes == 0 && !z.Southern {
			z.UTCOffsetMinutes, z.Southern = old.UTCOffsetMinutes, old.Southern
		}
	}
	if z.Name == "" {
		z.Name = z.ID
	}
	if z.Region == "" {
		z.Region = strings.ToLower(z.ID)
	}
	customZones[z.ID] = z
	customTraces[KindCarbon+"/"+z.ID] = &Trace{Name: KindCarbon + "/" + z.ID, Unit: carbon.Unit, Year: carbon.Year, Values: carbon.Values}
	return nil
}

func carbonTraceName(t *Trace) string { _, n, _ := strings.Cut(t.Name, "/"); return n }

var zonePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,31}$`)

// Traces and zones registered at run time, guarded by traceMu.
var (
	customTraces = map[string]*Trace{}
	customZones  = map[string]Zone{}
)

// registered returns a run-time trace, or nil.
func registered(name string) *Trace {
	traceMu.Lock()
	defer traceMu.Unlock()
	return customTraces[name]
}

// hasTrace reports whether a trace of that full name ("solar/almeria") exists.
func hasTrace(name string) bool {
	if _, ok := traceSpecs[name]; ok {
		return true
	}
	return registered(name) != nil
}
