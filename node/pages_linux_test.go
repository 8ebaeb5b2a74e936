package node

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	smaps := `00400000-01a16000 r-xp 00000000 fe:00 42                           /bin/gridmind
Size:              22616 kB
Rss:               20504 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01a16000-034c3000 r--p 01616000 fe:00 42                           /bin/gridmind
Rss:               22964 kB
Anonymous:             0 kB
034c3000-036d0000 rw-p 030c3000 fe:00 42                           /bin/gridmind
Rss:                1076 kB
Anonymous:           800 kB
036d0000-036d1000 r--p 00000000 fe:00 42                           /bin/gridmind
Rss:                   4 kB
Anonymous:             4 kB
7f0084050000-7f00841a6000 r-xp 00026000 fe:00 77                     /usr/lib/libc.so.6
Rss:                 896 kB
Anonymous:             0 kB
7f0083e05000-7f0083ec7000 rw-p 00000000 00:00 0 
Rss:                 612 kB
Anonymous:           612 kB
`
	got := readOnlyMappings([]byte(smaps), 42)
	want := []mapping{
		{start: 0x400000, end: 0x1a16000, rss: 20504 << 10},
		{start: 0x1a16000, end: 0x34c3000, rss: 22964 << 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mappings %+v, want %+v (the writable one, the one with copied pages and other files' are kept)", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := readOnlyMappings([]byte("garbage\n\n0-0 r-xp x y z\n"), 42); len(got) != 0 {
		t.Errorf("malformed smaps gave %+v, want none", got)
	}
}

// rssFileKiB is this process's RssFile from /proc/self/status.
func rssFileKiB(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The test binary drops its own start-up pages and goes on running: the
// code it runs next faults back in.
func TestReleaseStartupPages(t *testing.T) {
	before := rssFileKiB(t)
	released, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKiB(t)
	if released <= 0 || after >= before {
		t.Errorf("released %d bytes; RssFile %d kB before, %d kB after: want fewer pages mapped", released, before, after)
	}
	// Code and tables the test uses from here on are mapped again on use.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Errorf("after the release: %q", got)
	}
	t.Setenv("GRIDMIND_KEEP_STARTUP_PAGES", "1")
	if released, err := ReleaseStartupPages(); released != 0 || err != nil {
		t.Errorf("with GRIDMIND_KEEP_STARTUP_PAGES=1: released %d, %v; want nothing", released, err)
	}
}
