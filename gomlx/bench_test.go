package gomlx

import (
	stdcontext "context"
	"testing"

	"github.com/gridmind/gridmind/corpus"
)

// benchmarkTrain measures steps at the default geometry of kind; report
// tokens/s with -benchtime and the custom metric.
func benchmarkTrain(b *testing.B, kind string) {
	c, err := corpus.Default()
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(Config{Kind: kind})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	cfg := m.Config()
	src, err := corpus.NewBatches(c.Shard("bench", 0, 0, 1), cfg.Context, cfg.BatchSize, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.TrainSteps(stdcontext.Background(), 1, src); err != nil { // compile outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	stats, err := m.TrainSteps(stdcontext.Background(), b.N, src)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(stats.Tokens)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(stats.FLOPs/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkTrainMLP(b *testing.B)         { benchmarkTrain(b, MLP) }
func BenchmarkTrainTransformer(b *testing.B) { benchmarkTrain(b, Transformer) }
