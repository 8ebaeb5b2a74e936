package main

import (
	"strings"
	"testing"
)

// TestBenchMemoryFlags checks that bad flags are refused with a message
// naming the flag, before any node is started (the measurement itself
// takes minutes and lives in `gridmind bench memory`).
func TestBenchMemoryFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--minutes=0"}, "--minutes 0"},
		{[]string{"--minutes=-1"}, "--minutes -1"},
		{[]string{"--minutes=NaN"}, "--minutes NaN"},
		{[]string{"--minutes=2000"}, "--minutes 2000"},
		{[]string{"--sample=10ms"}, "--sample 10ms"},
		{[]string{"--nodes=1"}, "--nodes 1: want 2..50"},
		{[]string{"--nodes=3", "--validators=3"}, "--nodes 3: want 4..50"},
		{[]string{"--validators=0"}, "--validators 0"},
		{[]string{"--env=GOGC"}, `--env "GOGC": want KEY=VALUE`},
		{[]string{"--env==50"}, `--env "=50": want KEY=VALUE`},
		{[]string{"--compare-env=GOGC"}, `--compare-env "GOGC": want KEY=VALUE`},
		{[]string{"--http-port=29100"}, "overlaps --base-port"},
		// The compared devnet takes the five ports after this build's.
		{[]string{"--compare-env=GOGC=100", "--http-port=29107"}, "--http-port 29107..29116 overlaps --base-port 29100..29109"},
		{[]string{"--minutes=ten"}, "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, _, err := runGridmind(t, append([]string{"bench", "memory"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("a refused run printed a report:\n%s", out)
			}
		})
	}
}

func TestProcKiB(t *testing.T) {
	status := "Name:\tgridmind\nVmRSS:\t   52736 kB\nRssAnon:\t   13620 kB\nRssFile:\t   39116 kB\nThreads:\t9\n"
	got := procKiB(status)
	want := map[string]float64{"VmRSS": 52736, "RssAnon": 13620, "RssFile": 39116}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_memstats_heap_inuse_bytes Number of heap bytes that are in use.
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 8.110080e+06
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds_count 12
go_goroutines 97
`
	got, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got["go_memstats_heap_inuse_bytes"] != 8110080 || got["go_gc_duration_seconds_count"] != 12 || got["go_goroutines"] != 97 {
		t.Errorf("got %v", got)
	}
	if _, ok := got[`go_gc_duration_seconds{quantile="0.5"}`]; ok || len(got) != 3 {
		t.Errorf("labelled samples or comments were read: %v", got)
	}
}

func TestMedianMemory(t *testing.T) {
	ms := []processMemory{{RSS: 4}, {RSS: 1}, {RSS: 3}, {RSS: 2}}
	if got := medianMemory(ms); got.RSS != 2 {
		t.Errorf("median of 1..4 = %v, want the lower middle, 2", got.RSS)
	}
	if got := medianMemory(ms[:3]); got.RSS != 3 {
		t.Errorf("median of 4,1,3 = %v, want 3", got.RSS)
	}
	if got := medianMemory(nil); got.RSS != 0 {
		t.Errorf("median of none = %v, want 0", got.RSS)
	}
}

func TestProcMinorFaults(t *testing.T) {
	for _, c := range []struct {
		stat string
		want float64
	}{
		{"19618 (cat) R 19314 19314 4620 0 -1 4194304 126 0 0 0 0 0", 126},
		{"7 (gridmind (x) y) S 1 7 7 0 -1 4194560 5321 0 2 0 10 3", 5321}, // a command name with spaces and parentheses
		{"garbage", 0},
		{"1 (short) S 1 2", 0},
	} {
		if got := procMinorFaults(c.stat); got != c.want {
			t.Errorf("procMinorFaults(%q) = %v, want %v", c.stat, got, c.want)
		}
	}
}
