package powermeter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Where a reading came from.
const (
	SourceRAPL     = "rapl"      // CPU package energy counters
	SourceNVML     = "nvml"      // GPU power via nvidia-smi
	SourceRAPLNVML = "rapl+nvml" // both, summed: CPU packages and GPUs
	SourceConfig   = "config"    // nothing readable: the configured watts
)

// Defaults for the zero Meter.
const (
	DefaultPowercapDir  = "/sys/class/powercap"
	DefaultNvidiaSMI    = "nvidia-smi"
	DefaultRAPLInterval = 250 * time.Millisecond
	nvidiaSMITimeout    = 3 * time.Second
)

// Reading is one measurement of the device's draw.
type Reading struct {
	Watts  float64
	Source string
	// Detail says why a measured source was not used, when one was not
	// (for logs and `gridmind status`); empty for a measured reading.
	Detail string
}

// Meter reads device power. The zero value reads the real machine and
// falls back to 0 W; set ConfiguredWatts to the device's busy or idle draw.
type Meter struct {
	ConfiguredWatts float64
	PowercapDir     string        // default DefaultPowercapDir
	NvidiaSMI       string        // binary name or path, default DefaultNvidiaSMI; "-" disables NVML
	RAPLInterval    time.Duration // time between the two RAPL samples, default DefaultRAPLInterval
	DisableRAPL     bool
	Logger          *slog.Logger

	// Test hooks; nil means the real clock and timer.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error
}

// Read measures the device's draw now. It never fails: a source that
// cannot be read is skipped and the configured watts are the last resort.
// RAPL is tried first because gridmind's trainer runs on the CPU; when a
// GPU is also present its draw is added, since both are the device.
func (m *Meter) Read(ctx context.Context) Reading {
	var (
		watts   float64
		sources []string
		why     []string
	)
	if !m.DisableRAPL {
		if w, err := m.readRAPL(ctx); err == nil {
			watts += w
			sources = append(sources, SourceRAPL)
		} else {
			why = append(why, "rapl: "+err.Error())
		}
	}
	if m.NvidiaSMI != "-" {
		if w, err := m.readNVML(ctx); err == nil {
			watts += w
			sources = append(sources, SourceNVML)
		} else {
			why = append(why, "nvml: "+err.Error())
		}
	}
	if len(sources) > 0 {
		return Reading{Watts: watts, Source: strings.Join(sources, "+")}
	}
	r := Reading{Watts: m.ConfiguredWatts, Source: SourceConfig, Detail: strings.Join(why, "; ")}
	m.logger().Debug("power meter falls back to configured watts", "watts", r.Watts, "why", r.Detail)
	return r
}

func (m *Meter) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// raplDomain is one top-level RAPL zone (a CPU package or psys).
type raplDomain struct {
	energyPath string
	maxRangeUJ uint64
}

// raplDomains lists the top-level zones, "intel-rapl:N". Subzones
// ("intel-rapl:N:M", cores and uncore) are inside their package's count
// and are skipped so nothing is counted twice. AMD CPUs expose the same
// names through the same driver.
func (m *Meter) raplDomains() ([]raplDomain, error) {
	dir := m.PowercapDir
	if dir == "" {
		dir = DefaultPowercapDir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []raplDomain
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "intel-rapl:") || strings.Count(name, ":") != 1 {
			continue
		}
		d := raplDomain{energyPath: filepath.Join(dir, name, "energy_uj")}
		if max, err := readUint(filepath.Join(dir, name, "max_energy_range_uj")); err == nil {
			d.maxRangeUJ = max
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no intel-rapl:N zones in %s", dir)
	}
	return out, nil
}

func (m *Meter) readRAPL(ctx context.Context) (float64, error) {
	domains, err := m.raplDomains()
	if err != nil {
		return 0, err
	}
	now := m.now
	if now == nil {
		now = time.Now
	}
	wait := m.wait
	if wait == nil {
		wait = sleepCtx
	}
	interval := m.RAPLInterval
	if interval <= 0 {
		interval = DefaultRAPLInterval
	}
	first := make([]uint64, len(domains))
	for i, d := range domains {
		if first[i], err = readUint(d.energyPath); err != nil {
			return 0, err
		}
	}
	t0 := now()
	if err := wait(ctx, interval); err != nil {
		return 0, err
	}
	var joules float64
	for i, d := range domains {
		second, err := readUint(d.energyPath)
		if err != nil {
			return 0, err
		}
		delta, err := counterDelta(first[i], second, d.maxRangeUJ)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", d.energyPath, err)
		}
		joules += float64(delta) / 1e6
	}
	elapsed := now().Sub(t0).Seconds()
	if elapsed <= 0 {
		return 0, errors.New("clock did not advance between samples")
	}
	return joules / elapsed, nil
}

// counterDelta is the energy between two samples of a counter that wraps
// at maxRange (the counter counts 0..maxRange).
func counterDelta(a, b, maxRange uint64) (uint64, error) {
	if b >= a {
		return b - a, nil
	}
	if maxRange == 0 || a > maxRange {
		return 0, fmt.Errorf("counter went back from %d to %d with no known range", a, b)
	}
	return maxRange - a + b + 1, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Meter) readNVML(ctx context.Context) (float64, error) {
	bin := m.NvidiaSMI
	if bin == "" {
		bin = DefaultNvidiaSMI
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, nvidiaSMITimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--query-gpu=power.draw", "--format=csv,noheader,nounits")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI sums the per-GPU lines of
// `nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits`.
// GPUs that report "[N/A]" or "[Not Supported]" are skipped; if none
// reports a number the output is an error.
func ParseNvidiaSMI(out []byte) (float64, error) {
	var sum float64
	var n int
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "[") {
			continue
		}
		v, err := strconv.ParseFloat(line, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return 0, fmt.Errorf("nvidia-smi power.draw line %q is not a number of watts", shorten(line))
		}
		sum += v
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("nvidia-smi reported no power.draw values (output %q)", shorten(strings.TrimSpace(string(out))))
	}
	return sum, nil
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
