package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
	"github.com/gridmind/gridmind/sim"
)

func init() {
	extraCommands = append(extraCommands, newSimCmd)
	// Every command (gridmind node included) sees the traces named by
	// $GRIDMIND_TRACES, so a node's energy config can use them by name.
	cobra.OnInitialize(loadTracesFromEnv)
}

// simFlags are the options of `gridmind sim` (and of `bench energy`).
type simFlags struct {
	nodes, days, warmup, green int
	seed                       int64
	start                      string
	utilisation, cheaters      float64
	minCoverage                float64
	surplusValue, cleanBar     float64
	policies                   []string
	noChurn, quiet             bool
	jsonPath, svgPath, traces  string
	profiles                   string
}

func (f *simFlags) register(cmd *cobra.Command, defaultNodes, defaultDays int) {
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", defaultNodes, "providers at the start, spread over the zones by energy presets")
	fl.IntVar(&f.days, "days", defaultDays, "days of job arrivals (the run goes on until the jobs are done, at most two more days)")
	fl.StringVar(&f.start, "start", "2023-06-21", "first simulated UTC day (YYYY-MM-DD; traces are one year, any year maps by date)")
	fl.IntVar(&f.warmup, "warmup", 2, "days of sun before the start that charge the batteries from empty")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the world (nodes, churn, jobs) and of the policies")
	fl.Float64Var(&f.utilisation, "utilisation", 0.45, "share of online node-hours the jobs need (0..1]")
	fl.Float64Var(&f.cheaters, "cheaters", 0.05, "share of providers that claim work they skip (0..0.5)")
	fl.IntVar(&f.green, "green", 80, "green preference of jobs under the sun policy (1..100)")
	fl.Float64Var(&f.minCoverage, "min-coverage", 0.9, "sun policy: share of a worker's forecast energy surplus must cover to admit it without waiting (0..1]")
	fl.Float64Var(&f.surplusValue, "surplus-value", 450, "sun policy: g CO2 a kWh of surplus is worth against a kWh of grid when weighing a node's grid against its sun (0..10000; negative: no weighing, admission by coverage alone)")
	fl.Float64Var(&f.cleanBar, "clean-bar", 100, "sun policy: also admit and keep a worker whose cost (grid g/kWh − surplus value × covered share) is at most this (-10000..10000)")
	fl.StringSliceVar(&f.policies, "policies", []string{"sun", "carbon-only", "price-only", "random"}, "policies to compare")
	fl.BoolVar(&f.noChurn, "no-churn", false, "no night switch-offs, crashes, leaves or joins")
	fl.StringVar(&f.jsonPath, "json", "", "also write the full report (hourly series included) as JSON to this file")
	fl.StringVar(&f.svgPath, "svg", "", "also write the report's plots as one SVG file")
	fl.StringVar(&f.traces, "traces", "", "directory of your own traces (docs/TRACES.md)")
	fl.StringVar(&f.profiles, "profiles", "", "JSON file with a list of energy profiles for the nodes (cycled), instead of the presets")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress bar")
}

// config checks the flags and builds the simulation's configuration.
func (f *simFlags) config(cmd *cobra.Command) (sim.Config, error) {
	start, err := time.Parse("2006-01-02", f.start)
	if err != nil {
		return sim.Config{}, invalid(cmd, "--start %q: want YYYY-MM-DD", f.start)
	}
	if err := checkRanges(cmd,
		bounds{"nodes", 1, sim.MaxNodes, []int{f.nodes}},
		bounds{"days", 1, sim.MaxDays, []int{f.days}},
		bounds{"warmup", 0, 30, []int{f.warmup}},
		bounds{"green", 1, 100, []int{f.green}},
	); err != nil {
		return sim.Config{}, err
	}
	if !(f.utilisation > 0 && f.utilisation <= 1) {
		return sim.Config{}, invalid(cmd, "--utilisation %v: want more than 0 and at most 1", f.utilisation)
	}
	if !(f.minCoverage > 0 && f.minCoverage <= 1) {
		return sim.Config{}, invalid(cmd, "--min-coverage %v: want more than 0 and at most 1", f.minCoverage)
	}
	if !(f.surplusValue <= 10_000) || math.IsInf(f.surplusValue, -1) {
		return sim.Config{}, invalid(cmd, "--surplus-value %v: want at most 10000 (negative: no weighing)", f.surplusValue)
	}
	if !(f.cleanBar >= -10_000 && f.cleanBar <= 10_000) {
		return sim.Config{}, invalid(cmd, "--clean-bar %v: want -10000..10000", f.cleanBar)
	}
	if !(f.cheaters >= 0 && f.cheaters <= 0.5) {
		return sim.Config{}, invalid(cmd, "--cheaters %v: want 0..0.5", f.cheaters)
	}
	cfg := sim.Config{Nodes: f.nodes, Days: f.days, Start: start, WarmupDays: f.warmup, Seed: f.seed,
		Utilisation: f.utilisation, GreenPreference: f.green, CheatShare: f.cheaters, NoChurn: f.noChurn}
	cfg.Sun.MinCoverage = f.minCoverage
	cfg.Sun.SurplusValue, cfg.Sun.CleanBar = f.surplusValue, f.cleanBar
	if f.surplusValue == 0 {
		cfg.Sun.SurplusValue = -1 // worth nothing: no weighing (0 would mean the default)
	}
	if f.cleanBar == 0 {
		cfg.Sun.CleanBar = -1e-9 // a cost of at most 0 (0 would mean the default)
	}
	if f.warmup == 0 {
		cfg.WarmupDays = -1 // none (0 would mean the default)
	}
	if f.cheaters == 0 {
		cfg.CheatShare = -1
	}
	for _, name := range f.policies {
		p, err := sim.ParsePolicy(strings.TrimSpace(name))
		if err != nil {
			return sim.Config{}, invalid(cmd, "--policies: %v", err)
		}
		cfg.Policies = append(cfg.Policies, p)
	}
	if f.traces != "" {
		if err := loadTraceDir(f.traces); err != nil {
			return sim.Config{}, invalid(cmd, "--traces %s: %v", f.traces, err)
		}
	}
	if f.profiles != "" {
		data, err := os.ReadFile(f.profiles)
		if err != nil {
			return sim.Config{}, invalid(cmd, "--profiles: %v", err)
		}
		if err := json.Unmarshal(data, &cfg.Profiles); err != nil {
			return sim.Config{}, invalid(cmd, "--profiles %s: want a JSON list of energy profiles: %v", f.profiles, err)
		}
		if len(cfg.Profiles) == 0 {
			return sim.Config{}, invalid(cmd, "--profiles %s: the list is empty", f.profiles)
		}
		for i := range cfg.Profiles {
			if err := cfg.Profiles[i].Validate(); err != nil {
				return sim.Config{}, invalid(cmd, "--profiles %s: profile %d: %v", f.profiles, i, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return sim.Config{}, invalid(cmd, "%v", err)
	}
	return cfg, nil
}

func newSimCmd(g *globals) *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate the network at internet scale on real energy traces",
		Long: `Simulate thousands of providers over days on the real carbon and PV traces:
churn (nodes off at night, crashes, leaves and joins), heterogeneous hardware,
cheating providers and the audit policy, jobs arriving with deadlines, and
DiLoCo rounds timed from each node's compute and link. The production
placement (market), energy model, reputation and round timing run unchanged,
and the money goes through the production ledger: jobs escrow their budget,
providers are leased with signed acceptances, rounds are receipted and
settled at the reputation multiplier, audits that catch a cheater dispute
its round (its pay withheld, its stake slashed), observers attest uptime.
Balances, stakes, payments and reputation in the report come from the
ledger, and its supply invariant is checked at the end.

The same world is replayed under each placement policy — sun (ours: admission
over the whole run, a node's grid weighed against its sun (--surplus-value,
--clean-bar), waiting for surplus within the deadline, elastic worker counts),
carbon-only, price-only and random — and the report compares them: surplus
share against the fleet's physical ceiling, attributional and displacement CO2
against the displacement floor (the least any placement could emit with 90%
of job energy from surplus), completion times and missed deadlines.

The Markdown report goes to stdout, the progress bar to stderr.`,
		Example: `  gridmind sim                                  # 10,000 nodes, 7 days from 21 June
  gridmind sim --start 2023-12-21 --utilisation 0.66 --json winter.json --svg winter.svg
  gridmind sim --traces ./mytraces --profiles ./sites.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			return runSim(cmd, cfg, &f, "gridmind sim")
		},
	}
	f.register(cmd, 10_000, 7)
	return cmd
}

// runSim runs the simulation with a progress bar and writes the reports.
func runSim(cmd *cobra.Command, cfg sim.Config, f *simFlags, title string) error {
	began, loadAtStart := time.Now(), loadAverage()
	if !f.quiet {
		bar := newProgressBar(cmd.ErrOrStderr(), began)
		cfg.Progress = bar.update
		defer bar.done()
	}
	rep, err := sim.RunContext(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "### %s\n\n", title)
	fmt.Fprintf(out, "- Command: `%s`\n", commandLine(cmd))
	fmt.Fprintf(out, "- Machine: %s\n", machine())
	fmt.Fprintf(out, "- Date: %s; load average at start: %s, at the end: %s; run took %s\n\n", began.UTC().Format("2006-01-02 15:04 MST"), loadAtStart, loadAverage(), time.Since(began).Round(100*time.Millisecond))
	fmt.Fprint(out, rep.Markdown())
	if f.jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonPath, data, 0o644); err != nil {
			return gridmind.E(gridmind.KindInternal, "sim", "--json: %w", err)
		}
	}
	if f.svgPath != "" {
		if err := os.WriteFile(f.svgPath, []byte(rep.SVG()), 0o644); err != nil {
			return gridmind.E(gridmind.KindInternal, "sim", "--svg: %w", err)
		}
	}
	return nil
}

// progressBar draws a one-line bar on a terminal's stderr.
type progressBar struct {
	w     io.Writer
	began time.Time
	mu    sync.Mutex
	last  time.Time
}

func newProgressBar(w io.Writer, began time.Time) *progressBar {
	return &progressBar{w: w, began: began}
}

func (b *progressBar) update(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if done < total && time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 30
	frac := float64(done) / float64(max(total, 1))
	filled := int(frac * width)
	eta := ""
	if frac > 0.02 && done < total {
		left := time.Duration(float64(time.Since(b.began)) * (1 - frac) / frac)
		eta = fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %s%s   ", strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*frac,
		time.Since(b.began).Round(time.Second), eta)
}

func (b *progressBar) done() { fmt.Fprintln(b.w) }

// loadTracesFromEnv registers the traces in $GRIDMIND_TRACES, if set.
func loadTracesFromEnv() {
	dir := os.Getenv("GRIDMIND_TRACES")
	if dir == "" {
		return
	}
	if err := loadTraceDir(dir); err != nil {
		fmt.Fprintf(os.Stderr, "gridmind: GRIDMIND_TRACES=%s: %v\n", dir, err)
		os.Exit(gridmind.ExitCode(gridmind.E(gridmind.KindInvalid, "traces", "%v", err)))
	}
}

var traceDirOnce sync.Map // dir → error, so a directory is registered once per process

// loadTraceDir registers every trace file in dir (docs/TRACES.md):
// carbon_<ZONE>.csv, solar_<name>.csv and load_<name>.csv, with zones.csv
// describing zones that are not embedded.
func loadTraceDir(dir string) error {
	if v, ok := traceDirOnce.Load(dir); ok {
		err, _ := v.(error)
		return err
	}
	err := loadTraceDirOnce(dir)
	traceDirOnce.Store(dir, err)
	return err
}

func loadTraceDirOnce(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	zones, err := readZonesCSV(filepath.Join(dir, "zones.csv"))
	if err != nil {
		return err
	}
	found := 0
	// Solar and load first: zones may name a solar trace.
	for _, pass := range []string{"solar_", "load_", "carbon_"} {
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasPrefix(name, pass) || !strings.HasSuffix(name, ".csv") {
				continue
			}
			id := strings.TrimSuffix(strings.TrimPrefix(name, pass), ".csv")
			kind := strings.TrimSuffix(pass, "_")
			file, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			traceName := id
			if kind == energy.KindCarbon {
				traceName = strings.ToLower(id)
			}
			tr, err := energy.ParseTraceCSV(file, kind, traceName)
			file.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if kind == energy.KindCarbon {
				z, ok := zones[id]
				if !ok {
					if _, embedded := energy.ZoneByID(id); !embedded {
						return fmt.Errorf("%s: zone %s is not embedded; describe it in zones.csv (id,name,utc_offset_min,southern,solar_trace,region)", name, id)
					}
					z = energy.Zone{ID: id}
				}
				err = energy.RegisterZone(z, tr)
			} else {
				err = energy.RegisterTrace(tr)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			found++
		}
	}
	if found == 0 {
		return fmt.Errorf("no carbon_<ZONE>.csv, solar_<name>.csv or load_<name>.csv files")
	}
	return nil
}

// readZonesCSV reads the optional zones.csv: id,name,utc_offset_min,southern,solar_trace,region.
func readZonesCSV(path string) (map[string]energy.Zone, error) {
	out := map[string]energy.Zone{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for n, line := range lines[1:] {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) != 6 {
			return nil, fmt.Errorf("zones.csv line %d: %d columns, want 6 (id,name,utc_offset_min,southern,solar_trace,region)", n+2, len(f))
		}
		off, err := strconv.Atoi(strings.TrimSpace(f[2]))
		if err != nil {
			return nil, fmt.Errorf("zones.csv line %d: utc_offset_min %q is not a whole number of minutes", n+2, f[2])
		}
		south, err := strconv.ParseBool(strings.TrimSpace(f[3]))
		if err != nil {
			return nil, fmt.Errorf("zones.csv line %d: southern %q: want true or false", n+2, f[3])
		}
		z := energy.Zone{ID: strings.TrimSpace(f[0]), Name: strings.TrimSpace(f[1]), UTCOffsetMinutes: off, Southern: south,
			SolarTrace: strings.TrimSpace(f[4]), Region: strings.TrimSpace(f[5])}
		out[z.ID] = z
	}
	return out, nil
}
