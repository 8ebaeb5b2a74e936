package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ReleaseStartupPages unmaps, from this process only, the pages of the
// gridmind executable's read-only mappings (code, read-only data and the
// runtime's pclntab) and returns how many bytes were mapped before.
//
// Why: the package initialisers of ~1,000 linked packages touch code and
// tables spread over the whole 50 MB of them, and the kernel maps a file
// page with its neighbours (fault-around, whole large folios), so a node
// that has just started has ~45 MiB of the binary mapped, most of which it
// never runs again. MADV_DONTNEED on an unmodified private file mapping
// only drops this process's page table entries: the pages stay in the
// page cache, and the next access maps them again with a minor fault, so
// behaviour cannot change; what an idle node keeps mapped is then what it
// uses. docs/BENCHMARKS.md (Memory) shows the pages stay out over 10 idle
// minutes.
//
// Mappings with private (copied-on-write) pages are skipped: dropping
// those would lose their contents. Writable mappings are never touched.
// GRIDMIND_KEEP_STARTUP_PAGES=1 turns it off, for comparisons.
func ReleaseStartupPages() (int64, error) {
	if os.Getenv("GRIDMIND_KEEP_STARTUP_PAGES") == "1" {
		return 0, nil
	}
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("release startup pages: %w", err)
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("release startup pages: no inode for /proc/self/exe")
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("release startup pages: %w", err)
	}
	var released int64
	for _, m := range readOnlyMappings(smaps, st.Ino) {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("release startup pages: madvise %#x-%#x: %w", m.start, m.end, errno)
		}
		released += m.rss
	}
	return released, nil
}

// mapping is one /proc/PID/smaps entry that ReleaseStartupPages may drop.
type mapping struct {
	start, end uintptr
	rss        int64 // bytes mapped
}

// readOnlyMappings are the private, read-only mappings of the file with
// inode ino that hold no anonymous (copied) pages, from smaps' text.
func readOnlyMappings(smaps []byte, ino uint64) []mapping {
	var (
		out []mapping
		cur *mapping // the entry being read, nil if it does not qualify
	)
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if start, end, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 && !strings.HasSuffix(f[0], ":") {
			// A header: "start-end perms offset dev inode [path]".
			if cur != nil {
				out = append(out, *cur)
			}
			cur = nil
			s, err1 := strconv.ParseUint(start, 16, 64)
			e, err2 := strconv.ParseUint(end, 16, 64)
			inode, err3 := strconv.ParseUint(f[4], 10, 64)
			perms := f[1]
			if err1 == nil && err2 == nil && err3 == nil && inode == ino && len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' && e > s {
				cur = &mapping{start: uintptr(s), end: uintptr(e)}
			}
			continue
		}
		if cur == nil || len(f) < 2 {
			continue
		}
		kib, err := strconv.ParseInt(f[1], 10, 64)
		switch {
		case err != nil:
		case f[0] == "Rss:":
			cur.rss = kib << 10
		case f[0] == "Anonymous:" && kib != 0:
			cur = nil // copied pages: their contents are not the file's
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}
