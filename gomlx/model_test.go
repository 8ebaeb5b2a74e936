package gomlx

import (
	stdcontext "context"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
)

var _ gridmind.Trainer = (*Model)(nil)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"mlp defaults", Config{Kind: MLP}, true},
		{"transformer defaults", Config{Kind: Transformer}, true},
		{"unknown kind", Config{Kind: "rnn"}, false},
		{"empty kind", Config{}, false},
		{"negative context", Config{Kind: MLP, Context: -1}, false},
		{"huge context", Config{Kind: MLP, Context: corpus.MaxContext + 1}, false},
		{"vocab of one", Config{Kind: MLP, VocabSize: 1}, false},
		{"negative learning rate", Config{Kind: MLP, LearningRate: -1}, false},
		{"NaN learning rate", Config{Kind: MLP, LearningRate: math.NaN()}, false},
		{"heads do not divide dim", Config{Kind: Transformer, Dim: 30, Heads: 4}, false},
		{"huge hidden", Config{Kind: MLP, Hidden: 1 << 20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				m.Close()
				return
			}
			if gridmind.KindOf(err) != gridmind.KindInvalid {
				t.Fatalf("got %v, want an invalid-config error", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	for _, kind := range []string{MLP, Transformer} {
		m := newModel(t, Config{Kind: kind})
		if got, want := m.Config(), DefaultConfig(kind); got != want {
			t.Errorf("%s: effective config %+v, want %+v", kind, got, want)
		}
	}
}

// TestParamLayout checks what DiLoCo relies on: the flat vector is the
// model's weights only, in sorted scope order, and its size does not
// change when the optimizer creates its state.
func TestParamLayout(t *testing.T) {
	for _, cfg := range smallConfigs {
		m := newModel(t, cfg)
		layout := m.ParamLayout()
		total := 0
		for i, p := range layout {
			if !strings.HasPrefix(p.Name, "/model/") {
				t.Errorf("%s: %s is not a model weight", cfg.Kind, p.Name)
			}
			if i > 0 && layout[i-1].Name >= p.Name {
				t.Errorf("%s: %s listed after %s", cfg.Kind, p.Name, layout[i-1].Name)
			}
			size := 1
			for _, d := range p.Dims {
				size *= d
			}
			total += size
		}
		if total != m.NumParams() || len(params(t, m)) != total {
			t.Fatalf("%s: layout sums to %d, NumParams %d", cfg.Kind, total, m.NumParams())
		}
		train(t, m, 1, batches(t, m, 1))
		if m.NumParams() != total {
			t.Errorf("%s: NumParams changed from %d to %d after the optimizer ran", cfg.Kind, total, m.NumParams())
		}
	}
}

func TestParamCounts(t *testing.T) {
	tests := []struct {
		kind string
		want int
	}{
		// 98*16 + 512*256+256 + 256*256+256 + 256*98+98
		{MLP, 223874},
		// token 98*64, position 32*64, 2 blocks of (4 projections 4*(64*64+64), MLP 64*256+256+256*64+64,
		// two norms 4*64), final norm 2*64, output 64*98+98.
		{Transformer, 114786},
	}
	for _, tt := range tests {
		if got := newModel(t, Config{Kind: tt.kind}).NumParams(); got != tt.want {
			t.Errorf("%s: %d params, want %d", tt.kind, got, tt.want)
		}
	}
}

func TestSetParams(t *testing.T) {
	for _, cfg := range smallConfigs {
		m := newModel(t, cfg)
		p := params(t, m)
		for i := range p {
			p[i] = float32(i%7) * 0.01
		}
		if err := m.SetParams(p); err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), p...)
		p[0] = 42 // SetParams must have copied
		if got := params(t, m); !bitwiseEqual(got, want) {
			t.Fatalf("%s: Params after SetParams differ", cfg.Kind)
		}
		for _, n := range []int{0, len(p) - 1, len(p) + 1} {
			if err := m.SetParams(make([]float32, n)); gridmind.KindOf(err) != gridmind.KindInvalid {
				t.Errorf("%s: SetParams of %d values: %v, want invalid", cfg.Kind, n, err)
			}
		}
	}
}

// TestSetParamsKeepsOptimizerState: after the same SetParams, a model with
// AdamW history takes a different step than a fresh one, and two models
// with the same history take the same step.
func TestSetParamsKeepsOptimizerState(t *testing.T) {
	cfg := smallConfigs[0]
	trained1, trained2, fresh := newModel(t, cfg), newModel(t, cfg), newModel(t, cfg)
	train(t, trained1, 3, batches(t, trained1, 5))
	train(t, trained2, 3, batches(t, trained2, 5))
	start := params(t, fresh)
	for _, m := range []*Model{trained1, trained2, fresh} {
		if err := m.SetParams(start); err != nil {
			t.Fatal(err)
		}
		train(t, m, 1, batches(t, m, 9))
	}
	a, b, c := params(t, trained1), params(t, trained2), params(t, fresh)
	if !bitwiseEqual(a, b) {
		t.Error("models with the same history diverged after SetParams")
	}
	if bitwiseEqual(a, c) {
		t.Error("SetParams reset the optimizer state: trained and fresh models took the same step")
	}
}

func TestDeterminism(t *testing.T) {
	for _, cfg := range smallConfigs {
		a, b := newModel(t, cfg), newModel(t, cfg)
		if !bitwiseEqual(params(t, a), params(t, b)) {
			t.Fatalf("%s: same seed, different initial weights", cfg.Kind)
		}
		sa, sb := train(t, a, 5, batches(t, a, 3)), train(t, b, 5, batches(t, b, 3))
		if !bitwiseEqual(params(t, a), params(t, b)) || sa.Loss != sb.Loss {
			t.Fatalf("%s: same seed and batches, different weights after training", cfg.Kind)
		}
		if string(saved(t, a)) != string(saved(t, b)) {
			t.Fatalf("%s: optimizer state differs between identical runs", cfg.Kind)
		}
		other := cfg
		other.Seed = 99
		if bitwiseEqual(params(t, a), params(t, newModel(t, other))) {
			t.Fatalf("%s: different seeds gave the same weights", cfg.Kind)
		}
	}
}

// TestConcurrentModelsDoNotDeadlockOrDiverge trains four models at once on
// the shared backend, as four in-process workers do, and checks that they
// finish and that a run under that load equals a run alone.
func TestConcurrentModelsDoNotDeadlockOrDiverge(t *testing.T) {
	cfg := Config{Kind: MLP, BatchSize: 32}
	alone := newModel(t, cfg)
	train(t, alone, 20, batches(t, alone, 1))
	want := params(t, alone)

	const workers = 4
	models := make([]*Model, workers)
	for i := range models {
		models[i] = newModel(t, cfg)
	}
	errs := make(chan error, workers)
	for i, m := range models {
		go func() {
			_, err := m.TrainSteps(stdcontext.Background(), 20, batches(t, m, int64(1+i%2)))
			errs <- err
		}()
	}
	deadline := time.After(90 * time.Second)
	for range workers {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("concurrent training did not finish in 90s: deadlock in the backend?")
		}
	}
	for i, m := range models {
		same := bitwiseEqual(params(t, m), want)
		if (i%2 == 0) != same {
			t.Errorf("worker %d: equal to the lone run = %v, want %v", i, same, i%2 == 0)
		}
	}
}

func TestEvaluate(t *testing.T) {
	c := defaultCorpus(t)
	for _, cfg := range smallConfigs {
		m := newModel(t, cfg)
		eval, err := c.EvalBatches(m.Config().Context, 8, 2)
		if err != nil {
			t.Fatal(err)
		}
		before := params(t, m)
		loss, err := m.Evaluate(stdcontext.Background(), eval)
		if err != nil {
			t.Fatal(err)
		}
		// An untrained model is near uniform over the vocabulary.
		if uniform := math.Log(corpus.VocabSize); math.Abs(loss-uniform) > 1.5 {
			t.Errorf("%s: initial loss %.3f, want near ln(%d) = %.3f", cfg.Kind, loss, corpus.VocabSize, uniform)
		}
		if !bitwiseEqual(before, params(t, m)) {
			t.Errorf("%s: Evaluate changed the weights", cfg.Kind)
		}
		again, _ := m.Evaluate(stdcontext.Background(), eval)
		if again != loss {
			t.Errorf("%s: Evaluate is not repeatable: %v then %v", cfg.Kind, loss, again)
		}
		if _, err := m.Evaluate(stdcontext.Background(), nil); gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: Evaluate(nil) = %v, want invalid", cfg.Kind, err)
		}
	}
}

func TestMalformedBatches(t *testing.T) {
	m := newModel(t, smallConfigs[0])
	n := m.Config().Context
	row := func(v int32, length int) []int32 {
		r := make([]int32, length)
		for i := range r {
			r[i] = v
		}
		return r
	}
	tests := []struct {
		name  string
		batch gridmind.Batch
	}{
		{"empty", gridmind.Batch{}},
		{"targets missing", gridmind.Batch{Inputs: [][]int32{row(3, n)}}},
		{"short input row", gridmind.Batch{Inputs: [][]int32{row(3, n-1)}, Targets: [][]int32{row(3, 1)}}},
		{"ragged targets", gridmind.Batch{Inputs: [][]int32{row(3, n), row(3, n)}, Targets: [][]int32{row(3, 1), row(3, n)}}},
		{"target of two", gridmind.Batch{Inputs: [][]int32{row(3, n)}, Targets: [][]int32{row(3, 2)}}},
		{"id too large", gridmind.Batch{Inputs: [][]int32{row(corpus.VocabSize, n)}, Targets: [][]int32{row(3, 1)}}},
		{"negative target", gridmind.Batch{Inputs: [][]int32{row(3, n)}, Targets: [][]int32{row(-1, 1)}}},
	}
	for _, tt := range tests {
		_, err := m.Evaluate(stdcontext.Background(), []gridmind.Batch{tt.batch})
		if gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%s: Evaluate: %v, want invalid", tt.name, err)
		}
		stats, err := m.TrainSteps(stdcontext.Background(), 1, constSource{tt.batch})
		if gridmind.KindOf(err) != gridmind.KindInvalid || stats.Steps != 0 {
			t.Errorf("%s: TrainSteps: %v after %d steps, want invalid before any step", tt.name, err, stats.Steps)
		}
	}
	// Single-target batches (the next id after the window) are accepted too.
	ok := gridmind.Batch{Inputs: [][]int32{row(3, n)}, Targets: [][]int32{row(4, 1)}}
	if _, err := m.TrainSteps(stdcontext.Background(), 2, constSource{ok}); err != nil {
		t.Errorf("single-target batch: %v", err)
	}
}

type constSource struct{ b gridmind.Batch }

func (s constSource) Next() gridmind.Batch { return s.b }

func TestTrainStepsStopsOnCancel(t *testing.T) {
	m := newModel(t, smallConfigs[0])
	ctx, cancel := stdcontext.WithCancel(stdcontext.Background())
	src := &cancelAfter{src: batches(t, m, 1), n: 3, cancel: cancel}
	stats, err := m.TrainSteps(ctx, 100, src)
	if err != stdcontext.Canceled || stats.Steps != 3 {
		t.Fatalf("got %d steps and %v, want 3 steps and context.Canceled", stats.Steps, err)
	}
	if stats.Tokens != 3*int64(m.Config().BatchSize) || stats.Loss <= 0 || stats.FLOPs <= 0 {
		t.Errorf("stats after cancel: %+v", stats)
	}
}

// cancelAfter cancels its context once n batches have been handed out.
type cancelAfter struct {
	src    gridmind.BatchSource
	n      int
	cancel func()
}

func (c *cancelAfter) Next() gridmind.Batch {
	c.n--
	if c.n == 0 {
		c.cancel()
	}
	return c.src.Next()
}

func TestStatsCountTokensAndFLOPs(t *testing.T) {
	for _, cfg := range smallConfigs {
		m := newModel(t, cfg)
		c := m.Config()
		stats := train(t, m, 2, batches(t, m, 1))
		perStep := int64(c.BatchSize) // the MLP predicts the id after each window
		if cfg.Kind == Transformer {
			perStep *= int64(c.Context) // the transformer predicts at every position
		}
		if stats.Steps != 2 || stats.Tokens != 2*perStep {
			t.Errorf("%s: %+v, want 2 steps and %d tokens", cfg.Kind, stats, 2*perStep)
		}
		if want := 2 * float64(c.BatchSize) * c.flopsPerWindow(true); stats.FLOPs != want {
			t.Errorf("%s: FLOPs %g, want %g", cfg.Kind, stats.FLOPs, want)
		}
	}
}

func TestClosedModelRefusesWork(t *testing.T) {
	m, err := New(smallConfigs[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Params(); err == nil {
		t.Error("Params after Close succeeded")
	}
	if _, err := m.TrainSteps(stdcontext.Background(), 1, constSource{}); err == nil {
		t.Error("TrainSteps after Close succeeded")
	}
	if _, err := m.Generate(stdcontext.Background(), "x", gridmind.GenerateOptions{MaxTokens: 1}); err == nil {
		t.Error("Generate after Close succeeded")
	}
}

// TestMLPLossFalls is the must-show: a short run on the embedded corpus
// moves the held-out loss clearly below the uniform-guess level.
func TestMLPLossFalls(t *testing.T) {
	c := defaultCorpus(t)
	m := newModel(t, Config{Kind: MLP})
	cfg := m.Config()
	eval, err := c.EvalBatches(cfg.Context, 64, 8)
	if err != nil {
		t.Fatal(err)
	}
	before, err := m.Evaluate(stdcontext.Background(), eval)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stats := train(t, m, 150, batches(t, m, 1))
	after, err := m.Evaluate(stdcontext.Background(), eval)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MLP: eval loss %.3f -> %.3f after %d steps (%d tokens) in %v", before, after, stats.Steps, stats.Tokens, time.Since(start))
	if after > before-1.0 || after > 3.5 {
		t.Fatalf("eval loss %.3f -> %.3f: want a fall of more than 1 nat to below 3.5", before, after)
	}
}

func TestTransformerLossFalls(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the default transformer for ~30 s; skipped in -short")
	}
	c := defaultCorpus(t)
	m := newModel(t, Config{Kind: Transformer})
	cfg := m.Config()
	eval, err := c.EvalBatches(cfg.Context, 32, 4)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := m.Evaluate(stdcontext.Background(), eval)
	train(t, m, 40, batches(t, m, 1))
	after, err := m.Evaluate(stdcontext.Background(), eval)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transformer: eval loss %.3f -> %.3f after 40 steps", before, after)
	if after > before-1.0 {
		t.Fatalf("eval loss %.3f -> %.3f: want a fall of more than 1 nat", before, after)
	}
}

// TestDeps keeps the build pure Go: no XLA backend (cgo, run-time
// downloads) and none of the network stacks.
func TestDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/gomlx/gomlx/backends/xla", "github.com/gomlx/go-xla", "github.com/libp2p/", "github.com/cometbft/"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("gomlx depends on %s", dep)
			}
		}
	}
}
