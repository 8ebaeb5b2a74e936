package sim

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/market"
)

// Policy is a way of placing work, replayed on the same world.
type Policy string

// The policies a run compares.
const (
	// PolicySun is ours: market.SunPolicy (admission over the whole run,
	// waiting for surplus within the deadline, elastic worker counts)
	// with the market's green-weighted ranking.
	PolicySun Policy = "sun"
	// PolicyCarbon ranks only on the grid's carbon intensity now.
	PolicyCarbon Policy = "carbon-only"
	// PolicyPrice ranks only on price: carbon-agnostic.
	PolicyPrice Policy = "price-only"
	// PolicyRandom picks uniformly among feasible nodes: carbon-agnostic.
	PolicyRandom Policy = "random"
)

// AllPolicies is every policy, ours first.
var AllPolicies = []Policy{PolicySun, PolicyCarbon, PolicyPrice, PolicyRandom}

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range AllPolicies {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(AllPolicies))
	for i, p := range AllPolicies {
		names[i] = string(p)
	}
	return "", fmt.Errorf("policy %q: want one of %s", s, strings.Join(names, ", "))
}

// Churn sets how nodes come and go.
type Churn struct {
	// NightOffShare is the share of home nodes (all but microgrids) that
	// are switched off every night, from local midnight for 6 to 9 hours.
	NightOffShare float64 `json:"night_off_share"`
	// CrashesPerDay is each node's rate of crashes; a crashed node is back
	// after an exponential time with mean CrashMeanDown.
	CrashesPerDay float64       `json:"crashes_per_day"`
	CrashMeanDown time.Duration `json:"crash_mean_down"`
	// LeavesPerDay is the share of the fleet that leaves for good each
	// day; as many new nodes join (with no reputation yet).
	LeavesPerDay float64 `json:"leaves_per_day"`
}

// DefaultChurn: a third of home nodes off at night, a crash every ten
// days per node (down an hour on average), 1% of the fleet replaced daily.
func DefaultChurn() Churn {
	return Churn{NightOffShare: 0.33, CrashesPerDay: 0.1, CrashMeanDown: time.Hour, LeavesPerDay: 0.01}
}

// Config sets up a run. Zero fields take the defaults in brackets.
type Config struct {
	Nodes int `json:"nodes"` // providers at the start [10,000]
	Days  int `json:"days"`  // days of job arrivals [7]
	// Start is the first simulated UTC day [2023-06-21]. Jobs arrive from
	// Start for Days days; the run goes on until they are done (at most
	// two more days).
	Start time.Time `json:"start"`
	// WarmupDays of sun before Start charge the batteries, which start
	// empty: the steady state is earned, not given [2; negative: none].
	WarmupDays int   `json:"warmup_days"`
	Seed       int64 `json:"seed"`
	// Utilisation is the target share of online node-hours that jobs
	// need [0.45].
	Utilisation float64 `json:"utilisation"`
	// Policies to compare [AllPolicies].
	Policies []Policy `json:"policies"`
	// Step is the placement and accounting tick [15 min].
	Step time.Duration `json:"step"`
	// Sun configures PolicySun [market.DefaultSunPolicy].
	Sun market.SunPolicy `json:"sun"`
	// GreenPreference of jobs under PolicySun [80].
	GreenPreference int `json:"green_preference"`
	// CheatShare is the share of providers that skip the work and claim
	// it; the audit policy (verify.DefaultPolicy) catches them [0.05].
	// Negative means none.
	CheatShare float64 `json:"cheat_share"`
	Churn      Churn   `json:"churn"`
	// NoChurn turns churn off (Churn is ignored).
	NoChurn bool `json:"no_churn"`
	// Profiles replaces energy.Presets for the nodes (cycled when shorter
	// than Nodes): sites on your own traces.
	Profiles []energy.Profile `json:"-"`
	// Progress, when set, is called with the simulated steps done and the
	// total, at most a few hundred times per run.
	Progress func(done, total int) `json:"-"`
}

// Limits that keep a run finite.
const (
	MaxNodes = 1_000_000
	MaxDays  = 60
)

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 10_000
	}
	if c.Days == 0 {
		c.Days = 7
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2023, 6, 21, 0, 0, 0, 0, time.UTC)
	}
	if c.WarmupDays == 0 {
		c.WarmupDays = 2
	}
	if c.WarmupDays < 0 {
		c.WarmupDays = 0
	}
	if c.Utilisation == 0 {
		c.Utilisation = 0.45
	}
	if len(c.Policies) == 0 {
		c.Policies = AllPolicies
	}
	if c.Step == 0 {
		c.Step = 15 * time.Minute
	}
	if c.GreenPreference == 0 {
		c.GreenPreference = 80
	}
	if c.CheatShare == 0 {
		c.CheatShare = 0.05
	}
	if c.CheatShare < 0 {
		c.CheatShare = 0
	}
	if c.Churn == (Churn{}) {
		c.Churn = DefaultChurn()
	}
	if c.NoChurn {
		c.Churn = Churn{}
	}
	return c
}

// Validate reports the first problem, naming the setting.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "sim", format, args...)
	}
	c = c.withDefaults()
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return bad("nodes %d: want 1..%d", c.Nodes, MaxNodes)
	case c.Days < 1 || c.Days > MaxDays:
		return bad("days %d: want 1..%d", c.Days, MaxDays)
	case c.WarmupDays < 0 || c.WarmupDays > 30:
		return bad("warmup days %d: want 0..30", c.WarmupDays)
	case math.IsNaN(c.Utilisation) || c.Utilisation <= 0 || c.Utilisation > 1:
		return bad("utilisation %v: want more than 0 and at most 1", c.Utilisation)
	case c.Step < time.Minute || c.Step > time.Hour || time.Hour%c.Step != 0:
		return bad("step %s: want a divisor of an hour, at least 1m", c.Step)
	case c.GreenPreference < 0 || c.GreenPreference > 100:
		return bad("green preference %d: want 0..100", c.GreenPreference)
	case math.IsNaN(c.CheatShare) || c.CheatShare > 0.5:
		return bad("cheat share %v: want 0..0.5", c.CheatShare)
	case c.Churn.NightOffShare < 0 || c.Churn.NightOffShare > 1 || c.Churn.CrashesPerDay < 0 || c.Churn.CrashesPerDay > 24 ||
		c.Churn.LeavesPerDay < 0 || c.Churn.LeavesPerDay > 0.5 || c.Churn.CrashMeanDown < 0:
		return bad("churn %+v: want shares 0..1, at most 24 crashes a day, at most half the fleet leaving a day", c.Churn)
	}
	if c.Start.Year() < 1970 || c.Start.Year() > 9999 {
		return bad("start %s: out of range", c.Start)
	}
	seen := map[Policy]bool{}
	for _, p := range c.Policies {
		if _, err := ParsePolicy(string(p)); err != nil {
			return bad("%v", err)
		}
		if seen[p] {
			return bad("policy %s listed twice", p)
		}
		seen[p] = true
	}
	if err := c.Sun.Validate(); err != nil {
		return err
	}
	for i := range c.Profiles {
		if err := c.Profiles[i].Validate(); err != nil {
			return bad("profile %d: %v", i, err)
		}
	}
	return nil
}
