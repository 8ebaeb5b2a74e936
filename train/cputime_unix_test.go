//go:build unix

package train

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used: on shared, loaded
// cores a benchmark's wall time mostly measures the other tenants.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
