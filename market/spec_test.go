package market

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func validSpec() gridmind.JobSpec {
	return gridmind.JobSpec{
		Name: "shakespeare-mlp", Model: "mlp", Workers: 3, Rounds: 20, InnerSteps: 50,
		MinMemoryBytes: 4 << 30, MinThroughputMFLOPS: 100_000, MaxPricePerUnit: 800,
		Budget: 25 * gridmind.UnitsPerGRID, DeadlineUnix: 1_900_000_000,
		RegionsAllowed: []string{"eu-west", "eu-central"}, RegionsExcluded: []string{"us-east"},
		GreenPreference: 70, MinReputation: 20, MinStake: 10 * gridmind.UnitsPerGRID, Seed: 7,
	}
}

func TestParseJobSpec(t *testing.T) {
	yamlDoc := `
name: shakespeare-mlp
model: mlp
workers: 3
rounds: 20
inner_steps: 50
min_memory_bytes: 4294967296
min_throughput_mflops: 100000
max_price_per_unit: 800u
budget: 25
deadline_unix: 1900000000
regions_allowed: [eu-west, eu-central]
regions_excluded: [us-east]
green_preference: 70
min_reputation: 20
min_stake: "10 GRID"
seed: 7
`
	jsonDoc := `{"name":"shakespeare-mlp","model":"mlp","workers":3,"rounds":20,"inner_steps":50,
		"min_memory_bytes":4294967296,"min_throughput_mflops":100000,"max_price_per_unit":"800u",
		"budget":25,"deadline_unix":1900000000,"regions_allowed":["eu-west","eu-central"],
		"regions_excluded":["us-east"],"green_preference":70,"min_reputation":20,"min_stake":"10","seed":7}`
	for name, doc := range map[string]string{"yaml": yamlDoc, "json": jsonDoc} {
		got, err := ParseJobSpec([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, validSpec()) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, validSpec())
		}
	}
	// A spec written by MarshalJobSpec reads back unchanged.
	raw, err := MarshalJobSpec(validSpec())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseJobSpec(raw); err != nil || !reflect.DeepEqual(got, validSpec()) {
		t.Errorf("round trip of\n%s: %+v, %v", raw, got, err)
	}
}

// TestExampleSpec: examples/spec.yaml, which docs/JOBSPEC.md and the README
// point to, parses with the real parser and is valid; and it fits the
// README's `devnet up --nodes 4`: the posting node is not a candidate, so
// its workers plus train submit's one default standby must fit in the
// other three, and a round's pot must stay below a provider's default
// stake of 10 GRID or the ledger refuses the leases.
func TestExampleSpec(t *testing.T) {
	data, err := os.ReadFile("../examples/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseJobSpec(data)
	if err != nil {
		t.Fatalf("examples/spec.yaml: %v", err)
	}
	if err := ValidateJobSpec(spec, time.Now()); err != nil {
		t.Fatalf("examples/spec.yaml: %v", err)
	}
	const devnetProviders, defaultStandby = 3, 1
	if spec.Workers+defaultStandby > devnetProviders {
		t.Errorf("examples/spec.yaml asks for %d workers + %d standby; a 4-node devnet has %d providers for it", spec.Workers, defaultStandby, devnetProviders)
	}
	if pot := spec.Budget / gridmind.Amount(spec.Rounds); pot >= 10*gridmind.UnitsPerGRID {
		t.Errorf("examples/spec.yaml pays %s a round; a devnet provider stakes 10 GRID and must stake more", pot)
	}
	if spec.Budget != 20*gridmind.UnitsPerGRID || spec.MaxPricePerUnit != 50 {
		t.Errorf("budget %s, max_price_per_unit %d µGRID: the example's comments say 20 GRID and 50u", spec.Budget, spec.MaxPricePerUnit)
	}
	if len(spec.RegionsAllowed) > 0 && !slices.Contains(spec.RegionsAllowed, "devnet") || slices.Contains(spec.RegionsExcluded, "devnet") || spec.MinReputation > 12 || spec.MinStake > 10*gridmind.UnitsPerGRID {
		t.Errorf("examples/spec.yaml restricts placement beyond what devnet nodes (region devnet, reputation 0.12, stake 10 GRID) meet: %+v", spec)
	}
}

// TestSpecAmounts: amounts in a spec are read like every amount a person
// types (`wallet send ADDR 50` sends 50 GRID), in YAML and JSON alike; the
// old meaning of a bare number, µGRID, cost a user a job that ran for
// 0.00005 GRID (issue 15).
func TestSpecAmounts(t *testing.T) {
	tests := []struct {
		yaml, json string
		want       gridmind.Amount
	}{
		{"50", "50", 50 * gridmind.UnitsPerGRID},
		{"12.5", "12.5", 12_500_000},
		{`"50 GRID"`, `"50 GRID"`, 50 * gridmind.UnitsPerGRID},
		{"50 GRID", `"50GRID"`, 50 * gridmind.UnitsPerGRID},
		{"0.000001", "0.000001", 1},
		{"50u", `"50u"`, 50},
		{"50µGRID", `"50µGRID"`, 50},
		{"1500 µGRID", `"1500 µGRID"`, 1500},
		{"1500ugrid", `"1500ugrid"`, 1500},
	}
	for _, tt := range tests {
		for format, doc := range map[string]string{
			"yaml": "budget: " + tt.yaml + "\n",
			"json": `{"budget":` + tt.json + `}`,
		} {
			got, err := ParseJobSpec([]byte(doc))
			if err != nil || got.Budget != tt.want {
				t.Errorf("%s %s: budget %d µGRID, %v; want %d µGRID", format, doc, got.Budget, err, tt.want)
			}
		}
	}
	// max_price_per_unit and min_stake are amounts too.
	got, err := ParseJobSpec([]byte("max_price_per_unit: 40u\nmin_stake: 10\n"))
	if err != nil || got.MaxPricePerUnit != 40 || got.MinStake != 10*gridmind.UnitsPerGRID {
		t.Errorf("max_price_per_unit %d, min_stake %d, %v; want 40 µGRID and 10 GRID", got.MaxPricePerUnit, got.MinStake, err)
	}
}

func TestParseJobSpecErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "  \n", "empty document"},
		{"unknown yaml field", "name: x\nworkerz: 3\n", "workerz"},
		{"unknown json field", `{"name":"x","gpu":true}`, `unknown field "gpu"`},
		{"json wrong type", `{"workers":"three"}`, "field workers"},
		{"yaml wrong type", "workers: three\n", "three"},
		{"bad amount", "budget: lots\n", "lots"},
		{"fractional µGRID", "budget: 12.5u\n", "µGRID are whole"},
		{"negative", "budget: -5\n", "negative"},
		{"json negative", `{"budget":-5}`, "negative"},
		{"unknown unit", "budget: 50 USD\n", `unknown unit "USD"`},
		{"json unknown unit", `{"min_stake":"50 GRD"}`, `unknown unit "GRD"`},
		{"too many decimals", "max_price_per_unit: 0.0000001\n", "at most six decimals"},
		{"amount list", "budget: [1, 2]\n", "want an amount"},
		{"json amount object", `{"budget":{"grid":5}}`, "not an amount"},
		{"exponent", "budget: 5e3\n", "not a number"},
		{"two yaml docs", "name: a\n---\nname: b\n", "more than one YAML document"},
		{"json trailing", `{"name":"a"} {"name":"b"}`, "trailing data"},
		{"json syntax", `{"name":`, "JSON"},
		{"too big", strings.Repeat(" ", MaxSpecBytes+1), "at most"},
	}
	for _, tt := range tests {
		_, err := ParseJobSpec([]byte(tt.doc))
		if err == nil || gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want an invalid-input error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestValidateJobSpec(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		edit func(*gridmind.JobSpec)
		want []string // substrings the error must name; nil means valid
	}{
		{"valid", func(*gridmind.JobSpec) {}, nil},
		{"no workers", func(s *gridmind.JobSpec) { s.Workers = 0 }, []string{"workers 0"}},
		{"too many workers", func(s *gridmind.JobSpec) { s.Workers = MaxWorkers + 1 }, []string{"workers 1025"}},
		{"zero budget", func(s *gridmind.JobSpec) { s.Budget = 0 }, []string{"budget"}},
		{"green too high", func(s *gridmind.JobSpec) { s.GreenPreference = 101 }, []string{"green_preference 101"}},
		{"green negative", func(s *gridmind.JobSpec) { s.GreenPreference = -1 }, []string{"green_preference -1"}},
		{"reputation", func(s *gridmind.JobSpec) { s.MinReputation = 200 }, []string{"min_reputation 200"}},
		{"bad region", func(s *gridmind.JobSpec) { s.RegionsAllowed = []string{"EU West"} }, []string{`regions_allowed: region "EU West"`}},
		{"duplicate region", func(s *gridmind.JobSpec) { s.RegionsExcluded = []string{"us-east", "us-east"} }, []string{`regions_excluded: region "us-east" listed twice`}},
		{"allowed and excluded", func(s *gridmind.JobSpec) { s.RegionsExcluded = []string{"eu-west"} }, []string{`"eu-west" is both`}},
		{"model", func(s *gridmind.JobSpec) { s.Model = "gpt" }, []string{`model "gpt"`}},
		{"name", func(s *gridmind.JobSpec) { s.Name = "" }, []string{"name: required"}},
		{"control chars", func(s *gridmind.JobSpec) { s.Name = "a\x00b" }, []string{"printable"}},
		{"rounds", func(s *gridmind.JobSpec) { s.Rounds = 0 }, []string{"rounds 0"}},
		{"inner steps", func(s *gridmind.JobSpec) { s.InnerSteps = -5 }, []string{"inner_steps -5"}},
		{"deadline passed", func(s *gridmind.JobSpec) { s.DeadlineUnix = 1_700_000_000 }, []string{"deadline_unix 1700000000: already passed"}},
		{"price above budget", func(s *gridmind.JobSpec) { s.MaxPricePerUnit = 26 * gridmind.UnitsPerGRID }, []string{"max_price_per_unit"}},
		{"several at once", func(s *gridmind.JobSpec) { s.Workers, s.Budget, s.GreenPreference = 0, 0, 300 },
			[]string{"workers 0", "budget", "green_preference 300"}},
	}
	for _, tt := range tests {
		s := validSpec()
		tt.edit(&s)
		err := ValidateJobSpec(s, now)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: unexpected %v", tt.name, err)
			}
			continue
		}
		if err == nil || gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: error %v, want an invalid-input error", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", tt.name, err, w)
			}
		}
	}
	// Without a clock the deadline is not compared with anything.
	s := validSpec()
	s.DeadlineUnix = 1
	if err := ValidateJobSpec(s, time.Time{}); err != nil {
		t.Errorf("zero now: %v", err)
	}
}

// TestSpecDocMirrorsJobSpec keeps the parser's mirror struct in step with
// the root type: same field names, order and tags.
func TestSpecDocMirrorsJobSpec(t *testing.T) {
	a, b := reflect.TypeOf(specDoc{}), reflect.TypeOf(gridmind.JobSpec{})
	if a.NumField() != b.NumField() {
		t.Fatalf("specDoc has %d fields, JobSpec %d", a.NumField(), b.NumField())
	}
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		ja, jb := strings.Split(fa.Tag.Get("json"), ",")[0], strings.Split(fb.Tag.Get("json"), ",")[0]
		ya, yb := strings.Split(fa.Tag.Get("yaml"), ",")[0], strings.Split(fb.Tag.Get("yaml"), ",")[0]
		if fa.Name != fb.Name || ja != jb || ya != yb {
			t.Errorf("field %d: specDoc %s (%s/%s) vs JobSpec %s (%s/%s)", i, fa.Name, ja, ya, fb.Name, jb, yb)
		}
	}
}

func FuzzParseJobSpec(f *testing.F) {
	raw, _ := json.Marshal(validSpec())
	f.Add(raw)
	f.Add([]byte("name: a\nmodel: mlp\nworkers: 2\nrounds: 1\ninner_steps: 1\nbudget: 1 GRID\n"))
	f.Add([]byte(`{"name":"a","model":"mlp","workers":2,"rounds":1,"inner_steps":1,"budget":12.5,"max_price_per_unit":"3u"}`))
	f.Add([]byte("budget: [1, 2]\n"))
	f.Add([]byte(`{"budget":"-1"}`))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseJobSpec(data)
		if err != nil {
			return
		}
		if ValidateJobSpec(spec, time.Time{}) != nil {
			return
		}
		// A valid spec survives MarshalJobSpec unchanged.
		again, err := MarshalJobSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseJobSpec(again)
		if err != nil || !reflect.DeepEqual(back, spec) {
			t.Fatalf("round trip of %q: %+v vs %+v (%v)", data, back, spec, err)
		}
	})
}

func TestParseJobSpecReadsTheTrainingTimingFlags(t *testing.T) {
	spec, err := ParseJobSpec([]byte("name: a\nmodel: mlp\nworkers: 2\nrounds: 1\ninner_steps: 10\nbudget: 1 GRID\noverlap: true\nelastic_steps: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Overlap || !spec.ElasticSteps {
		t.Errorf("overlap %v, elastic_steps %v: want both true", spec.Overlap, spec.ElasticSteps)
	}
}
