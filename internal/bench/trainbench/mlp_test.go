package trainbench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
)

// TestBenchTrainMLP runs Run on the built-in MLP when
// GRIDMIND_BENCH_TRAIN is set; it takes many minutes. Sizes come from the
// environment so a small machine can run a small version:
//
//	GRIDMIND_BENCH_TRAIN=1 GRIDMIND_BENCH_STEPS=4000 GRIDMIND_BENCH_K=4,8 \
//	GRIDMIND_BENCH_H=1,10,50,250,500 GRIDMIND_BENCH_HIDDEN=64 GRIDMIND_BENCH_EMBED=8 \
//	GRIDMIND_BENCH_CONTEXT=16 GRIDMIND_BENCH_BATCH=16 GRIDMIND_BENCH_OUT=/tmp/bench.md \
//	go test -run TestBenchTrainMLP -timeout 0 -v ./internal/bench/trainbench
func TestBenchTrainMLP(t *testing.T) {
	if os.Getenv("GRIDMIND_BENCH_TRAIN") == "" {
		t.Skip("set GRIDMIND_BENCH_TRAIN=1 to run the training benchmark (minutes to hours)")
	}
	num := func(name string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
			return v
		}
		return def
	}
	list := func(name string, def []int) []int {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		var out []int
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, v)
		}
		return out
	}
	c, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := gomlx.Config{
		Kind: gomlx.MLP, Seed: 1,
		Context:   num("GRIDMIND_BENCH_CONTEXT", 32),
		BatchSize: num("GRIDMIND_BENCH_BATCH", 32),
		EmbedDim:  num("GRIDMIND_BENCH_EMBED", 16),
		Hidden:    num("GRIDMIND_BENCH_HIDDEN", 256),
	}
	eval, err := c.EvalBatches(cfg.Context, 64, 8)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		NewTrainer: func(_ int64, lr float64) (gridmind.Trainer, error) {
			c := cfg
			c.LearningRate = lr
			return gomlx.New(c, slog.New(slog.DiscardHandler))
		},
		Batches: func(_ int64, workers, worker int, round uint64) gridmind.BatchSource {
			src, err := corpus.NewBatches(c.Shard("bench", int(round), worker, workers), cfg.Context, cfg.BatchSize, int64(round)*7919+int64(worker))
			if err != nil {
				panic(err)
			}
			return src
		},
		EvalBatches:      eval,
		Workers:          list("GRIDMIND_BENCH_K", []int{4, 8}),
		InnerSteps:       list("GRIDMIND_BENCH_H", []int{1, 10, 50, 250, 500}),
		TotalSteps:       num("GRIDMIND_BENCH_STEPS", 4000),
		ThroughputParams: num("GRIDMIND_BENCH_THROUGHPUT_PARAMS", 1<<20),
	}
	began := time.Now()
	rep, err := Run(context.Background(), opts, func(line string) { t.Log(line) })
	if err != nil {
		t.Fatal(err)
	}
	md := fmt.Sprintf("Model: MLP, context %d, embed %d, hidden %d, batch %d, AdamW defaults; data: embedded corpus; total run %s.\n\n%s",
		cfg.Context, cfg.EmbedDim, cfg.Hidden, cfg.BatchSize, time.Since(began).Round(time.Second), rep.Markdown())
	t.Log("\n" + md)
	if out := os.Getenv("GRIDMIND_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
