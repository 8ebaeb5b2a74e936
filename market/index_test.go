package market

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// randomFleet draws n candidates from few distinct values, so that many
// tie in score and the seeded tie-break matters.
func randomFleet(rng *testRand, n int) []Candidate {
	regions := []string{"eu-west", "us-east", "ap-south"}
	out := make([]Candidate, n)
	for i := range out {
		out[i] = randomCandidate(rng, gridmind.NodeID(fmt.Sprintf("node-%04d", rng.intn(100_000))), regions)
	}
	// Ids drawn at random may repeat; keep the fleet duplicate-free, as
	// the ledger lists each provider once.
	seen := map[gridmind.NodeID]bool{}
	out = slices.DeleteFunc(out, func(c Candidate) bool {
		dup := seen[c.Offer.Node]
		seen[c.Offer.Node] = true
		return dup
	})
	return out
}

func randomCandidate(rng *testRand, id gridmind.NodeID, regions []string) Candidate {
	pick := func(vs ...float64) float64 { return vs[rng.intn(len(vs))] }
	return Candidate{
		Offer: gridmind.Offer{
			Node:             id,
			Hardware:         gridmind.Hardware{CPUCores: 8, MemoryBytes: uint64(pick(8, 16, 64)) << 30},
			ThroughputMFLOPS: uint64(pick(500_000, 1_000_000, 2_000_000)),
			PricePerUnit:     gridmind.Amount(pick(50, 100, 200, 400)),
			Region:           regions[rng.intn(len(regions))],
		},
		Stake:      gridmind.Amount(pick(0, 50, 100, 1000)) * gridmind.UnitsPerGRID,
		Reputation: uint64(pick(0, 300_000, 800_000, 1_000_000)),
		LatencyMs:  pick(0, 5, 20, 50, 120),
		Energy: Energy{
			SurplusWatts: pick(0, 0, 150, 400), ForecastSurplusWh: pick(0, 500, 2000), ForecastHours: 4,
			CarbonGPerKWh: pick(0, 50, 300, 650), BusyWatts: pick(0, 300),
		},
		Busy: rng.intn(10) == 0,
	}
}

func randomSpec(rng *testRand, regions []string) gridmind.JobSpec {
	s := job(1+rng.intn(4), func(s *gridmind.JobSpec) {
		s.Name = fmt.Sprintf("job-%d", rng.intn(1000))
		s.GreenPreference = []int{0, 0, 30, 50, 99, 100}[rng.intn(6)]
		if rng.intn(3) == 0 {
			s.MaxPricePerUnit = gridmind.Amount(100 + 100*rng.intn(3))
		}
		if rng.intn(3) == 0 {
			s.MinMemoryBytes = 16 << 30
		}
		if rng.intn(4) == 0 {
			s.MinThroughputMFLOPS = 1_000_000
		}
		if rng.intn(4) == 0 {
			s.MinReputation = 50
		}
		if rng.intn(4) == 0 {
			s.MinStake = 60 * gridmind.UnitsPerGRID
		}
		switch rng.intn(5) {
		case 0:
			s.RegionsAllowed = []string{regions[rng.intn(len(regions))], "mars"}
		case 1:
			s.RegionsExcluded = []string{regions[rng.intn(len(regions))]}
		}
	})
	return s
}

// samePlacement fails unless the index's placement is Place's: the same
// error, the same chosen nodes, the same text and JSON.
func samePlacement(t *testing.T, what string, x *Index, cands []Candidate, spec gridmind.JobSpec, seed int64) {
	t.Helper()
	want, wantErr := Place(spec, cands, seed)
	got, gotErr := x.Place(spec, seed)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%s: error %v, want %v", what, gotErr, wantErr)
	}
	if !slices.Equal(got.Chosen, want.Chosen) {
		t.Fatalf("%s: chose %v, want %v", what, got.Chosen, want.Chosen)
	}
	var gotText, wantText bytes.Buffer
	if err := got.WriteText(&gotText); err != nil {
		t.Fatal(err)
	}
	_ = want.WriteText(&wantText)
	if gotText.String() != wantText.String() {
		t.Fatalf("%s: explanation differs\ngot:\n%s\nwant:\n%s", what, gotText.String(), wantText.String())
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%s: JSON differs\ngot  %s\nwant %s", what, gotJSON, wantJSON)
	}
}

// TestIndexMatchesPlace is the contract of the production path: on random
// fleets (many ties) and jobs, an Index kept across changes — nodes
// updated, going busy and free, moving the set's extremes, leaving and
// joining — places and explains exactly as Place does from scratch.
func TestIndexMatchesPlace(t *testing.T) {
	regions := []string{"eu-west", "us-east", "ap-south"}
	for fleet := range 12 {
		rng := &testRand{splitmix(uint64(fleet) + 100)}
		cands := randomFleet(rng, []int{1, 2, 5, 17, 40, 150, 400}[fleet%7])
		var x Index
		if fleet%3 == 0 {
			x.cands.every = 1 + fleet%4 // new checkpoints often, not only replayed logs
		}
		if fleet%2 == 0 {
			x.Sync(cands)
		} else {
			for _, i := range rng.perm(len(cands)) {
				x.Update(cands[i])
			}
		}
		joined := 0
		for step := range 25 {
			spec := randomSpec(rng, regions)
			seed := int64(rng.intn(3))
			samePlacement(t, fmt.Sprintf("fleet %d step %d (%d nodes, %+v, seed %d)", fleet, step, len(cands), spec, seed), &x, cands, spec, seed)
			// Change the fleet as heartbeats and the ledger would.
			for range 1 + rng.intn(4) {
				if len(cands) == 0 {
					break
				}
				i := rng.intn(len(cands))
				switch rng.intn(6) {
				case 0: // a heartbeat: busy or free, new latency and energy
					cands[i].Busy = !cands[i].Busy
					cands[i].LatencyMs = float64(1 + rng.intn(200))
					cands[i].Energy.SurplusWatts = float64(rng.intn(500))
					x.Update(cands[i])
				case 1: // a new cheapest or fastest node moves an extreme
					cands[i].Offer.PricePerUnit = gridmind.Amount(1 + rng.intn(600))
					cands[i].Offer.ThroughputMFLOPS = uint64(rng.intn(5_000_000))
					x.Update(cands[i])
				case 2: // leaves
					x.Remove(cands[i].Offer.Node)
					cands = slices.Delete(cands, i, i+1)
				case 3: // joins
					joined++
					c := randomCandidate(rng, gridmind.NodeID(fmt.Sprintf("new-%d", joined)), regions)
					cands = append(cands, c)
					x.Update(c)
				case 4: // the requester rebuilds its whole list
					x.Sync(cands)
				case 5: // unchanged
					x.Update(cands[i])
				}
			}
		}
	}
}

// TestIndexIdenticalNodes: eight identical nodes tie on every score, so
// the choice rests entirely on the seeded source, as in Place.
func TestIndexIdenticalNodes(t *testing.T) {
	var cands []Candidate
	for i := range 8 {
		cands = append(cands, cand(fmt.Sprintf("node-%d", i)))
	}
	x, err := NewIndex(Weights{})
	if err != nil {
		t.Fatal(err)
	}
	x.Sync(cands)
	for seed := range int64(20) {
		samePlacement(t, fmt.Sprintf("seed %d", seed), x, cands, job(3), seed)
	}
}

// TestIndexExplainsTheMomentOfPlacement: the explanation is computed
// later, but from the candidates as they were when the job was placed.
func TestIndexExplainsTheMomentOfPlacement(t *testing.T) {
	cands := []Candidate{cand("a", func(c *Candidate) { c.Offer.PricePerUnit = 50 }), cand("b")}
	var x Index
	x.Sync(cands)
	want, _ := Place(job(1), cands, 1)
	got, err := x.Place(job(1), 1)
	if err != nil || got.Candidates != nil {
		t.Fatalf("placement %+v, %v: want it unexplained until asked", got, err)
	}
	x.Update(cand("a", func(c *Candidate) { c.Busy = true }))
	x.Remove("b")
	x.Update(cand("c"))
	var g, w bytes.Buffer
	_ = got.WriteText(&g)
	_ = want.WriteText(&w)
	if g.String() != w.String() {
		t.Errorf("explained after the fleet changed:\n%s\nwant:\n%s", g.String(), w.String())
	}
	if p, err := x.Place(job(1), 1); err != nil || p.Chosen[0] != "c" {
		t.Errorf("after the changes: %v, %v; want c", p, err)
	}
}

func TestIndexBadInput(t *testing.T) {
	var x Index
	if _, err := x.Place(job(0), 1); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("zero workers: %v", err)
	}
	if _, err := x.Place(job(1), 1); !errors.Is(err, ErrNoCapacity) || !strings.Contains(err.Error(), "there are no candidates") {
		t.Errorf("empty index: %v", err)
	}
	if _, err := NewIndex(Weights{Price: -1}); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("negative weight: %v", err)
	}
	x.Remove("absent")
	if x.Len() != 0 {
		t.Errorf("len %d", x.Len())
	}
	// Numbers from the network that must not poison a ranking, as Place
	// is tested with them.
	weird := []Candidate{
		cand("nan", func(c *Candidate) {
			c.LatencyMs, c.Energy = math.NaN(), Energy{SurplusWatts: math.Inf(1), ForecastSurplusWh: math.NaN(), ForecastHours: -1, CarbonGPerKWh: math.Inf(-1), BusyWatts: math.NaN()}
		}),
		cand("zero", func(c *Candidate) { c.Offer = gridmind.Offer{Node: "zero"}; c.Reputation = math.MaxUint64 }),
		{},
		cand("plain"),
	}
	x.Sync(weird)
	x.Update(weird[0]) // NaN is never equal to itself: an update, not a no-op
	spec := job(2, func(s *gridmind.JobSpec) { s.GreenPreference = 500; s.MinReputation = -3 })
	samePlacement(t, "weird numbers", &x, weird, spec, 9)
}

// testRand draws random fleets and jobs from a seed (SplitMix64, as the
// scheduler's source).
type testRand struct{ splitmix }

func (r *testRand) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *testRand) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
