package node

import (
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// DefaultGCPercent is the garbage collector's growth target (GOGC) of a
// node process when the environment does not set GOGC.
//
// An idle node's live Go heap is about 3.7 MB, two thirds of it the
// tables that the libraries' package initialisers build (protobuf
// registries above all); Go's default of 100 lets the heap grow to about
// twice that between collections, and the process keeps those pages. At 50
// an idle provider measured 3.7 MiB less anonymous memory over 10 minutes
// for no measurable extra CPU (docs/BENCHMARKS.md, Memory). A busy node
// collects more often in proportion; GOGC=100 in the environment restores
// Go's default.
const DefaultGCPercent = 50

// TuneRuntime sets the Go runtime of a node process for a long and mostly
// idle life:
//   - the garbage collector at DefaultGCPercent unless GOGC is set;
//   - no heap profiling unless GODEBUG sets memprofilerate: a node serves
//     no profiles, and the runtime's table of sampled allocation stacks
//     only grows.
//
// It changes the whole process, so the node command calls it once at
// start; programs that embed nodes (tests, the demo) keep their settings.
func TuneRuntime() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
		runtime.MemProfileRate = 0
	}
}
