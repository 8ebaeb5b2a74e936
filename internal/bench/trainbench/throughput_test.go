package trainbench

import (
	"context"
	"log/slog"
	"testing"

	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// BenchmarkAllReduceInMemory is the "in memory" row of gridmind bench
// train's all-reduce throughput (K = 4, a 16 MiB float32 vector, int8 on
// the wire) on its own: each op is four rounds through the Coordinator
// on the in-memory transport, the first one a warm-up. It reports the
// seconds of one worker's all-reduce and the bytes it sent per second.
func BenchmarkAllReduceInMemory(b *testing.B) {
	const k, n = 4, 4 << 20
	opts := Options{BlockSize: train.DefaultBlockSize, ThroughputParams: n, Logger: slog.New(slog.DiscardHandler)}
	var seconds, perSecond float64
	for b.Loop() {
		mem := dilocotest.NewMemNetwork[diloco.Handler]()
		_, ids := benchKeys(k)
		row, err := allReduceThroughput(context.Background(), opts, k, n, "in-memory", func(i int) (diloco.Transport, error) { return mem.Join(ids[i]), nil })
		if err != nil {
			b.Fatal(err)
		}
		seconds += row.Seconds
		perSecond += row.BytesPerSec
	}
	b.ReportMetric(seconds/float64(b.N), "s/allreduce")
	b.ReportMetric(perSecond/float64(b.N)/(1<<20), "MiB/s/worker")
}
