package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/gridmind/gridmind/energy"
)

// Report is a run's outcome: the world and every policy's result.
type Report struct {
	Nodes       int           `json:"nodes"`
	Joined      int           `json:"joined"` // nodes that joined during the run (as many left)
	Cheaters    int           `json:"cheaters"`
	Days        int           `json:"days"`
	WarmupDays  int           `json:"warmup_days"`
	Start       time.Time     `json:"start"`
	Seed        int64         `json:"seed"`
	Utilisation float64       `json:"target_utilisation"`
	Jobs        int           `json:"jobs"`
	Step        time.Duration `json:"step_ns"`
	Sun         string        `json:"sun_policy"`
	Churn       Churn         `json:"churn"`
	// CeilingRenewableWh is the surplus every online device running flat
	// out would have used (see PolicyResult.CeilingShare).
	CeilingRenewableWh float64        `json:"ceiling_renewable_wh"`
	Results            []PolicyResult `json:"results"`
}

// PolicyResult is what one policy achieved on the world.
type PolicyResult struct {
	Policy          Policy `json:"policy"`
	JobsArrived     int    `json:"jobs_arrived"`
	JobsFinished    int    `json:"jobs_finished"`
	DeadlinesMissed int    `json:"deadlines_missed"` // finished late or not at all
	// Utilisation is the node-steps jobs held over the whole run (their
	// tails past the last arrival included) over the node-steps online
	// while jobs arrive: the load offered, comparable with the target.
	Utilisation  float64 `json:"utilisation"`
	JobEnergyKWh float64 `json:"job_energy_kwh"`
	SurplusShare float64 `json:"surplus_share"` // of job energy, from surplus solar (direct or stored)
	// NetSurplusShare is the surplus share net of what the jobs cost the
	// households: against the same run with no jobs (every device idle
	// when online), the share of the jobs' extra energy that did not come
	// from extra grid import, the households' import included (batteries
	// left emptier at the end count as import to come).
	NetSurplusShare float64 `json:"net_surplus_share"`
	netResidualWh   float64 // the energy balances' disagreement (netSurplusShare)
	// NetCeilingShare bounds NetSurplusShare from above for the policy's
	// own timing: the most of its extra energy, step by step, that any
	// choice of nodes could cover without extra grid import, each node
	// held to what its idle world spilled and stored (netceiling.go).
	NetCeilingShare float64 `json:"net_ceiling_share"`
	// CeilingShare is the most any schedule could reach: the job energy put
	// on the sunniest node-steps of the whole run, deadlines ignored (loose).
	CeilingShare float64 `json:"ceiling_share"`
	// StepCeilingShare is the most a schedule with this policy's timing
	// could reach: each step's job energy on that step's sunniest nodes.
	StepCeilingShare float64 `json:"step_ceiling_share"`
	// RunCeilingShare is the most this policy's own worker runs (their
	// timing, length and energy, each staying on one node) could reach on
	// the best nodes for them, one run per node at a time (runCeiling);
	// 0 when the run was too large to bound.
	RunCeilingShare float64 `json:"run_ceiling_share"`
	// RunReplacedShare is what one assignment of those runs reaches on the
	// energy model (runReplaced): a share they could reach, below the
	// ceiling; 0 where not computed.
	RunReplacedShare float64 `json:"run_replaced_share"`
	// RunReplacedFastShare is the same on nodes at least as fast as each
	// run's own, so no round waits longer.
	RunReplacedFastShare float64 `json:"run_replaced_fast_share"`
	// DisplacementFloorKg is the least displacement CO₂ this policy's job
	// energy could have had at its own timing (each step's energy on that
	// step's node-steps) with at least floorShare of it from surplus, in
	// the same-step ceiling's model (carbonFloor); −1 where no placement
	// reaches floorShare. DisplacementFloorAnyStepKg lets the energy go to
	// any step of the run (deadlines ignored: loose), and CarbonFloorKg is
	// the same-step floor with no surplus asked: what carbon-aware
	// placement alone could reach at this timing.
	DisplacementFloorKg        float64 `json:"displacement_floor_kg"`
	DisplacementFloorAnyStepKg float64 `json:"displacement_floor_any_step_kg"`
	CarbonFloorKg              float64 `json:"carbon_floor_kg"`
	CO2Kg                      float64 `json:"co2_kg"`           // attributional: grid energy × intensity (surplus counts as zero)
	DisplacedCO2Kg             float64 `json:"displaced_co2_kg"` // displacement: all job energy × the hour's intensity
	IdleEnergyKWh              float64 `json:"idle_energy_kwh"`
	HouseholdGridKWh           float64 `json:"household_grid_kwh"` // households' grid draw: a policy that drains batteries raises it
	MeanCompletionHours        float64 `json:"mean_completion_h"`  // arrival to finish
	P95CompletionHours         float64 `json:"p95_completion_h"`
	MeanWaitHours              float64 `json:"mean_wait_h"`       // arrival to start
	MeanPeakWorkers            float64 `json:"mean_peak_workers"` // most workers a job had at once
	Shed                       int     `json:"shed"`              // workers released into the dark (elastic)
	Grown                      int     `json:"grown"`             // workers added where the sun is (elastic)
	CrashesUnderLease          int     `json:"crashes_under_lease"`
	CheatsCaught               int     `json:"cheats_caught"`
	CheatersEverCaught         int     `json:"cheaters_ever_caught"`
	LeasesRefused              int     `json:"leases_refused"` // placements the ledger would not lease
	StepsRun                   int     `json:"steps_run"`
	// Late are the first maxLate jobs that missed their deadline, so a
	// miss can be read (did it wait for the sun, lose workers, meet
	// cheaters?).
	Late []LateJob `json:"late,omitempty"`
	// Ledger is the production ledger's account of the run: every payment,
	// balance, stake and slash above comes from it.
	Ledger LedgerResult `json:"ledger"`

	Hourly []Hour       `json:"hourly"`
	Zones  []ZoneResult `json:"zones"`
	// ZoneIDs names the entries of each Hour's Zones.
	ZoneIDs []string     `json:"zone_ids"`
	Trust   []TrustPoint `json:"trust"`

	usage, idle, offline   energy.Usage // job steps, idle online steps, offline steps
	zoneIDs                []string
	zones                  []energy.Usage
	completions, waits     []float64
	stepEnergyWh           []float64
	stepExtraWh            []float64 // device energy beyond idle, per step
	busySteps, onlineSteps int64
}

// maxLate bounds PolicyResult.Late.
const maxLate = 20

// LateJob is a job that finished after its deadline; hours count from
// the run's first step.
type LateJob struct {
	Name           string  `json:"name"`
	ArrivalHour    float64 `json:"arrival_h"`
	StartHour      float64 `json:"start_h"`
	DeadlineHour   float64 `json:"deadline_h"`
	FinishHour     float64 `json:"finish_h"`
	ExpectedHours  float64 `json:"expected_h"` // at its maximum workers on median nodes
	MaxWorkers     int     `json:"max_workers"`
	PeakWorkers    int     `json:"peak_workers"`
	CheatersCaught int     `json:"cheaters_caught"`
}

// Hour is one simulated hour of a policy.
type Hour struct {
	EnergyWh          float64 `json:"energy_wh"`
	RenewableWh       float64 `json:"renewable_wh"`
	CO2Grams          float64 `json:"co2_g"`
	DisplacedCO2Grams float64 `json:"displaced_co2_g"`
	onlineSteps       int
	busySteps         int
	Busy              float64 `json:"utilisation"`
	// PaidGRID is what the ledger paid providers in the hour's settlements.
	PaidGRID float64 `json:"paid_grid"`
	// Zones are the hour by grid zone, in the order of PolicyResult.Zones'
	// first appearance (ZoneIDs).
	Zones []ZoneHour `json:"zones"`
}

// ZoneHour is one zone's part of an hour.
type ZoneHour struct {
	EnergyWh    float64 `json:"energy_wh"`
	RenewableWh float64 `json:"renewable_wh"`
	CO2Grams    float64 `json:"co2_g"`
	Busy        float64 `json:"utilisation"`
	onlineSteps int
	busySteps   int
}

// ZoneResult is a policy's job energy in one grid zone.
type ZoneResult struct {
	Zone         string  `json:"zone"`
	EnergyKWh    float64 `json:"energy_kwh"`
	SurplusShare float64 `json:"surplus_share"`
	CO2Kg        float64 `json:"co2_kg"`
}

// TrustPoint samples honest and cheating providers every six hours.
type TrustPoint struct {
	Hour              float64 `json:"hour"`
	HonestReputation  float64 `json:"honest_reputation"`
	CheaterReputation float64 `json:"cheater_reputation"`
	HonestEarnedGRID  float64 `json:"honest_earned_grid"` // mean ledger balance: every node starts at zero after registering
	CheaterEarnedGRID float64 `json:"cheater_earned_grid"`
	HonestStakeGRID   float64 `json:"honest_stake_grid"`
	CheaterStakeGRID  float64 `json:"cheater_stake_grid"`
}

// Result returns the result of policy p.
func (r *Report) Result(p Policy) (PolicyResult, bool) {
	for _, x := range r.Results {
		if x.Policy == p {
			return x, true
		}
	}
	return PolicyResult{}, false
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// less is how much lower ours is than base, as a percentage (negative: higher).
func less(ours, base float64) string {
	if base == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*(1-ours/base))
}

// floorLess is a displacement floor against a baseline's displacement CO₂.
func floorLess(floorKg, baseKg float64) string {
	if floorKg < 0 {
		return "none (no placement reaches the share)"
	}
	return fmt.Sprintf("%.0f kg, %s less than price-only", floorKg, less(floorKg, baseKg))
}

// RunCeiling is p's own-runs ceiling as a percentage, or "—" where it
// was not computed (other policies than sun, or a run too large to bound).
func RunCeiling(p PolicyResult) string { return pctOrDash(p.RunCeilingShare) }

// NetCeiling is p's net ceiling as a percentage, or "—" where the run
// was too large to bound.
func NetCeiling(p PolicyResult) string { return pctOrDash(p.NetCeilingShare) }

// pctOrDash is a bound's share as a percentage, "—" where it was not
// computed (0).
func pctOrDash(share float64) string {
	if share <= 0 {
		return "—"
	}
	return pct(share)
}

// Markdown prints the report: the world, the policies side by side, ours
// against each baseline, and the goals of issue 16 checked.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d nodes (+%d joined, as many left; %d cheating), %d days from %s (UTC) after %d days of warm-up, step %s, seed %d\n\n",
		r.Nodes, r.Joined, r.Cheaters, r.Days, r.Start.Format("2006-01-02"), r.WarmupDays, r.Step, r.Seed)
	fmt.Fprintf(&b, "%d jobs sized for %.0f%% utilisation; churn: %.0f%% of home nodes off at night, %.2f crashes/node/day (mean %s down), %.1f%% of the fleet replaced daily. Sun policy: %s.\n\n",
		r.Jobs, 100*r.Utilisation, 100*r.Churn.NightOffShare, r.Churn.CrashesPerDay, r.Churn.CrashMeanDown, 100*r.Churn.LeavesPerDay, r.Sun)
	b.WriteString("| policy | utilisation | jobs done | deadlines missed | job energy (kWh) | surplus share | net of households' extra import (net ceiling) | ceiling: whole run / same step / own runs | of same-step ceiling | CO₂ attributional (kg) | CO₂ displacement (kg) | household grid (kWh) | mean completion (h) | p95 (h) | mean wait (h) | shed / grown |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Results {
		of := "n/a"
		if p.StepCeilingShare > 0 {
			of = pct(p.SurplusShare / p.StepCeilingShare)
		}
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %d | %.0f | %s | %s | %s / %s / %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %d / %d |\n",
			p.Policy, pct(p.Utilisation), p.JobsFinished, p.JobsArrived, p.DeadlinesMissed+p.JobsArrived-p.JobsFinished, p.JobEnergyKWh,
			pct(p.SurplusShare), pct(p.NetSurplusShare)+" ("+NetCeiling(p)+")", pct(p.CeilingShare), pct(p.StepCeilingShare), RunCeiling(p), of, p.CO2Kg, p.DisplacedCO2Kg, p.HouseholdGridKWh,
			p.MeanCompletionHours, p.P95CompletionHours, p.MeanWaitHours, p.Shed, p.Grown)
	}
	b.WriteString("\nThe ledger (the production state machine: escrow, leases, receipts, settlement, audit disputes):\n\n")
	b.WriteString("| policy | transactions (refused) | leases | receipts | paid to providers (GRID) | refunded (GRID) | slashed (GRID) | fees burned (GRID) | cheats caught / disputes upheld | supply invariant |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, p := range r.Results {
		l := p.Ledger
		refused := 0
		for _, n := range l.Refused {
			refused += n
		}
		fmt.Fprintf(&b, "| %s | %d (%d) | %d | %d | %.0f | %.0f | %.0f | %.1f | %d / %d | %s |\n",
			p.Policy, l.Txs, refused, l.Leases, l.Receipts, l.PaidGRID, l.Refunded, l.SlashedGRID, l.FeesGRID, p.CheatsCaught, l.Disputes, l.Invariant)
	}
	ours, ok := r.Result(PolicySun)
	if !ok {
		return b.String()
	}
	b.WriteString("\nHonest and cheating providers at the end under sun, by device (mean ledger stake + balance, GRID):\n\n| device | honest | cheating |\n|---|---:|---:|\n")
	for _, h := range ours.Ledger.Hardware {
		fmt.Fprintf(&b, "| %s | %.1f (%d nodes) | %.1f (%d nodes) |\n", h.Device, h.HonestStake+h.HonestBalance, h.Honest, h.CheaterStake+h.CheaterBalance, h.Cheaters)
	}
	b.WriteString("\n| ours vs | attributional CO₂ | displacement CO₂ | completion later by |\n|---|---:|---:|---:|\n")
	for _, p := range r.Results {
		if p.Policy == PolicySun {
			continue
		}
		later := "n/a"
		if p.MeanCompletionHours > 0 {
			later = fmt.Sprintf("%.1f%%", 100*(ours.MeanCompletionHours/p.MeanCompletionHours-1))
		}
		fmt.Fprintf(&b, "| %s | %s less | %s less | %s |\n", p.Policy, less(ours.CO2Kg, p.CO2Kg), less(ours.DisplacedCO2Kg, p.DisplacedCO2Kg), later)
	}
	if price, ok := r.Result(PolicyPrice); ok {
		b.WriteString("\nGoals (issue 16), ours against price-only (carbon-agnostic):\n\n")
		missed := ours.DeadlinesMissed + ours.JobsArrived - ours.JobsFinished
		later := 0.0
		if price.MeanCompletionHours > 0 {
			later = ours.MeanCompletionHours/price.MeanCompletionHours - 1
		}
		check := func(ok bool) string {
			if ok {
				return "met"
			}
			return "NOT met"
		}
		if r.Utilisation < 0.6 {
			fmt.Fprintf(&b, "- ≥ 90%% of job energy from surplus: %s — %s (net of the households' extra grid import: %s — %s)\n",
				pct(ours.SurplusShare), check(ours.SurplusShare >= 0.9), pct(ours.NetSurplusShare), check(ours.NetSurplusShare >= 0.9))
			fmt.Fprintf(&b, "- ≥ 60%% less attributional CO₂: %s — %s\n", less(ours.CO2Kg, price.CO2Kg), check(ours.CO2Kg <= 0.4*price.CO2Kg))
			fmt.Fprintf(&b, "- ≥ 35%% less displacement CO₂: %s — %s\n", less(ours.DisplacedCO2Kg, price.DisplacedCO2Kg), check(ours.DisplacedCO2Kg <= 0.65*price.DisplacedCO2Kg))
			if ours.DisplacementFloorKg != 0 {
				fmt.Fprintf(&b, "  - the least any placement could emit with ≥ 90%% surplus (same-step model, carbonFloor): at ours' timing %s, at any timing (deadlines ignored) %s; with no surplus asked, at ours' timing %s\n",
					floorLess(ours.DisplacementFloorKg, price.DisplacedCO2Kg), floorLess(ours.DisplacementFloorAnyStepKg, price.DisplacedCO2Kg), floorLess(ours.CarbonFloorKg, price.DisplacedCO2Kg))
			}
			fmt.Fprintf(&b, "- mean completion ≤ 10%% later: %+.1f%% — %s\n", 100*later, check(later <= 0.10))
		} else if ours.CeilingShare > 0 {
			fmt.Fprintf(&b, "- ≥ 90%% of the physical ceiling: %s of %s (whole run, deadlines ignored) = %s — %s; of %s (same-step ceiling) = %s\n",
				pct(ours.SurplusShare), pct(ours.CeilingShare), pct(ours.SurplusShare/ours.CeilingShare),
				check(ours.SurplusShare >= 0.9*ours.CeilingShare), pct(ours.StepCeilingShare), pct(ours.SurplusShare/max(ours.StepCeilingShare, 1e-9)))
			if ours.NetCeilingShare > 0 {
				fmt.Fprintf(&b, "  - net of the households' extra grid import: %s of %s (net ceiling, same step) = %s — %s\n",
					pct(ours.NetSurplusShare), pct(ours.NetCeilingShare), pct(ours.NetSurplusShare/ours.NetCeilingShare), check(ours.NetSurplusShare >= 0.9*ours.NetCeilingShare))
			}
			if ours.RunCeilingShare > 0 {
				fmt.Fprintf(&b, "  - of %s (own-runs ceiling: sun's worker runs kept whole, at their times, each on its best node) = %s; re-placing those runs reaches %s (%s on nodes at least as fast as their own), so their true ceiling lies between\n",
					pct(ours.RunCeilingShare), pct(ours.SurplusShare/ours.RunCeilingShare), pct(ours.RunReplacedShare), pct(ours.RunReplacedFastShare))
			}
		}
		fmt.Fprintf(&b, "- no deadline missed: %d missed — %s\n", missed, check(missed == 0))
		for _, l := range ours.Late {
			fmt.Fprintf(&b, "  - %s: arrived at hour %.2f, started %.2f (waited %.2f h), due %.2f, finished %.2f (%.0f min late); expected %.2f h on %d workers, peaked at %d; %d cheaters caught on it\n",
				l.Name, l.ArrivalHour, l.StartHour, l.StartHour-l.ArrivalHour, l.DeadlineHour, l.FinishHour, 60*(l.FinishHour-l.DeadlineHour),
				l.ExpectedHours, l.MaxWorkers, l.PeakWorkers, l.CheatersCaught)
		}
	}
	return b.String()
}
