package market

import (
	"fmt"
	"math"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// SunPolicy places work so that its energy follows the sun: a worker is
// admitted on a node only if the forecast surplus over the worker's whole
// run, plus what the battery holds beyond the household's needs, covers
// MinCoverage of its energy (energy.Site.Outlook); a job with no admitted
// node waits, as long as its deadline still leaves room and it has not
// waited MaxWait; and a running elastic job sheds workers whose node has
// gone dark (down to its minimum) and grows where the sun is (up to its
// maximum). A deadline always wins: once waiting or shedding could make a
// job late, it is placed on the best feasible nodes whatever their energy.
//
// The policy only decides; the caller (the requester's job loop, or the
// simulator) holds the clock and the sites and asks it.
type SunPolicy struct {
	// MinCoverage is the share of a worker's forecast energy that must be
	// surplus for it to be admitted; 0 means 0.9.
	MinCoverage float64 `json:"min_coverage"`
	// KeepCoverage is the share of the next step's energy below which a
	// running worker of an elastic job is shed; 0 means 0.5.
	KeepCoverage float64 `json:"keep_coverage"`
	// MaxWait is the longest a job waits for surplus before it is placed
	// whatever the energy; 0 means 2 hours.
	MaxWait time.Duration `json:"max_wait"`
	// Margin is the share of a job's expected remaining run kept free
	// before its deadline: waiting and shedding stop once
	// now + (1+Margin)·remaining reaches the deadline; 0 means 0.5.
	Margin float64 `json:"margin"`
	// SurplusValue weighs a node's grid against its sun, in grams of CO₂
	// per kWh: a worker's cost per kWh on a node is the grid's intensity
	// there less SurplusValue × the share of its energy surplus covers
	// (Cost). It is the price of the surplus goal in the programme whose
	// optimum is the least displacement CO₂ at a given surplus share
	// (sim's carbonFloor): surplus a job uses is surplus the grid does not
	// get, so a sunny node on a coal-heavy grid displaces more than a
	// clean grid's power, and only the surplus goal makes it worth
	// taking. 0 means 450; a negative value turns the weighing off
	// (admission by coverage alone, ranking by intensity alone).
	SurplusValue float64 `json:"surplus_value_g_per_kwh"`
	// CleanBar also admits (and keeps) a worker whose cost is at most
	// CleanBar g/kWh when surplus covers less than MinCoverage (or
	// KeepCoverage): a clean grid's power, say 80 g/kWh in São Paulo at
	// night, displaces less than any sun on a grid above SurplusValue +
	// CleanBar. 0 means 100.
	CleanBar float64 `json:"clean_bar_g_per_kwh"`
}

// DefaultSunPolicy is the policy with every default.
func DefaultSunPolicy() SunPolicy { return SunPolicy{}.withDefaults() }

func (p SunPolicy) withDefaults() SunPolicy {
	if p.MinCoverage == 0 {
		p.MinCoverage = 0.9
	}
	if p.KeepCoverage == 0 {
		p.KeepCoverage = 0.5
	}
	if p.MaxWait == 0 {
		p.MaxWait = 2 * time.Hour
	}
	if p.Margin == 0 {
		p.Margin = 0.5
	}
	if p.SurplusValue == 0 {
		p.SurplusValue = 450
	}
	if p.CleanBar == 0 {
		p.CleanBar = 100
	}
	return p
}

// Validate checks the policy's numbers.
func (p SunPolicy) Validate() error {
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "market.sun", format, args...)
	}
	for name, v := range map[string]float64{"min_coverage": p.MinCoverage, "keep_coverage": p.KeepCoverage} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return bad("%s %v: want 0..1", name, v)
		}
	}
	if p.MaxWait < 0 {
		return bad("max_wait %s: must not be negative", p.MaxWait)
	}
	if math.IsNaN(p.Margin) || p.Margin < 0 || p.Margin > 10 {
		return bad("margin %v: want 0..10", p.Margin)
	}
	if math.IsNaN(p.SurplusValue) || math.IsInf(p.SurplusValue, 0) || p.SurplusValue > 10_000 {
		return bad("surplus_value_g_per_kwh %v: want a number up to 10000 (negative: off)", p.SurplusValue)
	}
	if math.IsNaN(p.CleanBar) || math.IsInf(p.CleanBar, 0) || math.Abs(p.CleanBar) > 10_000 {
		return bad("clean_bar_g_per_kwh %v: want -10000..10000", p.CleanBar)
	}
	return nil
}

// Cost is a worker's cost per kWh on a node whose grid emits intensity
// g/kWh and whose surplus covers coverage of the worker's energy: the
// intensity less SurplusValue × coverage (the intensity alone with the
// weighing off).
func (p SunPolicy) Cost(intensity, coverage float64) float64 {
	p = p.withDefaults()
	if p.SurplusValue < 0 {
		return intensity
	}
	return intensity - p.SurplusValue*coverage
}

// SunEnergy is a candidate's energy for ranking under p: its green score
// ranks on the cost of a unit of work there, Cost per kWh (shifted by
// SurplusValue to stay positive) times the device's kWh per unit of work
// (busy watts over measured TFLOP/s; left out when tflops is unknown), so
// an efficient device on the same grid and sun wins. With the weighing
// off it is the grid's intensity now and the device's draw, as it was:
// admission then has required surplus over the whole run, and what
// separates admitted nodes is the carbon their energy displaces. coverage
// is the node's forecast covered share over a typical run.
func (p SunPolicy) SunEnergy(site *energy.Site, now time.Time, coverage, tflops float64) Energy {
	p = p.withDefaults()
	e := GridEnergy(site, now)
	if p.SurplusValue < 0 {
		return e
	}
	e.CarbonGPerKWh = p.Cost(e.CarbonGPerKWh, coverage) + p.SurplusValue
	if tflops > 0 && e.BusyWatts > 0 {
		e.CarbonGPerKWh *= e.BusyWatts / tflops / 1000
	}
	return e
}

// GridEnergy is a candidate's energy for ranking on its grid alone: the
// grid's intensity now and the device's draw, no surplus (carbon-only
// placement, and SunEnergy with the weighing off).
func GridEnergy(site *energy.Site, now time.Time) Energy {
	return Energy{CarbonGPerKWh: site.CarbonIntensity(now), BusyWatts: site.Profile().BusyWatts}
}

// clean reports whether a worker's Cost is at most CleanBar, with the
// weighing on (p has its defaults).
func (p SunPolicy) clean(intensity, coverage float64) bool {
	return p.SurplusValue >= 0 && p.Cost(intensity, coverage) <= p.CleanBar
}

// AdmitsWorker reports whether a worker may start on a node whose grid
// emits intensity g/kWh and whose surplus covers coverage of its energy
// over its run: coverage reaches MinCoverage, or its Cost is at most
// CleanBar.
func (p SunPolicy) AdmitsWorker(intensity, coverage float64) bool {
	p = p.withDefaults()
	return coverage >= p.MinCoverage || p.clean(intensity, coverage)
}

// KeepsWorker reports whether a running worker of an elastic job stays for
// the next step: its coverage over that step reaches KeepCoverage, or its
// Cost is at most CleanBar.
func (p SunPolicy) KeepsWorker(intensity, coverage float64) bool {
	p = p.withDefaults()
	return coverage >= p.KeepCoverage || p.clean(intensity, coverage)
}

// Outlook forecasts a worker of busyWatts running for d from now on site.
func Outlook(site *energy.Site, now time.Time, d time.Duration, busyWatts float64) energy.Outlook {
	return site.Outlook(now, d, busyWatts, energy.DefaultForecast)
}

// Admits reports whether a worker with this outlook may start: its
// forecast covered share reaches MinCoverage.
func (p SunPolicy) Admits(o energy.Outlook) bool { return p.AdmitsCoverage(o.Coverage()) }

// AdmitsCoverage is Admits for a covered share already computed.
func (p SunPolicy) AdmitsCoverage(share float64) bool {
	p = p.withDefaults()
	return share >= p.MinCoverage
}

// Keeps reports whether a running worker of an elastic job stays for the
// next step, given the outlook of that step.
func (p SunPolicy) Keeps(o energy.Outlook) bool { return p.KeepsCoverage(o.Coverage()) }

// KeepsCoverage is Keeps for a covered share already computed.
func (p SunPolicy) KeepsCoverage(share float64) bool {
	p = p.withDefaults()
	return share >= p.KeepCoverage
}

// Urgent reports whether a job that still needs remaining of run time (at
// its current pace) must stop waiting for the sun: its deadline is within
// (1+Margin)·remaining plus one step of now. A job without a deadline
// (zero) is never urgent.
func (p SunPolicy) Urgent(now, deadline time.Time, remaining, step time.Duration) bool {
	if deadline.IsZero() {
		return false
	}
	p = p.withDefaults()
	need := time.Duration(float64(remaining)*(1+p.Margin)) + step
	return !now.Add(need).Before(deadline)
}

// InTime reports whether a worker that needs run of wall time from now
// finishes before the deadline with the policy's margin to spare: the
// check that keeps a placement (sunny or not) from choosing a node too slow
// for the job. A zero deadline is always in time.
func (p SunPolicy) InTime(now, deadline time.Time, run time.Duration) bool {
	if deadline.IsZero() {
		return true
	}
	p = p.withDefaults()
	return !now.Add(time.Duration(float64(run) * (1 + p.Margin))).After(deadline)
}

// MayWait reports whether a job that arrived at arrival and is not yet
// placed may wait one more step for surplus: it has waited less than
// MaxWait and is not Urgent.
func (p SunPolicy) MayWait(now, arrival, deadline time.Time, expected, step time.Duration) bool {
	p = p.withDefaults()
	if now.Add(step).Sub(arrival) > p.MaxWait {
		return false
	}
	return !p.Urgent(now, deadline, expected, step)
}

// String describes the policy in one line for reports.
func (p SunPolicy) String() string {
	p = p.withDefaults()
	s := fmt.Sprintf("admit at ≥ %.0f%% forecast surplus over the run, shed below %.0f%%, wait ≤ %s, deadline margin %.0f%%",
		100*p.MinCoverage, 100*p.KeepCoverage, p.MaxWait, 100*p.Margin)
	if p.SurplusValue >= 0 {
		s += fmt.Sprintf("; a kWh of surplus worth %.0f g CO₂/kWh of grid, so a worker costing ≤ %.0f g/kWh (grid intensity − that × covered share) is admitted and kept too, and nodes rank on that cost per unit of work", p.SurplusValue, p.CleanBar)
	}
	return s
}
