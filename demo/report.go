package demo

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/ui"
	"github.com/gridmind/gridmind/market"
)

// Report is what a demo run did: printed at the end, written as JSON and
// Markdown, and asserted on by the end-to-end test.
type Report struct {
	Options   ReportOptions     `json:"options"`
	Job       string            `json:"job"`
	Nodes     []NodeReport      `json:"nodes"`
	Placement *market.Placement `json:"placement"`
	Rounds    []RoundReport     `json:"rounds"`
	Crashed   gridmind.NodeID   `json:"crashed,omitempty"`
	// CrashedReputationAtCrash is the crashed worker's score (ppm) just
	// before it was killed; its NodeReport has the final one.
	CrashedReputationAtCrash uint64          `json:"crashed_reputation_at_crash_ppm,omitempty"`
	Joined                   gridmind.NodeID `json:"joined,omitempty"`
	ModelHash                string          `json:"model_hash"`
	// StartLoss is the evaluation loss of the untrained model (θ_0) on the
	// same held-out batches the workers evaluate on.
	StartLoss float64           `json:"start_loss"`
	Params    int               `json:"params"`
	BytesSent float64           `json:"bytes_sent"` // all workers, all rounds
	SyncBytes float64           `json:"sync_bytes"` // what synchronous data-parallel training would have sent
	Inference []InferenceReport `json:"inference"`
	Supply    SupplyCheck       `json:"supply"`
	Audit     AuditReport       `json:"audit"`
	WallTime  time.Duration     `json:"wall_time_ns"`
}

// ReportOptions echo the run's settings.
type ReportOptions struct {
	Nodes, Workers, Rounds, InnerSteps int
	Model                              string
	Seed                               int64
	Crash                              bool
	EnergyTime                         time.Time
}

// NodeReport is one provider's part in the story.
type NodeReport struct {
	Name             string          `json:"name"`
	ID               gridmind.NodeID `json:"id"`
	Zone             string          `json:"zone"`
	SolarKW          float64         `json:"solar_kw"`
	BatteryKWh       float64         `json:"battery_kwh"`
	BusyWatts        float64         `json:"busy_w"`
	Price            gridmind.Amount `json:"price"`
	Stake            gridmind.Amount `json:"stake"`
	SurplusW         float64         `json:"surplus_w"`
	CarbonG          float64         `json:"carbon_g_per_kwh"`
	Rounds           int             `json:"rounds"`
	Paid             gridmind.Amount `json:"paid"`
	BalanceBefore    gridmind.Amount `json:"balance_before"`
	BalanceAfter     gridmind.Amount `json:"balance_after"`
	ReputationBefore uint64          `json:"reputation_before_ppm"`
	ReputationAfter  uint64          `json:"reputation_after_ppm"`
	EnergyWh         float64         `json:"energy_wh"`
	RenewableWh      float64         `json:"renewable_wh"`
	CO2Grams         float64         `json:"co2_g"`
}

// RoundReport is one training round.
type RoundReport struct {
	Round        uint64  `json:"round"`
	EvalLoss     float64 `json:"eval_loss"`
	TrainLoss    float64 `json:"train_loss"`
	Workers      int     `json:"workers"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	BytesSent    int64   `json:"bytes_sent"`
	EnergyWh     float64 `json:"energy_wh"`
	RenewableWh  float64 `json:"renewable_wh"`
	CO2Grams     float64 `json:"co2_g"`
}

// InferenceReport is one prompt sent through the router.
type InferenceReport struct {
	Prompt     string        `json:"prompt"`
	Completion string        `json:"completion"`
	Latency    time.Duration `json:"latency_ns"`
	Server     string        `json:"server"`
	Attempts   int           `json:"attempts"`
	Error      string        `json:"error,omitempty"`
}

// SupplyCheck is the ledger's supply invariant at the end.
type SupplyCheck struct {
	Holds    bool            `json:"holds"`
	Total    gridmind.Amount `json:"total"`
	Expected gridmind.Amount `json:"expected"`
	Height   int64           `json:"height"`
}

// JSON renders the report.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// LossFell reports whether training lowered the evaluation loss: the
// untrained model's against the last round's.
func (r *Report) LossFell() (first, last float64, fell bool) {
	losses := r.Losses()
	if len(losses) < 2 {
		return 0, 0, false
	}
	first, last = losses[0], losses[len(losses)-1]
	return first, last, last < first
}

// Losses are the evaluation losses: before training, then after each round.
func (r *Report) Losses() []float64 {
	var out []float64
	if r.StartLoss > 0 {
		out = append(out, r.StartLoss)
	}
	for _, rd := range r.Rounds {
		if rd.EvalLoss >= 0 {
			out = append(out, rd.EvalLoss)
		}
	}
	return out
}

// Text is the terminal summary.
func (r *Report) Text() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	first, last, _ := r.LossFell()
	w("  loss       %s  %.3f → %.3f (untrained → after %d rounds; %s, %d parameters)\n", ui.Sparkline(r.Losses()), first, last, len(r.Rounds), r.Options.Model, r.Params)
	if r.SyncBytes > 0 && r.BytesSent > 0 {
		w("  traffic    %s sent; synchronous data-parallel would have sent %s: %.0f× less\n", humanBytes(r.BytesSent), humanBytes(r.SyncBytes), r.SyncBytes/r.BytesSent)
	}
	w("  ledger     supply invariant %v (total %s = genesis + minted − burned fees %s) at height %d\n", r.Supply.Holds, r.Supply.Total, r.Supply.Expected, r.Supply.Height)
	for _, n := range r.Nodes {
		if n.ID == r.Crashed {
			w("  crash      %s's reputation %.2f when it crashed → %.2f after (payment multiplier follows it)\n", n.Name, float64(r.CrashedReputationAtCrash)/1e6, float64(n.ReputationAfter)/1e6)
		}
	}
	if a := r.Audit; a.Cheater != "" && a.ProofHeight == 0 {
		w("  audit      %d spot checks (%d cleared bit for bit); cheater %s not proven within the job, screen caught it %v\n",
			a.SpotChecks, a.Cleared, r.nodeName(a.Cheater), a.ScreenCaught)
	} else if a.Cheater != "" {
		w("  audit      %d spot checks (%d cleared bit for bit); cheater %s proven at height %d (round %d, %d of %d auditors): slashed %s, excluded %v, screen caught it %v\n",
			a.SpotChecks, a.Cleared, r.nodeName(a.Cheater), a.ProofHeight, a.ProvenRound, a.Agreeing, a.Committee, a.Slashed, a.Excluded, a.ScreenCaught)
	}
	w("  wall time  %s\n\n", r.WallTime.Round(100*time.Millisecond))
	w("  %-5s %-12s %6s %16s %10s %10s %9s %7s %8s\n", "NODE", "ZONE", "ROUNDS", "PAID", "REP BEFORE", "REP AFTER", "ENERGY", "CLEAN", "CO2")
	for _, n := range r.Nodes {
		clean := 0.0
		if n.EnergyWh > 0 {
			clean = n.RenewableWh / n.EnergyWh
		}
		mark := ""
		switch n.ID {
		case r.Crashed:
			mark = "  ← crashed"
		case r.Joined:
			mark = "  ← joined"
		case r.Audit.Cheater:
			mark = "  ← cheated, slashed"
			if r.Audit.Slashed == 0 {
				mark = "  ← cheated, not proven"
			}
		}
		w("  %-5s %-12s %6d %16s %10.2f %10.2f %6.2f Wh %6.0f%% %6.2f g%s\n", n.Name, n.Zone, n.Rounds, n.Paid, float64(n.ReputationBefore)/1e6, float64(n.ReputationAfter)/1e6, n.EnergyWh, 100*clean, n.CO2Grams, mark)
	}
	return b.String()
}

// Markdown is the report for results/…/report.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	first, last, _ := r.LossFell()
	w("# gridmind demo report\n\n")
	w("- job `%s`: %s, %d workers (+1 standby), %d rounds × %d inner steps, seed %d\n", r.Job, r.Options.Model, r.Options.Workers, r.Options.Rounds, r.Options.InnerSteps, r.Options.Seed)
	w("- energy traces at %s\n", r.Options.EnergyTime.Format(time.RFC3339))
	w("- evaluation loss %.3f → %.3f `%s`\n", first, last, ui.Sparkline(r.Losses()))
	if r.BytesSent > 0 {
		w("- sent %s; synchronous data-parallel training would have sent %s (%.0f× less)\n", humanBytes(r.BytesSent), humanBytes(r.SyncBytes), r.SyncBytes/r.BytesSent)
	}
	w("- supply invariant holds: %v (height %d)\n", r.Supply.Holds, r.Supply.Height)
	w("- model `%s`\n- wall time %s\n", r.ModelHash, r.WallTime.Round(100*time.Millisecond))
	if a := r.Audit; a.Cheater != "" {
		w("\n## Verification\n\n")
		w("- cheater %s trained %d of %d inner steps per round and scaled its Δ up; the reducers' screen caught it: %v\n", r.nodeName(a.Cheater), r.Options.InnerSteps-a.Shirk, r.Options.InnerSteps, a.ScreenCaught)
		w("- %d spot checks at a rate of %.0f%%: %d honest rounds re-executed bit for bit and cleared, %d mismatching re-runs\n", a.SpotChecks, float64(a.RatePPM)/1e4, a.Cleared, a.Mismatches)
		w("- %d mismatching re-runs, %d of them of an honest worker's round\n", a.Mismatches, a.HonestMismatches)
		if a.ProofHeight == 0 {
			w("- no fraud proof reached the ledger within the job (on a slow machine the committee's re-runs can miss the dispute window)\n")
		} else {
			w("- fraud proof at height %d for round %d (receipt at height %d, %.1f s from the spot check's start): %d of %d committee members agreed\n", a.ProofHeight, a.ProvenRound, a.ReceiptHeight, a.ProofSeconds, a.Agreeing, a.Committee)
		}
		w("- slashed %s (%s to the agreeing auditors, the rest burned), %s staked after; excluded from the job: %v\n", a.Slashed, a.AuditorReward, a.StakeAfter, a.Excluded)
	}
	w("\n")
	w("## Rounds\n\n| round | eval loss | workers | tokens/s | bytes sent | energy Wh | clean | CO₂ g |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rd := range r.Rounds {
		clean := 0.0
		if rd.EnergyWh > 0 {
			clean = rd.RenewableWh / rd.EnergyWh
		}
		w("| %d | %.3f | %d | %.0f | %d | %.3f | %.0f%% | %.3f |\n", rd.Round, rd.EvalLoss, rd.Workers, rd.TokensPerSec, rd.BytesSent, rd.EnergyWh, 100*clean, rd.CO2Grams)
	}
	w("\n## Nodes\n\n| node | zone | solar kWp | battery kWh | rounds | paid | reputation before → after | energy Wh | clean | CO₂ g |\n|---|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
	for _, n := range r.Nodes {
		clean := 0.0
		if n.EnergyWh > 0 {
			clean = n.RenewableWh / n.EnergyWh
		}
		note := ""
		if n.ID == r.Crashed {
			note = " (crashed)"
		} else if n.ID == r.Joined {
			note = " (joined)"
		} else if n.ID == r.Audit.Cheater && r.Audit.Slashed == 0 {
			note = " (cheated, not proven)"
		} else if n.ID == r.Audit.Cheater {
			note = " (cheated, slashed)"
		}
		w("| %s%s | %s | %.0f | %.0f | %d | %s | %.2f → %.2f | %.3f | %.0f%% | %.3f |\n", n.Name, note, n.Zone, n.SolarKW, n.BatteryKWh, n.Rounds, n.Paid, float64(n.ReputationBefore)/1e6, float64(n.ReputationAfter)/1e6, n.EnergyWh, 100*clean, n.CO2Grams)
	}
	w("\n## Inference\n\n| prompt | completion | latency | server | attempts |\n|---|---|---:|---|---:|\n")
	for _, in := range r.Inference {
		w("| `%s` | `%s` | %s | %s | %d |\n", mdEscape(in.Prompt), mdEscape(in.Completion), in.Latency.Round(time.Millisecond), in.Server, in.Attempts)
	}
	return b.String()
}

func mdEscape(s string) string {
	return strings.NewReplacer("\n", "⏎", "|", "\\|", "`", "'").Replace(s)
}

func (r *Report) nodeName(id gridmind.NodeID) string {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n.Name
		}
	}
	return id.Short()
}
