package gomlx

import (
	stdcontext "context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind/corpus"
)

// The measurements behind DefaultConfig and the numbers in the report.
// They take minutes, so they only run when asked:
//
//	GRIDMIND_MEASURE=1 go test -run TestMeasure -v -timeout 30m ./gomlx
//
// GRIDMIND_MEASURE_KINDS, _STEPS and _LR narrow or vary them.
func measuring(t *testing.T) {
	if os.Getenv("GRIDMIND_MEASURE") == "" {
		t.Skip("measurement; set GRIDMIND_MEASURE=1 to run")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestMeasureSpeedAndLoss trains each kind alone at its defaults and
// reports speed and held-out loss.
func TestMeasureSpeedAndLoss(t *testing.T) {
	measuring(t)
	c := defaultCorpus(t)
	kinds := []string{MLP, Transformer}
	if k := os.Getenv("GRIDMIND_MEASURE_KINDS"); k != "" {
		kinds = []string{k}
	}
	for _, kind := range kinds {
		cfg := Config{Kind: kind}
		if lr, err := strconv.ParseFloat(os.Getenv("GRIDMIND_MEASURE_LR"), 64); err == nil {
			cfg.LearningRate = lr
		}
		cfg.BatchSize = envInt("GRIDMIND_MEASURE_BATCH", 0)
		m := newModel(t, cfg)
		cfg = m.Config()
		eval, err := c.EvalBatches(cfg.Context, 64, 16)
		if err != nil {
			t.Fatal(err)
		}
		src := batches(t, m, 1)
		before, _ := m.Evaluate(stdcontext.Background(), eval)
		train(t, m, 1, src) // compile
		steps := envInt("GRIDMIND_MEASURE_STEPS", map[string]int{MLP: 300, Transformer: 60}[kind])
		start := time.Now()
		stats := train(t, m, steps, src)
		elapsed := time.Since(start)
		after, _ := m.Evaluate(stdcontext.Background(), eval)
		t.Logf("%s lr=%g batch=%d context=%d params=%d: %d steps in %.1fs = %.2f steps/s, %.0f tokens/s, %.2f GFLOP/s; eval loss %.3f -> %.3f (train %.3f)",
			kind, cfg.LearningRate, cfg.BatchSize, cfg.Context, m.NumParams(), stats.Steps, elapsed.Seconds(),
			float64(stats.Steps)/elapsed.Seconds(), float64(stats.Tokens)/elapsed.Seconds(),
			stats.FLOPs/elapsed.Seconds()/1e9, before, after, stats.Loss)
	}
}

// TestMeasureFourWorkers runs four MLPs at once for a fixed wall time on
// the shards of four workers, as `train local --workers 4` will, and
// reports each one's steps and held-out loss (no averaging: that is
// DiLoCo's job, outside this package).
func TestMeasureFourWorkers(t *testing.T) {
	measuring(t)
	c := defaultCorpus(t)
	seconds := envInt("GRIDMIND_MEASURE_SECONDS", 60)
	const workers = 4
	cfg := Config{Kind: MLP}
	models := make([]*Model, workers)
	for i := range models {
		models[i] = newModel(t, cfg)
	}
	cfg = models[0].Config()
	evalSet, err := c.EvalBatches(cfg.Context, 64, 16)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := models[0].Evaluate(stdcontext.Background(), evalSet)
	ctx, cancel := stdcontext.WithTimeout(stdcontext.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]string, workers)
	for i, m := range models {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, err := corpus.NewBatches(c.Shard("measure", 0, i, workers), cfg.Context, cfg.BatchSize, int64(i))
			if err != nil {
				results[i] = err.Error()
				return
			}
			stats, _ := m.TrainSteps(ctx, 1<<30, src)
			results[i] = fmt.Sprintf("%d steps, %d tokens", stats.Steps, stats.Tokens)
		}()
	}
	wg.Wait()
	for i, m := range models {
		after, _ := m.Evaluate(stdcontext.Background(), evalSet)
		t.Logf("worker %d: %s in %ds, eval loss %.3f -> %.3f", i, results[i], seconds, before, after)
	}
}
