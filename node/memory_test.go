package node

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 4096
	// The user's settings win (t.Setenv restores the environment afterwards).
	t.Setenv("GOGC", "80")
	t.Setenv("GODEBUG", "memprofilerate=4096")
	TuneRuntime()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, TuneRuntime changed the GC percent to %d", got)
	}
	if runtime.MemProfileRate != 4096 {
		t.Errorf("with GODEBUG memprofilerate set, TuneRuntime changed MemProfileRate to %d", runtime.MemProfileRate)
	}
	os.Unsetenv("GOGC")
	os.Unsetenv("GODEBUG")
	TuneRuntime()
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("without GOGC, GC percent %d, want %d", got, DefaultGCPercent)
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("without GODEBUG memprofilerate, MemProfileRate %d, want 0", runtime.MemProfileRate)
	}
}
