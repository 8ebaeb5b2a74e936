package gomlx

import (
	"bytes"
	stdcontext "context"
	"math"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
)

// tinyTransformer keeps transformer tests fast; the default geometry is
// exercised by the benchmarks and the slow loss test.
var tinyTransformer = Config{Kind: Transformer, Context: 8, BatchSize: 4, Dim: 16, Layers: 1, Heads: 2}

// smallConfigs are one of each kind, small enough for unit tests.
var smallConfigs = []Config{
	{Kind: MLP, Context: 16, BatchSize: 8, EmbedDim: 8, Hidden: 32},
	tinyTransformer,
}

func defaultCorpus(t testing.TB) *corpus.Corpus {
	t.Helper()
	c, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newModel(t testing.TB, cfg Config) *Model {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// batches is a fresh seeded source for m's geometry.
func batches(t testing.TB, m *Model, seed int64) *corpus.Batches {
	t.Helper()
	cfg := m.Config()
	src, err := corpus.NewBatches(defaultCorpus(t).Shard("test", 0, 0, 1), cfg.Context, cfg.BatchSize, seed)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func train(t testing.TB, m *Model, n int, src gridmind.BatchSource) gridmind.TrainStats {
	t.Helper()
	stats, err := m.TrainSteps(stdcontext.Background(), n, src)
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

func params(t testing.TB, m *Model) []float32 {
	t.Helper()
	p, err := m.Params()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func saved(t testing.TB, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bitwiseEqual compares float32 vectors bit for bit, as a hash of them
// would (-0 differs from 0, NaN equals the same NaN).
func bitwiseEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
