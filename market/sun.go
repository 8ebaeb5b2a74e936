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
	return nil
}

// SunEnergy is a candidate's energy for ranking under SunPolicy: the
// grid's intensity now and the device's draw, no surplus. Admission has
// already required surplus over the whole run, so every admitted node is
// sunny; what still separates them is the carbon their energy displaces
// (surplus a job uses is surplus the grid does not get), which the green
// score then ranks on alone.
func SunEnergy(site *energy.Site, now time.Time) Energy {
	return Energy{CarbonGPerKWh: site.CarbonIntensity(now), BusyWatts: site.Profile().BusyWatts}
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
	return fmt.Sprintf("admit at ≥ %.0f%% forecast surplus over the run, shed below %.0f%%, wait ≤ %s, deadline margin %.0f%%",
		100*p.MinCoverage, 100*p.KeepCoverage, p.MaxWait, 100*p.Margin)
}
