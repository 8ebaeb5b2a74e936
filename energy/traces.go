package energy

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HoursPerYear is the length of every embedded trace: one non-leap year of
// hourly values.
const HoursPerYear = 8760

//go:embed data/*.csv.gz
var dataFS embed.FS

// Trace is one year of hourly values. Index 0 is 1 January 00:00 on the
// trace's own clock (UTC for carbon and solar, the household's local clock
// for load); see HourOfYear for how a time maps to an index.
type Trace struct {
	Name   string    // "carbon/GB", "solar/almeria", "load/sceaux"
	Unit   string    // "gCO2/kWh", "fraction of peak", "kW"
	Year   int       // the year the values were measured
	Values []float64 // HoursPerYear values
}

// At returns the value for an hour of year; any integer is folded into
// the year so callers never index out of range.
func (t *Trace) At(hour int) float64 {
	hour %= HoursPerYear
	if hour < 0 {
		hour += HoursPerYear
	}
	return t.Values[hour]
}

// HourOfYear maps a time to an index into a trace, using the calendar
// fields of t as given (callers shift t to the trace's clock first).
// Leap years fold 29 February onto 28 February so that every later date
// keeps its calendar day: traces from different years line up by date,
// which is what matters for the sun and the seasons.
func HourOfYear(t time.Time) int {
	day := t.YearDay() - 1
	if isLeap(t.Year()) && day >= 59 { // day 59 is 29 February
		day--
	}
	return day*24 + t.Hour()
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// Zone is one of the eight grid zones with an embedded carbon trace.
type Zone struct {
	ID               string // Electricity Maps zone id, e.g. "GB"
	Name             string
	UTCOffsetMinutes int    // local standard time, used to place the sun and the household's day
	Southern         bool   // southern hemisphere: seasons are shifted by half a year
	SolarTrace       string // the measured PV plant that best matches its sunshine
	Region           string // a market region name for demos, e.g. "eu-west"
}

var zones = []Zone{
	{ID: "US-CAL-CISO", Name: "California (CAISO)", UTCOffsetMinutes: -8 * 60, SolarTrace: "almeria", Region: "us-west"},
	{ID: "US-NY-NYIS", Name: "New York (NYISO)", UTCOffsetMinutes: -5 * 60, SolarTrace: "turin", Region: "us-east"},
	{ID: "BR-SP", Name: "São Paulo, Brazil", UTCOffsetMinutes: -3 * 60, Southern: true, SolarTrace: "almeria", Region: "sa-east"},
	{ID: "GB", Name: "Great Britain", UTCOffsetMinutes: 0, SolarTrace: "utrecht", Region: "eu-west"},
	{ID: "DE-LU", Name: "Germany and Luxembourg", UTCOffsetMinutes: 60, SolarTrace: "utrecht", Region: "eu-central"},
	{ID: "ZA", Name: "South Africa", UTCOffsetMinutes: 2 * 60, Southern: true, SolarTrace: "almeria", Region: "af-south"},
	{ID: "KR", Name: "South Korea", UTCOffsetMinutes: 9 * 60, SolarTrace: "turin", Region: "ap-northeast"},
	{ID: "AU-NSW", Name: "New South Wales, Australia", UTCOffsetMinutes: 10 * 60, Southern: true, SolarTrace: "almeria", Region: "ap-southeast"},
}

// Zones returns the eight embedded zones west to east, then zones
// registered with RegisterZone in id order (a registered replacement of an
// embedded zone keeps the embedded zone's place).
func Zones() []Zone {
	traceMu.Lock()
	defer traceMu.Unlock()
	out := make([]Zone, 0, len(zones)+len(customZones))
	for _, z := range zones {
		if c, ok := customZones[z.ID]; ok {
			z = c
		}
		out = append(out, z)
	}
	var extra []Zone
	for id, z := range customZones {
		if _, embedded := embeddedZone(id); !embedded {
			extra = append(extra, z)
		}
	}
	slices.SortFunc(extra, func(a, b Zone) int { return strings.Compare(a.ID, b.ID) })
	return append(out, extra...)
}

// ZoneByID returns the zone with the given id.
func ZoneByID(id string) (Zone, bool) {
	traceMu.Lock()
	defer traceMu.Unlock()
	return zoneByIDLocked(id)
}

func zoneByIDLocked(id string) (Zone, bool) {
	if z, ok := customZones[id]; ok {
		return z, true
	}
	return embeddedZone(id)
}

func embeddedZone(id string) (Zone, bool) {
	for _, z := range zones {
		if z.ID == id {
			return z, true
		}
	}
	return Zone{}, false
}

// SolarTraceNames lists the measured PV plants.
func SolarTraceNames() []string { return []string{"almeria", "turin", "utrecht"} }

// LoadTraceNames lists the household load traces.
func LoadTraceNames() []string { return []string{"sceaux"} }

type traceSpec struct {
	file    string
	unit    string
	year    int
	hasTime bool // first column is a timestamp to check
}

var traceSpecs = map[string]traceSpec{
	"solar/almeria": {file: "pv_almeria_2023.csv.gz", unit: "fraction of peak", year: 2023},
	"solar/turin":   {file: "pv_turin_2019.csv.gz", unit: "fraction of peak", year: 2019},
	"solar/utrecht": {file: "pv_utrecht_2015.csv.gz", unit: "fraction of peak", year: 2015},
	"load/sceaux":   {file: "household_sceaux_2007.csv.gz", unit: "kW", year: 2007, hasTime: true},
}

func init() {
	for _, z := range zones {
		traceSpecs["carbon/"+z.ID] = traceSpec{file: "carbon_" + z.ID + "_2023.csv.gz", unit: "gCO2/kWh", year: 2023, hasTime: true}
	}
}

type traceEntry struct {
	once  sync.Once
	trace *Trace
	err   error
}

var (
	traceMu    sync.Mutex
	traceCache = map[string]*traceEntry{}
)

// ErrUnknownTrace is returned for a zone or trace name that is not embedded.
var ErrUnknownTrace = errors.New("energy: unknown trace")

// CarbonTrace returns the grid carbon intensity (direct, gCO2/kWh, UTC) of a zone.
func CarbonTrace(zone string) (*Trace, error) { return loadTrace("carbon/" + zone) }

// SolarTrace returns a PV plant's measured output as a fraction of peak (UTC).
func SolarTrace(name string) (*Trace, error) { return loadTrace("solar/" + name) }

// LoadTrace returns a household's active power in kW on its local clock.
func LoadTrace(name string) (*Trace, error) { return loadTrace("load/" + name) }

// loadTrace parses an embedded trace once and shares it; traces are
// read-only after parsing so sharing is safe.
func loadTrace(name string) (*Trace, error) {
	if t := registered(name); t != nil {
		return t, nil
	}
	spec, ok := traceSpecs[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTrace, name)
	}
	traceMu.Lock()
	e := traceCache[name]
	if e == nil {
		e = &traceEntry{}
		traceCache[name] = e
	}
	traceMu.Unlock()
	e.once.Do(func() {
		e.trace, e.err = parseTrace(name, spec)
	})
	return e.trace, e.err
}

func parseTrace(name string, spec traceSpec) (*Trace, error) {
	raw, err := dataFS.ReadFile("data/" + spec.file)
	if err != nil {
		return nil, fmt.Errorf("energy: trace %s: %w", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("energy: trace %s: %w", name, err)
	}
	values, err := parseCSV(zr, spec)
	if err != nil {
		return nil, fmt.Errorf("energy: trace %s (%s): %w", name, spec.file, err)
	}
	return &Trace{Name: name, Unit: spec.unit, Year: spec.year, Values: values}, nil
}

// parseCSV reads a header and HoursPerYear rows. With a timestamp column it
// checks that rows are consecutive hours of spec.year, so a gap or a
// shifted file is caught here rather than as a subtly wrong answer later.
func parseCSV(r io.Reader, spec traceSpec) ([]float64, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	values := make([]float64, 0, HoursPerYear)
	next := time.Date(spec.year, 1, 1, 0, 0, 0, 0, time.UTC)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		row := len(values) + 2 // 1-based line number, after the header
		field := rec[0]
		if spec.hasTime {
			if len(rec) != 2 {
				return nil, fmt.Errorf("line %d: want 2 columns, got %d", row, len(rec))
			}
			ts, err := time.Parse(time.DateTime, rec[0])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", row, err)
			}
			if !ts.Equal(next) {
				return nil, fmt.Errorf("line %d: time %s, want %s", row, rec[0], next.Format(time.DateTime))
			}
			next = next.Add(time.Hour)
			field = rec[1]
		}
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", row, err)
		}
		values = append(values, v)
	}
	if len(values) != HoursPerYear {
		return nil, fmt.Errorf("%d rows, want %d", len(values), HoursPerYear)
	}
	return values, nil
}
