package sim

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/market"
)

// small is a world that runs in well under a second per policy.
func small(seed int64) Config {
	return Config{Nodes: 300, Days: 1, Seed: seed}
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestDeterministic(t *testing.T) {
	a, err := json.Marshal(run(t, small(3)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(run(t, small(3)))
	if string(a) != string(b) {
		t.Error("two runs with the same seed differ")
	}
	c, _ := json.Marshal(run(t, small(4)))
	if string(a) == string(c) {
		t.Error("another seed gives the same run")
	}
}

// TestSunFollowsTheSun checks the policies against each other on one
// June world, and every policy against the physical ceiling.
func TestSunFollowsTheSun(t *testing.T) {
	rep := run(t, small(1))
	sun, _ := rep.Result(PolicySun)
	price, _ := rep.Result(PolicyPrice)
	for _, p := range rep.Results {
		if p.JobsFinished != p.JobsArrived || p.JobsArrived == 0 {
			t.Errorf("%s: %d of %d jobs finished", p.Policy, p.JobsFinished, p.JobsArrived)
		}
		if p.SurplusShare > p.CeilingShare+1e-9 {
			t.Errorf("%s: surplus share %.3f above the ceiling %.3f", p.Policy, p.SurplusShare, p.CeilingShare)
		}
		if p.DisplacedCO2Kg < p.CO2Kg {
			t.Errorf("%s: displacement CO2 %.1f below attributional %.1f", p.Policy, p.DisplacedCO2Kg, p.CO2Kg)
		}
		if len(p.Late) != min(p.DeadlinesMissed, maxLate) {
			t.Errorf("%s: %d late jobs listed for %d missed deadlines", p.Policy, len(p.Late), p.DeadlinesMissed)
		}
		for _, l := range p.Late {
			if l.FinishHour <= l.DeadlineHour || l.StartHour < l.ArrivalHour {
				t.Errorf("%s: late job %+v", p.Policy, l)
			}
		}
	}
	if sun.SurplusShare < price.SurplusShare+0.2 {
		t.Errorf("sun surplus share %.3f, price-only %.3f: want at least 20 points more", sun.SurplusShare, price.SurplusShare)
	}
	if sun.CO2Kg > 0.5*price.CO2Kg {
		t.Errorf("sun attributional CO2 %.1f kg, price-only %.1f", sun.CO2Kg, price.CO2Kg)
	}
	if sun.Grown == 0 {
		t.Error("no elastic growth in a sunny day")
	}
	md := rep.Markdown()
	for _, want := range []string{"| sun |", "| price-only |", "attributional", "Goals (issue 16)"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if svg := rep.SVG(); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "polyline") {
		t.Error("SVG has no plot")
	}
}

func TestCheatersEndBelowHonestProviders(t *testing.T) {
	cfg := small(2)
	cfg.CheatShare = 0.2
	cfg.Policies = []Policy{PolicyPrice}
	rep := run(t, cfg)
	res := rep.Results[0]
	if res.CheatsCaught == 0 {
		t.Fatal("no cheater caught")
	}
	last := res.Trust[len(res.Trust)-1]
	if last.CheaterReputation >= last.HonestReputation {
		t.Errorf("cheaters' reputation %.3f, honest %.3f", last.CheaterReputation, last.HonestReputation)
	}
}

func TestWarmupEarnsTheBattery(t *testing.T) {
	cfg := Config{Nodes: 64, Days: 1, Seed: 1, NoChurn: true}.withDefaults()
	w, err := buildWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarmupDays = -1
	cold, err := buildWorld(cfg.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var warmWh, coldWh float64
	for i := range w.sites {
		warmWh += w.sites[i].BatteryWh()
		coldWh += cold.sites[i].BatteryWh()
	}
	if coldWh != 0 || warmWh == 0 {
		t.Errorf("battery charge at the start: %.0f Wh after warm-up, %.0f without (want > 0 and 0)", warmWh, coldWh)
	}
}

func TestRoundModel(t *testing.T) {
	nodes := []simNode{
		{id: "a", tflops: 1, linkMbps: 100, rttMs: 50},
		{id: "b", tflops: 0.8, linkMbps: 50, rttMs: 100},
		{id: "c", tflops: 0.2, linkMbps: 1000, rttMs: 10}, // 5x slower: misses the ready deadline
		{id: "d", tflops: 1, linkMbps: 100, rttMs: 50, cheater: true},
	}
	job := simJobDef{roundTF: 600, params: 1e8}
	m := modelRound(&job, []int32{0, 1, 2, 3}, nodes)
	if m.inTime[2] || !m.inTime[0] || !m.inTime[1] || !m.inTime[3] {
		t.Errorf("in time %v, want the 5x slower worker out", m.inTime)
	}
	if m.useful != 2 {
		t.Errorf("useful %d, want 2 (the cheater's work does not count)", m.useful)
	}
	// Compute: the fastest takes 600 s, the ready wait is 600 s, so the
	// leader announces at its deadline (1200 s) because c is late; the
	// all-reduce of 3 in-time members moves 2·2/3·1e8·(1+4/256) bytes over
	// the slowest in-time link (50 Mbit/s), plus 4 round trips of 100 ms.
	want := 1200 + 2*2.0/3*1e8*(1+4.0/256)*8/50e6 + 0.4
	if d := m.seconds - want; d > 1e-6 || d < -1e-6 {
		t.Errorf("round %.3f s, want %.3f", m.seconds, want)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Nodes = -1 }, "nodes"},
		{func(c *Config) { c.Days = 61 }, "days"},
		{func(c *Config) { c.Utilisation = 1.5 }, "utilisation"},
		{func(c *Config) { c.Step = 7 * time.Minute }, "step"},
		{func(c *Config) { c.Policies = []Policy{"greedy"} }, `policy "greedy"`},
		{func(c *Config) { c.Policies = []Policy{PolicySun, PolicySun} }, "twice"},
		{func(c *Config) { c.Sun = market.SunPolicy{MinCoverage: 2} }, "min_coverage"},
		{func(c *Config) { c.CheatShare = 0.9 }, "cheat share"},
	}
	for _, tt := range tests {
		cfg := small(1)
		tt.edit(&cfg)
		err := cfg.Validate()
		if err == nil || gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want an invalid-input error naming %q", err, tt.want)
		}
	}
}

// TestLateJobDoesNotBlockOthers: a gated walk that fails because the nodes
// are too slow for one job's deadline must not stop the next job of the
// same run length from being placed in the same step.
func TestLateJobDoesNotBlockOthers(t *testing.T) {
	cfg := Config{Nodes: 200, Days: 1, Seed: 1, NoChurn: true}.withDefaults()
	w, err := buildWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRunner(context.Background(), w, PolicySun)
	if err != nil {
		t.Fatal(err)
	}
	noon := stepsOf(12*time.Hour, cfg.Step) // 21 June, midday in Europe
	r.churn(noon)
	late, onTime := w.jobs[0], w.jobs[0]
	late.arrival, late.deadline = noon, noon+1 // no node is fast enough
	onTime.arrival, onTime.deadline = noon, noon+100*late.expectSteps
	r.jobs = []runJob{{def: &late}, {def: &onTime}}
	if err := r.buildScheduler(noon); err != nil {
		t.Fatal(err)
	}
	if r.placeOne(0, noon, true) {
		t.Fatal("a job due in one step was placed")
	}
	if !r.placeOne(1, noon, true) {
		t.Error("the late job's failed walk kept a job with time to spare from a sunny node at noon")
	}
}

func TestFitsRound(t *testing.T) {
	job := &simJobDef{roundTF: 600} // 600 s of compute at 1 TFLOP/s
	tests := []struct {
		lo, hi, tflops float64
		want           bool
	}{
		{math.Inf(1), 0, 5, true}, // no members yet: anyone
		{1, 1, 1, true},
		{1, 1, 0.5, true},      // twice slower: ready wait of 600 s makes 1200 s
		{1, 1, 0.45, false},    // misses the ready deadline
		{0.5, 0.5, 1.1, false}, // pushes the half-speed members out
		{0.5, 1, 0.8, true},
	}
	for _, tt := range tests {
		if got := fitsRound(job, tt.lo, tt.hi, tt.tflops); got != tt.want {
			t.Errorf("fitsRound(members %.2f..%.2f, node %.2f) = %v, want %v", tt.lo, tt.hi, tt.tflops, got, tt.want)
		}
		// fitsRound agrees with the round model: every member in time.
		if tt.lo > tt.hi {
			continue
		}
		nodes := []simNode{{id: "lo", tflops: tt.lo, linkMbps: 100}, {id: "hi", tflops: tt.hi, linkMbps: 100}, {id: "new", tflops: tt.tflops, linkMbps: 100}}
		m := modelRound(job, []int32{0, 1, 2}, nodes)
		all := m.inTime[0] && m.inTime[1] && m.inTime[2]
		if all != tt.want {
			t.Errorf("members %.2f..%.2f + %.2f: round model in time %v, fitsRound %v", tt.lo, tt.hi, tt.tflops, m.inTime, tt.want)
		}
	}
}

func TestTick(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.1346: "0.135", 41.93: "41.9", 7270.4: "7270", 29100: "29.1k", 2.5e6: "2.5M"} {
		if got := tick(v); got != want {
			t.Errorf("tick(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestCaughtCheatersGetNoMoreWork: the jobs' reputation floor keeps a
// provider caught cheating from being placed job after job.
func TestCaughtCheatersGetNoMoreWork(t *testing.T) {
	cfg := small(2)
	cfg.CheatShare = 0.2
	cfg.Policies = []Policy{PolicySun, PolicyPrice}
	for _, res := range run(t, cfg).Results {
		if res.CheatersEverCaught == 0 {
			t.Fatalf("%s: no cheater caught", res.Policy)
		}
		if per := float64(res.CheatsCaught) / float64(res.CheatersEverCaught); per > 2 {
			t.Errorf("%s: %d cheats caught from %d cheaters (%.1f each): caught cheaters kept getting work", res.Policy, res.CheatsCaught, res.CheatersEverCaught, per)
		}
	}
}

// TestLedgerBooks: the run's money went through the production ledger.
// At the end its supply invariant holds, every job has left escrow, the
// audits' disputes were upheld, and in every device class the cheaters
// end with less stake and balance together than the honest providers.
func TestLedgerBooks(t *testing.T) {
	cfg := small(2)
	cfg.CheatShare = 0.2
	cfg.Policies = []Policy{PolicySun, PolicyPrice}
	for _, res := range run(t, cfg).Results {
		l := res.Ledger
		if l.Invariant != "ok" {
			t.Errorf("%s: supply invariant: %s", res.Policy, l.Invariant)
		}
		sup := l.Supply
		held := sup.Balances + sup.Stakes + sup.Unbonding + sup.Escrow + sup.SlashPool + sup.Burned
		if held != sup.GenesisSupply+sup.Minted {
			t.Errorf("%s: %d held, genesis %d + minted %d", res.Policy, held, sup.GenesisSupply, sup.Minted)
		}
		if sup.Escrow != 0 {
			t.Errorf("%s: %d µGRID still in escrow after every job ended", res.Policy, sup.Escrow)
		}
		if l.PaidGRID <= 0 || l.Receipts == 0 || l.Leases == 0 {
			t.Errorf("%s: ledger paid %.1f GRID over %d receipts and %d leases", res.Policy, l.PaidGRID, l.Receipts, l.Leases)
		}
		if l.Disputes == 0 || l.SlashedGRID <= 0 {
			t.Errorf("%s: %d disputes slashed %.1f GRID (%d cheats caught)", res.Policy, l.Disputes, l.SlashedGRID, res.CheatsCaught)
		}
		var paid float64
		for _, h := range res.Hourly {
			paid += h.PaidGRID
		}
		if paid <= 0 || paid > l.PaidGRID+1e-6 {
			t.Errorf("%s: hourly payments add up to %.3f GRID, the ledger paid %.3f", res.Policy, paid, l.PaidGRID)
		}
		compared := 0
		for _, h := range l.Hardware {
			if h.Honest == 0 || h.Cheaters == 0 {
				continue
			}
			compared++
			if honest, cheater := h.HonestStake+h.HonestBalance, h.CheaterStake+h.CheaterBalance; cheater >= honest {
				t.Errorf("%s, %s devices: cheaters end with %.1f GRID staked and held, honest providers %.1f", res.Policy, h.Device, cheater, honest)
			}
		}
		if compared == 0 {
			t.Errorf("%s: no device class has both honest and cheating providers", res.Policy)
		}
	}
}

// TestRunStopsWhenCancelled: an interrupted run ends with the context's
// error instead of running to the end.
func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunContext(ctx, Config{Nodes: 50, Days: 1, Seed: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("RunContext with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestRunCeilingBoundsSun checks the own-runs ceiling against what sun
// reached and what re-placing its runs reaches, in June and on a dark
// November day: both must lie under it.
func TestRunCeilingBoundsSun(t *testing.T) {
	for _, start := range []time.Time{time.Date(2023, 6, 21, 0, 0, 0, 0, time.UTC), time.Date(2023, 11, 21, 0, 0, 0, 0, time.UTC)} {
		cfg := small(2)
		cfg.Start, cfg.Utilisation, cfg.Policies = start, 0.66, []Policy{PolicySun}
		sun, _ := run(t, cfg).Result(PolicySun)
		if sun.RunCeilingShare <= 0 || sun.RunReplacedShare <= 0 || sun.RunReplacedFastShare <= 0 {
			t.Fatalf("%s: own-runs ceiling %v, re-placed %v / %v: not computed", start.Format("01-02"), sun.RunCeilingShare, sun.RunReplacedShare, sun.RunReplacedFastShare)
		}
		ceiling := sun.RunCeilingShare + 1e-9
		if sun.SurplusShare > ceiling || sun.RunReplacedShare > ceiling || sun.RunReplacedFastShare > ceiling || ceiling > 1+2e-9 {
			t.Errorf("%s: sun %.4f, re-placed %.4f / %.4f, own-runs ceiling %.4f: the ceiling must bound all three and stay ≤ 1",
				start.Format("01-02"), sun.SurplusShare, sun.RunReplacedShare, sun.RunReplacedFastShare, sun.RunCeilingShare)
		}
	}
}

// TestNetSurplusShareBalances checks the counterfactual behind the net
// surplus share: each policy's run and the idle world count every
// node-step to the same last step, so their energy balances (the same
// solar and households in both) differ only by the devices' draw, spill,
// round-trip loss and the batteries' change. (A run that stopped with its
// last job and was not carried on to the idle world's end missed 9 MWh.)
func TestNetSurplusShareBalances(t *testing.T) {
	rep := run(t, small(1))
	for _, p := range rep.Results {
		if math.Abs(p.netResidualWh) > 1e-6*p.JobEnergyKWh*1000 {
			t.Errorf("%s: the balances differ by %.1f Wh (job energy %.0f kWh)", p.Policy, p.netResidualWh, p.JobEnergyKWh)
		}
		if p.NetSurplusShare <= 0 || p.NetSurplusShare > 1 {
			t.Errorf("%s: net surplus share %.3f", p.Policy, p.NetSurplusShare)
		}
	}
}
