package market

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// cand is a plain candidate: 64 GiB, 1 TFLOPS, price 100, stake 100 GRID,
// reputation 0.8, 50 ms, no energy data.
func cand(id string, edit ...func(*Candidate)) Candidate {
	c := Candidate{
		Offer: gridmind.Offer{
			Node:             gridmind.NodeID(id),
			Hardware:         gridmind.Hardware{CPUCores: 8, MemoryBytes: 64 << 30},
			ThroughputMFLOPS: 1_000_000,
			PricePerUnit:     100,
			Region:           "eu-west",
		},
		Stake:      100 * gridmind.UnitsPerGRID,
		Reputation: 800_000,
		LatencyMs:  50,
		Energy:     Energy{CarbonGPerKWh: 300, BusyWatts: 300},
	}
	for _, e := range edit {
		e(&c)
	}
	return c
}

func job(workers int, edit ...func(*gridmind.JobSpec)) gridmind.JobSpec {
	s := gridmind.JobSpec{Name: "test", Model: "mlp", Workers: workers, Rounds: 1, InnerSteps: 1, Budget: gridmind.UnitsPerGRID}
	for _, e := range edit {
		e(&s)
	}
	return s
}

func TestFeasibility(t *testing.T) {
	tests := []struct {
		name   string
		spec   gridmind.JobSpec
		cand   Candidate
		checks []Check // the failed checks, in order; nil means feasible
		reason string  // a substring of the first reason
	}{
		{"plain", job(1), cand("a"), nil, ""},
		{"memory", job(1, func(s *gridmind.JobSpec) { s.MinMemoryBytes = 128 << 30 }), cand("a"), []Check{CheckMemory}, "memory 64.0 GiB is below min_memory_bytes 128.0 GiB"},
		{"throughput", job(1, func(s *gridmind.JobSpec) { s.MinThroughputMFLOPS = 2_000_000 }), cand("a"), []Check{CheckThroughput}, "1000000 MFLOPS is below"},
		{"price", job(1, func(s *gridmind.JobSpec) { s.MaxPricePerUnit = 99 }), cand("a"), []Check{CheckPrice}, "price 100 µGRID/GFLOP is above max_price_per_unit 99 µGRID/GFLOP"},
		{"price equal is fine", job(1, func(s *gridmind.JobSpec) { s.MaxPricePerUnit = 100 }), cand("a"), nil, ""},
		{"stake", job(1, func(s *gridmind.JobSpec) { s.MinStake = 101 * gridmind.UnitsPerGRID }), cand("a"), []Check{CheckStake}, "stake 100 GRID is below min_stake 101 GRID"},
		// The ledger leases only a provider staking more than one round's
		// pot (budget/rounds); placing one it would refuse locks escrow.
		{"stake below the pot", job(1, func(s *gridmind.JobSpec) { s.Budget, s.Rounds = 500*gridmind.UnitsPerGRID, 5 }), cand("a"), []Check{CheckStake}, "stake 100 GRID does not exceed one round's pot of 100 GRID"},
		{"stake above the pot", job(1, func(s *gridmind.JobSpec) { s.Budget, s.Rounds = 500*gridmind.UnitsPerGRID-5, 5 }), cand("a"), nil, ""},
		{"reputation", job(1, func(s *gridmind.JobSpec) { s.MinReputation = 81 }), cand("a"), []Check{CheckReputation}, "reputation 0.80 is below min_reputation 0.81"},
		{"reputation equal is fine", job(1, func(s *gridmind.JobSpec) { s.MinReputation = 80 }), cand("a"), nil, ""},
		{"region not allowed", job(1, func(s *gridmind.JobSpec) { s.RegionsAllowed = []string{"us-west", "mars"} }), cand("a"), []Check{CheckRegion}, `region "eu-west" is not in regions_allowed [us-west mars]`},
		{"region allowed", job(1, func(s *gridmind.JobSpec) { s.RegionsAllowed = []string{"us-west", "eu-west"} }), cand("a"), nil, ""},
		{"region excluded", job(1, func(s *gridmind.JobSpec) { s.RegionsExcluded = []string{"eu-west"} }), cand("a"), []Check{CheckRegion}, `region "eu-west" is in regions_excluded`},
		{"busy", job(1), cand("a", func(c *Candidate) { c.Busy = true }), []Check{CheckBusy}, "busy"},
		{"everything at once", job(1, func(s *gridmind.JobSpec) {
			s.MinMemoryBytes, s.MaxPricePerUnit, s.MinReputation, s.RegionsExcluded = 1<<40, 1, 99, []string{"eu-west"}
		}), cand("a", func(c *Candidate) { c.Busy = true }), []Check{CheckBusy, CheckRegion, CheckPrice, CheckMemory, CheckReputation}, "busy"},
	}
	for _, tt := range tests {
		p, err := Place(tt.spec, []Candidate{tt.cand}, 1)
		e := p.Candidates[0]
		var got []Check
		for _, r := range e.Rejections {
			got = append(got, r.Check)
		}
		if !slices.Equal(got, tt.checks) || e.Feasible != (tt.checks == nil) || (err == nil) != (tt.checks == nil) {
			t.Errorf("%s: checks %v (feasible %v, err %v), want %v", tt.name, got, e.Feasible, err, tt.checks)
			continue
		}
		if tt.checks != nil {
			if !strings.Contains(e.Rejections[0].Reason, tt.reason) {
				t.Errorf("%s: reason %q, want it to contain %q", tt.name, e.Rejections[0].Reason, tt.reason)
			}
			if !errors.Is(err, ErrNoCapacity) || gridmind.KindOf(err) != gridmind.KindUnavailable || !strings.Contains(err.Error(), tt.checks[0].String()) {
				t.Errorf("%s: error %v should be ErrNoCapacity, unavailable, and count %s", tt.name, err, tt.checks[0])
			}
			// The fast path agrees on the first failed check.
			s, _ := NewScheduler([]Candidate{tt.cand}, Options{})
			r := s.compile(&tt.spec)
			if first := s.check(&s.nodes[0], &r); first != tt.checks[0] {
				t.Errorf("%s: fast path says %v, explain path %v", tt.name, first, tt.checks[0])
			}
		}
	}
}

func TestRanking(t *testing.T) {
	tests := []struct {
		name  string
		spec  gridmind.JobSpec
		cands []Candidate
		want  []string // chosen, best first
	}{
		{"cheapest wins", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.Offer.PricePerUnit = 300 }),
			cand("b", func(c *Candidate) { c.Offer.PricePerUnit = 100 }),
			cand("c", func(c *Candidate) { c.Offer.PricePerUnit = 200 }),
		}, []string{"b"}},
		{"two workers, best two in order", job(2), []Candidate{
			cand("a", func(c *Candidate) { c.Offer.PricePerUnit = 300 }),
			cand("b", func(c *Candidate) { c.Offer.PricePerUnit = 100 }),
			cand("c", func(c *Candidate) { c.Offer.PricePerUnit = 200 }),
		}, []string{"b", "c"}},
		{"reputation breaks an equal price", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.Reputation = 500_000 }),
			cand("b", func(c *Candidate) { c.Reputation = 900_000 }),
		}, []string{"b"}},
		{"faster wins at equal price and reputation", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.Offer.ThroughputMFLOPS = 500_000 }),
			cand("b"),
		}, []string{"b"}},
		{"closer wins all else equal", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.LatencyMs = 200 }),
			cand("b", func(c *Candidate) { c.LatencyMs = 20 }),
		}, []string{"b"}},
		{"an unknown latency ranks below a known good one", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.LatencyMs = 0 }),
			cand("b", func(c *Candidate) { c.LatencyMs = 20 }),
		}, []string{"b"}},
		{"a much cheaper but unreliable node loses", job(1), []Candidate{
			cand("a", func(c *Candidate) { c.Offer.PricePerUnit, c.Reputation = 90, 0 }),
			cand("b", func(c *Candidate) { c.Offer.PricePerUnit, c.Reputation = 100, 1_000_000 }),
		}, []string{"b"}},
		{"green preference picks the sunny node over the cheap one", job(1, func(s *gridmind.JobSpec) { s.GreenPreference = 80 }), []Candidate{
			cand("cheap", func(c *Candidate) { c.Offer.PricePerUnit = 50 }),
			cand("sunny", func(c *Candidate) {
				c.Energy.SurplusWatts, c.Energy.ForecastSurplusWh, c.Energy.ForecastHours = 1000, 1200, 4
			}),
		}, []string{"sunny"}},
		{"without it the cheap one", job(1), []Candidate{
			cand("cheap", func(c *Candidate) { c.Offer.PricePerUnit = 50 }),
			cand("sunny", func(c *Candidate) {
				c.Energy.SurplusWatts, c.Energy.ForecastSurplusWh, c.Energy.ForecastHours = 1000, 1200, 4
			}),
		}, []string{"cheap"}},
		{"a clean grid beats a dirty one when green", job(1, func(s *gridmind.JobSpec) { s.GreenPreference = 100 }), []Candidate{
			cand("coal", func(c *Candidate) { c.Energy.CarbonGPerKWh = 650 }),
			cand("hydro", func(c *Candidate) { c.Energy.CarbonGPerKWh = 50 }),
		}, []string{"hydro"}},
		{"infeasible best is skipped", job(1, func(s *gridmind.JobSpec) { s.MaxPricePerUnit = 250 }), []Candidate{
			cand("a", func(c *Candidate) { c.Offer.PricePerUnit = 300; c.Reputation = 1_000_000 }),
			cand("b", func(c *Candidate) { c.Offer.PricePerUnit = 200 }),
		}, []string{"b"}},
	}
	for _, tt := range tests {
		p, err := Place(tt.spec, tt.cands, 42)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []string
		for _, id := range p.Chosen {
			got = append(got, string(id))
		}
		if !slices.Equal(got, tt.want) {
			var buf bytes.Buffer
			_ = p.WriteText(&buf)
			t.Errorf("%s: chose %v, want %v\n%s", tt.name, got, tt.want, buf.String())
		}
	}
}

func TestTiesAndDeterminism(t *testing.T) {
	// Eight identical nodes: every one ties. The winner depends only on
	// the seed, never on the order the candidates arrive in.
	var cands []Candidate
	for i := range 8 {
		cands = append(cands, cand(fmt.Sprintf("node-%d", i)))
	}
	winners := map[gridmind.NodeID]bool{}
	for seed := int64(0); seed < 40; seed++ {
		p1, err := Place(job(3), cands, seed)
		if err != nil {
			t.Fatal(err)
		}
		rev := slices.Clone(cands)
		slices.Reverse(rev)
		p2, _ := Place(job(3), rev, seed)
		p3, _ := Place(job(3), cands, seed)
		if !slices.Equal(p1.Chosen, p2.Chosen) || !slices.Equal(p1.Chosen, p3.Chosen) {
			t.Fatalf("seed %d: %v, reversed input %v, again %v", seed, p1.Chosen, p2.Chosen, p3.Chosen)
		}
		winners[p1.Chosen[0]] = true
		for i, e := range p1.Candidates {
			if e.Rank != i+1 || e.Chosen != (i < 3) {
				t.Fatalf("seed %d: explanation %d has rank %d chosen %v", seed, i, e.Rank, e.Chosen)
			}
		}
	}
	if len(winners) < 4 {
		t.Errorf("ties always went to the same few nodes: %v", winners)
	}
}

func TestLimit(t *testing.T) {
	var cands []Candidate
	for i := range 10 {
		cands = append(cands, cand(fmt.Sprintf("n%d", i), func(c *Candidate) { c.Offer.PricePerUnit = gridmind.Amount(100 + i) }))
	}
	s, err := NewScheduler(cands, Options{Seed: 3, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Place(job(1))
	if err != nil {
		t.Fatal(err)
	}
	notExamined := 0
	for _, e := range p.Candidates {
		if !e.Examined {
			notExamined++
		}
	}
	if p.Examined != 2 || notExamined != 8 || p.Feasible != 2 {
		t.Errorf("limit 2: examined %d, not examined %d, feasible %d", p.Examined, notExamined, p.Feasible)
	}
	// A job needing more workers than the limit examines as many as it needs.
	p, err = s.Place(job(4))
	if err != nil || p.Examined != 4 || len(p.Chosen) != 4 {
		t.Errorf("4 workers with limit 2: examined %d, chose %v, %v", p.Examined, p.Chosen, err)
	}
	// Successive placements walk on through the source: over enough
	// placements every node is examined and every node is chosen once.
	chosen := map[int]int{}
	for range 10 {
		c, examined, ok := s.PlaceTask(&gridmind.JobSpec{Workers: 1})
		if !ok || examined != 2 {
			t.Fatalf("PlaceTask: %d %d %v", c, examined, ok)
		}
		chosen[c]++
	}
	if len(chosen) < 5 {
		t.Errorf("limited placements did not spread: %v", chosen)
	}
}

func TestPlaceTaskTracksMemory(t *testing.T) {
	cands := []Candidate{cand("only", func(c *Candidate) { c.Offer.Hardware.MemoryBytes = 10 << 30 })}
	s, err := NewScheduler(cands, Options{TrackMemory: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	task := gridmind.JobSpec{Workers: 1, MinMemoryBytes: 4 << 30}
	for i, want := range []bool{true, true, false} {
		if _, _, ok := s.PlaceTask(&task); ok != want {
			t.Fatalf("task %d placed %v, want %v", i, ok, want)
		}
	}
	if s.FreeMemory(0) != 2<<30 {
		t.Errorf("free memory %d, want 2 GiB", s.FreeMemory(0))
	}
	p, err := s.Place(job(1, func(j *gridmind.JobSpec) { j.MinMemoryBytes = 4 << 30 }))
	if err == nil || !strings.Contains(p.Candidates[0].Rejections[0].Reason, "free memory 2.0 GiB") {
		t.Errorf("full node: %v %+v", err, p.Candidates)
	}
}

func TestBadInputNeverPanics(t *testing.T) {
	weird := []Candidate{
		cand("nan", func(c *Candidate) {
			c.LatencyMs, c.Energy = math.NaN(), Energy{SurplusWatts: math.Inf(1), ForecastSurplusWh: math.NaN(), ForecastHours: -1, CarbonGPerKWh: math.Inf(-1), BusyWatts: math.NaN()}
		}),
		cand("dup"), cand("dup", func(c *Candidate) { c.Offer.PricePerUnit = 1 }),
		cand("zero", func(c *Candidate) { c.Offer = gridmind.Offer{Node: "zero"}; c.Reputation = math.MaxUint64 }),
		{},
	}
	p, err := Place(job(2, func(s *gridmind.JobSpec) { s.GreenPreference = 500; s.MinReputation = -3 }), weird, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Candidates {
		sc := e.Scores
		for _, v := range []float64{sc.Price, sc.Reputation, sc.Throughput, sc.Latency, sc.Coverage, sc.Green, sc.Base, sc.Final} {
			if math.IsNaN(v) || v < 0 || v > 1 {
				t.Errorf("%s: score out of range %+v", e.Node, sc)
			}
		}
		if e.Node == "dup" && !e.Feasible && (len(e.Rejections) == 0 || e.Rejections[0].Check != CheckDuplicate) {
			t.Errorf("duplicate rejected without saying so: %+v", e)
		}
	}
	dups := 0
	for _, e := range p.Candidates {
		if e.Node == "dup" && e.Feasible {
			dups++
		}
	}
	if dups != 1 {
		t.Errorf("%d feasible listings of a duplicated node, want 1", dups)
	}
	if _, err := Place(job(1), nil, 1); !errors.Is(err, ErrNoCapacity) || !strings.Contains(err.Error(), "there are no candidates") {
		t.Errorf("no candidates: %v", err)
	}
	// Too few candidates, none rejected: the error says the network is too
	// small, not that candidates failed a check.
	if _, err := Place(job(3), []Candidate{cand("a"), cand("b")}, 1); !errors.Is(err, ErrNoCapacity) || !strings.Contains(err.Error(), "only 2 candidates, none rejected") {
		t.Errorf("too few candidates: %v", err)
	}
	if _, err := Place(job(0), weird, 1); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("zero workers: %v", err)
	}
	if _, err := NewScheduler(weird, Options{Weights: Weights{Price: -1}}); err == nil {
		t.Error("negative weight accepted")
	}
}

func TestWriteText(t *testing.T) {
	cands := []Candidate{
		cand("chosen-node", func(c *Candidate) { c.Offer.PricePerUnit = 50 }),
		cand("runner-up"),
		cand("too-dear", func(c *Candidate) { c.Offer.PricePerUnit = 900 }),
	}
	p, err := Place(job(1, func(s *gridmind.JobSpec) { s.MaxPricePerUnit = 500; s.Name = "demo" }), cands, 1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`job "demo": 1 of 1 workers placed; 3 candidates, 3 examined, 2 feasible`, "CHOSEN", "feasible, not chosen", "rejected: price: price 900 µGRID/GFLOP is above"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	e, ok := p.Explain("too-dear")
	if !ok || e.Feasible || e.Rejections[0].Check != CheckPrice {
		t.Errorf("Explain(too-dear) = %+v, %v", e, ok)
	}
}
