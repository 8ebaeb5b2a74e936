package powermeter

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeRAPL builds a powercap directory with two packages and a subzone
// that must not be counted, and returns a wait hook that advances the
// counters by the given microjoules and a fake clock by one second.
func fakeRAPL(t *testing.T, m *Meter, start, step [2]uint64, maxRange uint64) {
	dir := t.TempDir()
	for i := range 2 {
		zone := filepath.Join(dir, "intel-rapl:"+string(rune('0'+i)))
		write(t, filepath.Join(zone, "energy_uj"), strconv.FormatUint(start[i], 10)+"\n")
		write(t, filepath.Join(zone, "max_energy_range_uj"), strconv.FormatUint(maxRange, 10)+"\n")
	}
	// A core subzone that reads enormous values: counting it would show.
	write(t, filepath.Join(dir, "intel-rapl:0:0", "energy_uj"), "1\n")
	write(t, filepath.Join(dir, "intel-rapl:0:0", "max_energy_range_uj"), "100\n")
	clock := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m.PowercapDir = dir
	m.now = func() time.Time { return clock }
	m.wait = func(ctx context.Context, d time.Duration) error {
		for i := range 2 {
			next := (start[i] + step[i]) % (maxRange + 1)
			write(t, filepath.Join(dir, "intel-rapl:"+string(rune('0'+i)), "energy_uj"), strconv.FormatUint(next, 10)+"\n")
		}
		write(t, filepath.Join(dir, "intel-rapl:0:0", "energy_uj"), "99\n")
		clock = clock.Add(time.Second)
		return nil
	}
}

func TestRAPL(t *testing.T) {
	tests := []struct {
		name        string
		start, step [2]uint64
		maxRange    uint64
		want        float64
	}{
		{"two packages", [2]uint64{1_000_000, 5_000_000}, [2]uint64{40_000_000, 25_500_000}, 262143328850, 65.5},
		{"counter wraps", [2]uint64{999_000_000, 0}, [2]uint64{30_000_000, 10_000_000}, 1_000_000_000 - 1, 40},
	}
	for _, tt := range tests {
		m := &Meter{ConfiguredWatts: 7, NvidiaSMI: "-"}
		fakeRAPL(t, m, tt.start, tt.step, tt.maxRange)
		r := m.Read(context.Background())
		if r.Source != SourceRAPL || r.Watts != tt.want {
			t.Errorf("%s: got %+v, want %v W from rapl", tt.name, r, tt.want)
		}
	}
}

func TestFallbackToConfig(t *testing.T) {
	// An empty powercap directory, an unparsable counter, and no nvidia-smi:
	// every case ends at the configured watts, saying why.
	garbage := t.TempDir()
	write(t, filepath.Join(garbage, "intel-rapl:0", "energy_uj"), "not a number\n")
	for _, dir := range []string{t.TempDir(), garbage, filepath.Join(t.TempDir(), "missing")} {
		m := &Meter{ConfiguredWatts: 240, PowercapDir: dir, NvidiaSMI: filepath.Join(t.TempDir(), "no-nvidia-smi")}
		r := m.Read(context.Background())
		if r.Source != SourceConfig || r.Watts != 240 {
			t.Errorf("%s: got %+v, want 240 W from config", dir, r)
		}
		if !strings.Contains(r.Detail, "rapl:") || !strings.Contains(r.Detail, "nvml:") {
			t.Errorf("%s: detail %q does not say why each source failed", dir, r.Detail)
		}
	}
}

// TestThisMachine runs the real meter with the real paths: whatever this
// machine has, the reading is one of the known sources and a sane number.
func TestThisMachine(t *testing.T) {
	r := (&Meter{ConfiguredWatts: 123, RAPLInterval: 20 * time.Millisecond}).Read(context.Background())
	switch r.Source {
	case SourceConfig:
		if r.Watts != 123 {
			t.Errorf("config reading %v W, want 123", r.Watts)
		}
	case SourceRAPL, SourceNVML, SourceRAPLNVML:
		if r.Watts <= 0 || r.Watts > 100_000 {
			t.Errorf("%s reading %v W is not plausible", r.Source, r.Watts)
		}
	default:
		t.Errorf("unknown source %q", r.Source)
	}
	t.Logf("this machine: %.1f W from %s (%s)", r.Watts, r.Source, r.Detail)
}

func TestNvidiaSMIBinary(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to run a fake nvidia-smi")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "nvidia-smi")
	// The fake checks it is asked the right question, as the real one would refuse another.
	script := "#!/bin/sh\n" +
		`[ "$1" = "--query-gpu=power.draw" ] && [ "$2" = "--format=csv,noheader,nounits" ] || { echo "bad args: $*" >&2; exit 2; }` + "\n" +
		"printf '71.25\\n[N/A]\\n68.50\\n'\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Meter{ConfiguredWatts: 1, NvidiaSMI: fake, PowercapDir: t.TempDir()}
	if r := m.Read(context.Background()); r.Source != SourceNVML || r.Watts != 139.75 {
		t.Errorf("got %+v, want 139.75 W from nvml", r)
	}
	// With RAPL readable too, both are summed.
	fakeRAPL(t, m, [2]uint64{0, 0}, [2]uint64{10_000_000, 0}, 1<<40)
	if r := m.Read(context.Background()); r.Source != SourceRAPLNVML || r.Watts != 149.75 {
		t.Errorf("got %+v, want 149.75 W from rapl+nvml", r)
	}
	failing := filepath.Join(dir, "broken-smi")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m = &Meter{ConfiguredWatts: 5, NvidiaSMI: failing, DisableRAPL: true}
	if r := m.Read(context.Background()); r.Source != SourceConfig || !strings.Contains(r.Detail, "NVIDIA-SMI has failed") {
		t.Errorf("got %+v, want config with the failure in the detail", r)
	}
}

func TestParseNvidiaSMI(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"71.23\n", 71.23, false},
		{" 71.25 \n68.50\n", 139.75, false},
		{"[N/A]\n55\n", 55, false},
		{"[Not Supported]\n", 0, true},
		{"", 0, true},
		{"71.2 W\n", 0, true},
		{"-3\n", 0, true},
		{"NaN\n", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseNvidiaSMI([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseNvidiaSMI(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCounterDelta(t *testing.T) {
	if d, err := counterDelta(90, 10, 99); err != nil || d != 20 {
		t.Errorf("wrap: %d %v, want 20", d, err)
	}
	if _, err := counterDelta(90, 10, 0); err == nil {
		t.Error("backwards counter with unknown range accepted")
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	f.Add([]byte("71.23\n"))
	f.Add([]byte("[N/A]\n12\n"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseNvidiaSMI(data)
		if err == nil && (w < 0 || w != w) {
			t.Fatalf("accepted %q as %v W", data, w)
		}
	})
}
