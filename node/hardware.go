package node

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// DetectHardware reports CPU cores, memory (from /proc/meminfo) and GPUs.
// GPUs are read through nvidia-smi, the command-line face of NVML, when it
// is installed; gridmind is built without cgo, so it does not dlopen NVML.
func DetectHardware(ctx context.Context) gridmind.Hardware {
	hw := gridmind.Hardware{CPUCores: runtime.NumCPU(), MemoryBytes: memTotal()}
	hw.GPUs = detectGPUs(ctx)
	return hw
}

func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

func detectGPUs(ctx context.Context) []gridmind.GPU {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil
	}
	return parseNvidiaSMI(out)
}

// parseNvidiaSMI reads lines like "NVIDIA H100 80GB HBM3, 81559" (MiB).
func parseNvidiaSMI(out []byte) []gridmind.GPU {
	var gpus []gridmind.GPU
	for _, line := range bytes.Split(out, []byte("\n")) {
		name, mem, ok := strings.Cut(string(line), ",")
		if !ok {
			continue
		}
		mib, err := strconv.ParseUint(strings.TrimSpace(mem), 10, 64)
		if err != nil {
			continue
		}
		gpus = append(gpus, gridmind.GPU{Name: strings.TrimSpace(name), MemoryBytes: mib << 20})
	}
	return gpus
}

var (
	throughputOnce sync.Once
	throughputVal  float64
)

// MeasureThroughput runs a short float32 matrix-multiply benchmark
// (~200 ms, on one core) and returns GFLOPS. It is measured once per
// process: an in-process network of many nodes shares the same CPU.
func MeasureThroughput() float64 {
	throughputOnce.Do(func() { throughputVal = matmulGFLOPS(200 * time.Millisecond) })
	return throughputVal
}

func matmulGFLOPS(budget time.Duration) float64 {
	const n = 96
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
		b[i] = float32(i%5) * 0.2
	}
	start := time.Now()
	var flops float64
	for time.Since(start) < budget {
		for i := 0; i < n; i++ {
			ci := c[i*n : (i+1)*n]
			for k := 0; k < n; k++ {
				aik := a[i*n+k]
				bk := b[k*n : (k+1)*n]
				for j := range ci {
					ci[j] += aik * bk[j]
				}
			}
		}
		flops += 2 * n * n * n
	}
	return flops / time.Since(start).Seconds() / 1e9
}
