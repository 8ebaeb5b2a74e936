package market

import (
	"fmt"
	"math"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// Candidate is a node the requester could place work on: its registered
// offer plus what the requester knows about it now.
type Candidate struct {
	Offer      gridmind.Offer  `json:"offer"`
	Stake      gridmind.Amount `json:"stake"`
	Reputation uint64          `json:"reputation_ppm"` // reputation.Score.Total, 0..1e6
	LatencyMs  float64         `json:"latency_ms"`     // measured round trip; 0 means unknown
	Energy     Energy          `json:"energy"`
	Busy       bool            `json:"busy,omitempty"` // already working (from its heartbeat)
}

// Energy is a candidate's energy situation as placement sees it.
type Energy struct {
	SurplusWatts      float64 `json:"surplus_w"`           // now: solar beyond load, plus what the battery can give
	ForecastSurplusWh float64 `json:"forecast_surplus_wh"` // expected surplus over the next ForecastHours
	ForecastHours     float64 `json:"forecast_hours"`      // the forecast's window, ideally the job's expected duration
	CarbonGPerKWh     float64 `json:"carbon_g_per_kwh"`    // the grid's intensity now; 0 means unknown
	BusyWatts         float64 `json:"busy_w"`              // the device's draw when working; 0 means unknown
}

// EnergyFromSite computes a candidate's energy at now from its energy
// profile (as registered on the ledger), forecasting the surplus over the
// job's expected duration.
func EnergyFromSite(site *energy.Site, now time.Time, expected time.Duration) Energy {
	st := site.State(now, 0, "", 0)
	e := Energy{
		SurplusWatts:  st.SurplusWatts,
		CarbonGPerKWh: st.CarbonGPerKWh,
		BusyWatts:     site.Profile().BusyWatts,
	}
	if expected > 0 {
		e.ForecastHours = expected.Hours()
		e.ForecastSurplusWh = site.ForecastSurplusWh(now, expected, energy.DefaultForecast)
	}
	return e
}

// EnergyFromState reads a candidate's energy from its last heartbeat,
// whose forecast covers forecastHours.
func EnergyFromState(st gridmind.EnergyState, busyWatts, forecastHours float64) Energy {
	return Energy{
		SurplusWatts:      st.SurplusWatts,
		ForecastSurplusWh: st.ForecastSurplus,
		ForecastHours:     forecastHours,
		CarbonGPerKWh:     st.CarbonGPerKWh,
		BusyWatts:         busyWatts,
	}
}

// finite returns v, or 0 for NaN, infinities and negatives: numbers from
// the network must never poison a ranking.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// Coverage estimates the share (0..1) of a job's energy that surplus
// renewable power would cover on this node: half from the surplus now,
// half from the forecast over the job's duration.
func (e Energy) Coverage() float64 {
	busy := finite(e.BusyWatts)
	if busy == 0 {
		return 0
	}
	now := min(1, finite(e.SurplusWatts)/busy)
	later := now
	if h := finite(e.ForecastHours); h > 0 {
		later = min(1, finite(e.ForecastSurplusWh)/(busy*h))
	}
	return (now + later) / 2
}

// Weights of the non-energy rankers. The green preference of a job blends
// their weighted mean with the clean-energy score:
// final = (1-g)*base + g*green, with g = green_preference/100.
type Weights struct {
	Price      float64 `json:"price"`
	Reputation float64 `json:"reputation"`
	Throughput float64 `json:"throughput"`
	Latency    float64 `json:"latency"`
}

// DefaultWeights favour price, then proven reliability, then speed.
func DefaultWeights() Weights {
	return Weights{Price: 0.40, Reputation: 0.25, Throughput: 0.20, Latency: 0.15}
}

func (w Weights) validate() error {
	for _, v := range []float64{w.Price, w.Reputation, w.Throughput, w.Latency} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("weights %+v: each must be a finite number >= 0", w)
		}
	}
	if w.Price+w.Reputation+w.Throughput+w.Latency == 0 {
		return fmt.Errorf("weights %+v: at least one must be positive", w)
	}
	return nil
}

// Check names a feasibility check.
type Check uint8

// The feasibility checks, in the order the fast path runs them (cheap and
// selective first).
const (
	CheckNone Check = iota
	CheckDuplicate
	CheckBusy
	CheckRegion
	CheckPrice
	CheckMemory
	CheckThroughput
	CheckStake
	CheckReputation
	numChecks
)

var checkNames = [numChecks]string{"", "duplicate", "busy", "region", "price", "memory", "throughput", "stake", "reputation"}

func (c Check) String() string {
	if c < numChecks {
		return checkNames[c]
	}
	return fmt.Sprintf("check(%d)", uint8(c))
}

// MarshalText writes the check's name, so explanations read well as JSON.
func (c Check) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a check's name.
func (c *Check) UnmarshalText(b []byte) error {
	for i, n := range checkNames {
		if n == string(b) {
			*c = Check(i)
			return nil
		}
	}
	return fmt.Errorf("unknown check %q", b)
}
