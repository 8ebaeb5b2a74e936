package market

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// MaxSpecBytes bounds a job spec document.
const MaxSpecBytes = 64 << 10

// Limits on a job spec; beyond them a spec is a mistake or an attack.
const (
	MaxWorkers    = 1024
	MaxRounds     = 1_000_000
	MaxInnerSteps = 1_000_000
	maxNameLen    = 64
	maxRegions    = 64
)

// Models are the model names a job may ask for.
var Models = []string{"mlp", "transformer"}

// specDoc mirrors gridmind.JobSpec field for field, with amounts read as
// people write them (amountValue); TestSpecDocMirrorsJobSpec keeps the two
// in step.
type specDoc struct {
	Name                string      `json:"name" yaml:"name"`
	Model               string      `json:"model" yaml:"model"`
	Workers             int         `json:"workers" yaml:"workers"`
	Rounds              int         `json:"rounds" yaml:"rounds"`
	InnerSteps          int         `json:"inner_steps" yaml:"inner_steps"`
	MinMemoryBytes      uint64      `json:"min_memory_bytes,omitempty" yaml:"min_memory_bytes,omitempty"`
	MinThroughputMFLOPS uint64      `json:"min_throughput_mflops,omitempty" yaml:"min_throughput_mflops,omitempty"`
	MaxPricePerUnit     amountValue `json:"max_price_per_unit,omitempty" yaml:"max_price_per_unit,omitempty"`
	Budget              amountValue `json:"budget" yaml:"budget"`
	DeadlineUnix        int64       `json:"deadline_unix,omitempty" yaml:"deadline_unix,omitempty"`
	RegionsAllowed      []string    `json:"regions_allowed,omitempty" yaml:"regions_allowed,omitempty"`
	RegionsExcluded     []string    `json:"regions_excluded,omitempty" yaml:"regions_excluded,omitempty"`
	GreenPreference     int         `json:"green_preference,omitempty" yaml:"green_preference,omitempty"`
	MinReputation       int         `json:"min_reputation,omitempty" yaml:"min_reputation,omitempty"`
	MinStake            amountValue `json:"min_stake,omitempty" yaml:"min_stake,omitempty"`
	Seed                int64       `json:"seed,omitempty" yaml:"seed,omitempty"`
	Codec               string      `json:"codec,omitempty" yaml:"codec,omitempty"`
	Combine             string      `json:"combine,omitempty" yaml:"combine,omitempty"`
	Screen              string      `json:"screen,omitempty" yaml:"screen,omitempty"`
	MinParticipants     int         `json:"min_participants,omitempty" yaml:"min_participants,omitempty"`
	Overlap             bool        `json:"overlap,omitempty" yaml:"overlap,omitempty"`
	ElasticSteps        bool        `json:"elastic_steps,omitempty" yaml:"elastic_steps,omitempty"`
}

func (d *specDoc) spec() gridmind.JobSpec {
	return gridmind.JobSpec{
		Name: d.Name, Model: d.Model, Workers: d.Workers, Rounds: d.Rounds, InnerSteps: d.InnerSteps,
		MinMemoryBytes: d.MinMemoryBytes, MinThroughputMFLOPS: d.MinThroughputMFLOPS,
		MaxPricePerUnit: gridmind.Amount(d.MaxPricePerUnit), Budget: gridmind.Amount(d.Budget),
		DeadlineUnix: d.DeadlineUnix, RegionsAllowed: d.RegionsAllowed, RegionsExcluded: d.RegionsExcluded,
		GreenPreference: d.GreenPreference, MinReputation: d.MinReputation,
		MinStake: gridmind.Amount(d.MinStake), Seed: d.Seed,
		Codec: d.Codec, Combine: d.Combine, Screen: d.Screen, MinParticipants: d.MinParticipants, Overlap: d.Overlap, ElasticSteps: d.ElasticSteps,
	}
}

// docOf is the spec document of s: what ParseJobSpec reads back as s.
func docOf(s gridmind.JobSpec) specDoc {
	return specDoc{
		Name: s.Name, Model: s.Model, Workers: s.Workers, Rounds: s.Rounds, InnerSteps: s.InnerSteps,
		MinMemoryBytes: s.MinMemoryBytes, MinThroughputMFLOPS: s.MinThroughputMFLOPS,
		MaxPricePerUnit: amountValue(s.MaxPricePerUnit), Budget: amountValue(s.Budget),
		DeadlineUnix: s.DeadlineUnix, RegionsAllowed: s.RegionsAllowed, RegionsExcluded: s.RegionsExcluded,
		GreenPreference: s.GreenPreference, MinReputation: s.MinReputation,
		MinStake: amountValue(s.MinStake), Seed: s.Seed,
		Codec: s.Codec, Combine: s.Combine, Screen: s.Screen, MinParticipants: s.MinParticipants, Overlap: s.Overlap, ElasticSteps: s.ElasticSteps,
	}
}

// MarshalJobSpec writes s as a YAML spec document, amounts in GRID, that
// ParseJobSpec reads back as s: a posted job's spec, ready to edit and
// submit again.
func MarshalJobSpec(s gridmind.JobSpec) ([]byte, error) {
	return yaml.Marshal(docOf(s))
}

// amountValue is an amount in a spec document, read like every amount a
// person types (gridmind.ParseAmount): a bare number is GRID, in YAML and
// in JSON alike ("budget: 50" is 50 GRID, as in `wallet send ADDR 50`);
// "50u" or "50 µGRID" is µGRID. The HTTP API and the ledger carry a
// JobSpec's amounts as integers of µGRID instead: a spec document is for
// people, the API for programs (docs/JOBSPEC.md).
type amountValue gridmind.Amount

func (a *amountValue) UnmarshalJSON(b []byte) error {
	text := string(b)
	if text == "null" {
		return nil // as if the field were absent
	}
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
	} else if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return fmt.Errorf("%s is not an amount; want a number of GRID such as 50 or 12.5, or a string such as \"1500u\"", b)
	}
	v, err := gridmind.ParseAmount(text)
	*a = amountValue(v)
	return err
}

func (a *amountValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "budget:" with nothing after it: as if absent
	}
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!str") {
		return fmt.Errorf("line %d: want an amount such as 50 (GRID), 12.5 GRID or 1500u (µGRID)", n.Line)
	}
	v, err := gridmind.ParseAmount(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*a = amountValue(v)
	return nil
}

// MarshalText writes the amount as ParseAmount reads it back exactly
// ("12.5 GRID"), so a spec document written from a JobSpec means the same.
func (a amountValue) MarshalText() ([]byte, error) {
	return []byte(gridmind.Amount(a).String()), nil
}

// ParseJobSpec reads a job spec from JSON (a document starting with '{')
// or YAML, strictly: unknown fields, trailing documents and wrong types
// are errors that name the field. It does not validate the values; call
// ValidateJobSpec.
func ParseJobSpec(data []byte) (gridmind.JobSpec, error) {
	const op = "job spec"
	if len(data) > MaxSpecBytes {
		return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "%d bytes, at most %d", len(data), MaxSpecBytes)
	}
	var doc specDoc
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "empty document")
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "%s", jsonError(err))
		}
		if dec.More() {
			return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "trailing data after the JSON object")
		}
		return doc.spec(), nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(trimmed))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "%s", yamlError(err))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return gridmind.JobSpec{}, gridmind.E(gridmind.KindInvalid, op, "more than one YAML document")
	}
	return doc.spec(), nil
}

func jsonError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %s: got a JSON %s, want %s", typ.Field, typ.Value, typ.Type)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("JSON syntax error at byte %d: %v", syn.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "JSON document ends early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// yamlError drops the Go type names yaml.v3 puts in its messages.
func yamlError(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.ReplaceAll(s, " in type market.specDoc", "")
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	return strings.ReplaceAll(s, "\n  ", "; ")
}

var regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidateJobSpec checks every field of a spec and reports all problems at
// once, each naming its field. With a non-zero now it also refuses a
// deadline that has passed.
func ValidateJobSpec(s gridmind.JobSpec, now time.Time) error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	switch {
	case s.Name == "":
		bad("name: required")
	case len(s.Name) > maxNameLen:
		bad("name: %d bytes, at most %d", len(s.Name), maxNameLen)
	case strings.IndexFunc(s.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		bad("name %q: only printable characters", s.Name)
	}
	if !slices.Contains(Models, s.Model) {
		bad("model %q: want one of %s", s.Model, strings.Join(Models, ", "))
	}
	if s.Workers < 1 || s.Workers > MaxWorkers {
		bad("workers %d: want 1..%d", s.Workers, MaxWorkers)
	}
	if s.Rounds < 1 || s.Rounds > MaxRounds {
		bad("rounds %d: want 1..%d", s.Rounds, MaxRounds)
	}
	if s.InnerSteps < 1 || s.InnerSteps > MaxInnerSteps {
		bad("inner_steps %d: want 1..%d", s.InnerSteps, MaxInnerSteps)
	}
	if s.Budget == 0 {
		bad("budget: must be more than 0")
	}
	if s.MaxPricePerUnit > 0 && s.Budget > 0 && s.MaxPricePerUnit > s.Budget {
		bad("max_price_per_unit %s exceeds the budget %s", s.MaxPricePerUnit, s.Budget)
	}
	if s.DeadlineUnix < 0 {
		bad("deadline_unix %d: must not be negative (0 means none)", s.DeadlineUnix)
	} else if s.DeadlineUnix > 0 && !now.IsZero() && s.DeadlineUnix <= now.Unix() {
		bad("deadline_unix %d: already passed (%s)", s.DeadlineUnix, time.Unix(s.DeadlineUnix, 0).UTC().Format(time.RFC3339))
	}
	if s.GreenPreference < 0 || s.GreenPreference > 100 {
		bad("green_preference %d: want 0..100", s.GreenPreference)
	}
	if s.MinReputation < 0 || s.MinReputation > 100 {
		bad("min_reputation %d: want 0..100", s.MinReputation)
	}
	checkRegions := func(field string, list []string) map[string]bool {
		seen := map[string]bool{}
		if len(list) > maxRegions {
			bad("%s: %d regions, at most %d", field, len(list), maxRegions)
			return seen
		}
		for _, r := range list {
			switch {
			case !regionPattern.MatchString(r):
				bad("%s: region %q: want lower-case letters, digits and '-', like eu-west", field, r)
			case seen[r]:
				bad("%s: region %q listed twice", field, r)
			}
			seen[r] = true
		}
		return seen
	}
	if _, err := train.ParseCodec(s.Codec); s.Codec != "" && err != nil {
		bad("codec %q: want int8, int4, float32 or topk:K:BITS", s.Codec)
	}
	if _, err := train.ParseCombiner(s.Combine); s.Combine != "" && err != nil {
		bad("combine %q: %v", s.Combine, strings.TrimPrefix(err.Error(), "train: "))
	}
	if _, err := train.ParseScreen(s.Screen); err != nil {
		bad("screen %q: %v", s.Screen, strings.TrimPrefix(err.Error(), "train: "))
	}
	if s.MinParticipants < 0 || (s.Workers > 0 && s.MinParticipants > s.Workers) {
		bad("min_participants %d: want 0 (half the workers) to workers (%d)", s.MinParticipants, s.Workers)
	}
	allowed := checkRegions("regions_allowed", s.RegionsAllowed)
	excluded := checkRegions("regions_excluded", s.RegionsExcluded)
	for _, r := range s.RegionsExcluded {
		if allowed[r] && excluded[r] {
			bad("region %q is both in regions_allowed and regions_excluded", r)
			excluded[r] = false // report it once
		}
	}
	if len(problems) > 0 {
		return gridmind.E(gridmind.KindInvalid, "job spec", "%s", strings.Join(problems, "; "))
	}
	return nil
}
