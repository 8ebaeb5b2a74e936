package node

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's growth target (GOGC) of a
// node process when the environment does not set GOGC.
//
// An idle node's live Go heap is about 4 MB, most of it the tables that
// the libraries' package initialisers build; Go's default of 100 lets the
// heap grow to twice that between collections, and the process keeps
// those pages. At 50 an idle provider measured 2.5 MiB less resident
// memory for about 0.05 CPU-seconds a minute more garbage collection
// (docs/BENCHMARKS.md, Memory). A busy node collects more often in
// proportion; GOGC=100 in the environment restores Go's default.
const DefaultGCPercent = 50

// TuneGC sets the garbage collector of a node process: DefaultGCPercent
// unless GOGC is set. It changes the whole process, so the node command
// calls it once at start; programs that embed nodes (tests, the demo)
// keep their own settings.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
