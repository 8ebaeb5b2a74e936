package gomlx

import (
	stdcontext "context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/gridmind/gridmind"
)

// sharedBackend is one simplego backend for the whole process: its worker
// pool is sized to the machine, so in-process workers share the cores
// instead of each starting a pool as large as the machine.
//
// ops_sequential is not a tuning choice: in v0.26.0 the default mode runs
// independent ops as pool tasks, and a DotGeneral inside such a task
// blocks waiting for pool slots for its own sub-tasks; with a few
// DotGenerals ready at once (our gradients make two per layer) every slot
// holds a waiter and the step deadlocks (seen here after a few hundred
// steps). Sequential mode runs ops on the caller's goroutine, so only the
// matrix multiplies' leaf tasks occupy slots and they always finish. It
// is the same mechanism as the "parallelism=1 deadlocks" note.
//
// dotgeneral_large forces the blocked matrix-multiply kernel even for the
// small products that would otherwise take a naive loop: measured 1.2-3x
// faster steps for the MLP and ~10% for the transformer on the 2-core
// development machine.
var sharedBackend = sync.OnceValues(func() (backends.Backend, error) {
	return simplego.New("ops_sequential,dotgeneral_large")
})

// Model is a character-level language model with its AdamW state. It
// implements gridmind.Trainer. Its methods may be called from several
// goroutines; they run one at a time.
type Model struct {
	cfg     Config
	log     *slog.Logger
	backend backends.Backend

	mu        sync.Mutex
	closed    bool
	ctx       *context.Context
	params    []*context.Variable // the variables under /model, sorted by ScopeAndName
	numParams int
	trainExec *context.Exec
	lossExec  *context.Exec
	inferExec *context.Exec
}

var _ gridmind.Trainer = (*Model)(nil)

// New builds a model from cfg (zero fields take DefaultConfig's values)
// and initialises its weights from cfg.Seed. logger may be nil.
func New(cfg Config, logger ...*slog.Logger) (*Model, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	backend, err := sharedBackend()
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "gomlx.new", "start simplego backend: %w", err)
	}
	m := &Model{cfg: cfg, log: slog.Default(), backend: backend}
	if len(logger) > 0 && logger[0] != nil {
		m.log = logger[0]
	}
	ctx, err := newContext(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.attach(ctx); err != nil {
		return nil, err
	}
	// Running the inference graph once creates the model's variables and
	// initialises them from the seeded RNG.
	if _, err := m.forward(make([]int32, cfg.Context)); err != nil {
		m.detach()
		return nil, err
	}
	if err := m.collectParams(); err != nil {
		m.detach()
		return nil, err
	}
	m.log.Debug("gomlx model ready", "kind", cfg.Kind, "params", m.numParams)
	return m, nil
}

// newContext is an empty context seeded for cfg.
func newContext(cfg Config) (*context.Context, error) {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, cfg.Seed)
	if err := ctx.SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, gridmind.E(gridmind.KindInternal, "gomlx.new", "seed RNG: %w", err)
	}
	return ctx, nil
}

// attach makes ctx the model's state and builds the executors over it.
// Graphs are compiled lazily, on first use for each batch shape. The
// context is unchecked because the three executors share variables and
// the optimizer creates its own on first use.
func (m *Model) attach(ctx *context.Context) error {
	ctx = ctx.Checked(false)
	cfg := m.cfg
	optimizer := optimizers.Adam().LearningRate(cfg.LearningRate).WeightDecay(cfg.WeightDecay).Done()
	trainExec, err := context.NewExec(m.backend, ctx, func(ctx *context.Context, inputs, targets *Node) *Node {
		loss := lossGraph(ctx, cfg, inputs, targets)
		optimizer.UpdateGraph(ctx, inputs.Graph(), loss)
		return loss
	})
	if err != nil {
		return gridmind.E(gridmind.KindInternal, "gomlx.new", "train executor: %w", err)
	}
	lossExec, err := context.NewExec(m.backend, ctx, func(ctx *context.Context, inputs, targets *Node) *Node {
		return lossGraph(ctx, cfg, inputs, targets)
	})
	if err != nil {
		return gridmind.E(gridmind.KindInternal, "gomlx.new", "loss executor: %w", err)
	}
	inferExec, err := context.NewExec(m.backend, ctx, func(ctx *context.Context, inputs *Node) *Node {
		return logits(ctx, cfg, inputs)
	})
	if err != nil {
		return gridmind.E(gridmind.KindInternal, "gomlx.new", "inference executor: %w", err)
	}
	m.ctx, m.trainExec, m.lossExec, m.inferExec = ctx, trainExec, lossExec, inferExec
	return nil
}

// detach releases the executors and the variables' memory.
func (m *Model) detach() {
	for _, e := range []*context.Exec{m.trainExec, m.lossExec, m.inferExec} {
		if e != nil {
			e.Finalize()
		}
	}
	m.trainExec, m.lossExec, m.inferExec = nil, nil, nil
	if m.ctx != nil {
		m.ctx.Finalize()
		m.ctx = nil
	}
	m.params = nil
}

func isModelScope(scope string) bool {
	prefix := context.ScopeSeparator + modelScope
	return scope == prefix || strings.HasPrefix(scope, prefix+context.ScopeSeparator)
}

// sortVariables puts variables in canonical (scope-and-name) order.
func sortVariables(vars []*context.Variable) {
	sort.Slice(vars, func(i, j int) bool { return vars[i].ScopeAndName() < vars[j].ScopeAndName() })
}

// collectParams lists the model's weights in canonical order.
func (m *Model) collectParams() error {
	m.params = m.params[:0]
	m.numParams = 0
	for v := range m.ctx.IterVariables() {
		if isModelScope(v.Scope()) {
			m.params = append(m.params, v)
			m.numParams += v.Shape().Size()
		}
	}
	sortVariables(m.params)
	if len(m.params) == 0 {
		return gridmind.E(gridmind.KindInternal, "gomlx.params", "model built no variables under /%s", modelScope)
	}
	return nil
}

// Config returns the effective configuration (defaults filled in).
func (m *Model) Config() Config { return m.cfg }

// NumParams is the length of the flat parameter vector.
func (m *Model) NumParams() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.numParams
}

// ParamLayout names the weight tensors in the order Params flattens them,
// with their sizes; useful for logs and for per-tensor quantisation.
func (m *Model) ParamLayout() []ParamInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ParamInfo, len(m.params))
	for i, v := range m.params {
		out[i] = ParamInfo{Name: v.ScopeAndName(), Dims: append([]int(nil), v.Shape().Dimensions...)}
	}
	return out
}

// ParamInfo describes one weight tensor of the flat vector.
type ParamInfo struct {
	Name string
	Dims []int
}

func (m *Model) usable(op string) error {
	if m.closed {
		return gridmind.E(gridmind.KindConflict, op, "model is closed")
	}
	return nil
}

// Params copies the weights into one flat vector in canonical order.
func (m *Model) Params() ([]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable("gomlx.params"); err != nil {
		return nil, err
	}
	flat := make([]float32, 0, m.numParams)
	for _, v := range m.params {
		value, err := v.Value()
		if err != nil {
			return nil, gridmind.E(gridmind.KindInternal, "gomlx.params", "read %s: %w", v.ScopeAndName(), err)
		}
		err = tensors.ConstFlatData(value, func(data []float32) { flat = append(flat, data...) })
		if err != nil {
			return nil, gridmind.E(gridmind.KindInternal, "gomlx.params", "read %s: %w", v.ScopeAndName(), err)
		}
	}
	return flat, nil
}

// SetParams overwrites the weights from a flat vector in canonical order.
// AdamW's moments and step count are kept, as DiLoCo's inner optimizer
// carries them across rounds.
func (m *Model) SetParams(flat []float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable("gomlx.set_params"); err != nil {
		return err
	}
	if len(flat) != m.numParams {
		return gridmind.E(gridmind.KindInvalid, "gomlx.set_params", "got %d values, model has %d parameters", len(flat), m.numParams)
	}
	offset := 0
	for _, v := range m.params {
		size := v.Shape().Size()
		// Copy: the tensor must not alias the caller's slice.
		part := append([]float32(nil), flat[offset:offset+size]...)
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(part, v.Shape().Dimensions...)); err != nil {
			return gridmind.E(gridmind.KindInternal, "gomlx.set_params", "write %s: %w", v.ScopeAndName(), err)
		}
		offset += size
	}
	return nil
}

// Close releases the model's memory. Later calls fail.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.detach()
		m.closed = true
	}
	return nil
}

// run executes e with args, turning GoMLX panics (which it uses for graph
// building errors) into errors.
func run(op string, e *context.Exec, args ...any) (out []*tensors.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = gridmind.E(gridmind.KindInternal, op, "gomlx: %v", r)
		}
	}()
	out, err = e.Exec(args...)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInternal, op, "gomlx: %w", err)
	}
	return out, nil
}

// scalar reads a float32 scalar result and frees it.
func scalar(t *tensors.Tensor) float64 {
	var v float32
	tensors.MustConstFlatData(t, func(data []float32) { v = data[0] })
	_ = t.FinalizeAll()
	return float64(v)
}

// forward returns the next-token logits after the window ids
// ([context] ids), as [vocab] for the MLP and [context][vocab] flattened
// for the transformer.
func (m *Model) forward(window []int32) ([]float32, error) {
	in := tensors.FromFlatDataAndDimensions(window, 1, m.cfg.Context)
	defer func() { _ = in.FinalizeAll() }()
	out, err := run("gomlx.forward", m.inferExec, in)
	if err != nil {
		return nil, err
	}
	logits := tensors.MustCopyFlatData[float32](out[0])
	_ = out[0].FinalizeAll()
	return logits, nil
}

// TrainSteps runs n AdamW steps on batches from src. It stops early, with
// the statistics so far, when ctx is done or a batch is malformed.
func (m *Model) TrainSteps(ctx stdcontext.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	const op = "gomlx.train_steps"
	m.mu.Lock()
	defer m.mu.Unlock()
	var stats gridmind.TrainStats
	if err := m.usable(op); err != nil {
		return stats, err
	}
	if n < 0 || src == nil {
		return stats, gridmind.E(gridmind.KindInvalid, op, "need n >= 0 and a batch source, got n=%d", n)
	}
	var lossSum float64
	for stats.Steps < n {
		if err := ctx.Err(); err != nil {
			return m.finish(stats, lossSum), err
		}
		batch := src.Next()
		inputs, targets, tokens, err := m.batchTensors(op, batch)
		if err != nil {
			return m.finish(stats, lossSum), err
		}
		out, err := run(op, m.trainExec, inputs, targets)
		_ = inputs.FinalizeAll()
		_ = targets.FinalizeAll()
		if err != nil {
			return m.finish(stats, lossSum), err
		}
		lossSum += scalar(out[0])
		rows := len(batch.Inputs)
		stats.Steps++
		stats.Tokens += int64(tokens)
		stats.FLOPs += float64(rows) * m.cfg.flopsPerWindow(tokens > rows)
	}
	return m.finish(stats, lossSum), nil
}

func (m *Model) finish(stats gridmind.TrainStats, lossSum float64) gridmind.TrainStats {
	if stats.Steps > 0 {
		stats.Loss = lossSum / float64(stats.Steps)
	}
	return stats
}

// Evaluate returns the mean cross-entropy in nats per predicted token over
// the batches (weighted by their token counts). It does not change the
// model.
func (m *Model) Evaluate(ctx stdcontext.Context, batches []gridmind.Batch) (float64, error) {
	const op = "gomlx.evaluate"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(op); err != nil {
		return 0, err
	}
	if len(batches) == 0 {
		return 0, gridmind.E(gridmind.KindInvalid, op, "no batches to evaluate")
	}
	var sum float64
	var total int
	for _, batch := range batches {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		inputs, targets, tokens, err := m.batchTensors(op, batch)
		if err != nil {
			return 0, err
		}
		out, err := run(op, m.lossExec, inputs, targets)
		_ = inputs.FinalizeAll()
		_ = targets.FinalizeAll()
		if err != nil {
			return 0, err
		}
		sum += scalar(out[0]) * float64(tokens)
		total += tokens
	}
	return sum / float64(total), nil
}

// batchTensors checks a batch against the model and converts it. Inputs
// rows must have Context ids; target rows one id (the next after the
// window) or Context ids (the next after every position). tokens is the
// number of targets the loss averages over.
func (m *Model) batchTensors(op string, b gridmind.Batch) (inputs, targets *tensors.Tensor, tokens int, err error) {
	rows, ctxLen, vocab := len(b.Inputs), m.cfg.Context, int32(m.cfg.VocabSize)
	if rows == 0 || rows > 1<<16 || len(b.Targets) != rows {
		return nil, nil, 0, gridmind.E(gridmind.KindInvalid, op, "batch has %d input rows and %d target rows (need 1..65536, equal)", rows, len(b.Targets))
	}
	targetLen := len(b.Targets[0])
	if targetLen != 1 && targetLen != ctxLen {
		return nil, nil, 0, gridmind.E(gridmind.KindInvalid, op, "target rows have %d ids, want 1 or %d", targetLen, ctxLen)
	}
	in := make([]int32, 0, rows*ctxLen)
	tg := make([]int32, 0, rows*targetLen)
	for i := range rows {
		if len(b.Inputs[i]) != ctxLen || len(b.Targets[i]) != targetLen {
			return nil, nil, 0, gridmind.E(gridmind.KindInvalid, op, "row %d has %d inputs and %d targets, want %d and %d",
				i, len(b.Inputs[i]), len(b.Targets[i]), ctxLen, targetLen)
		}
		in = append(in, b.Inputs[i]...)
		tg = append(tg, b.Targets[i]...)
	}
	for _, ids := range [][]int32{in, tg} {
		for _, id := range ids {
			if id < 0 || id >= vocab {
				return nil, nil, 0, gridmind.E(gridmind.KindInvalid, op, "token id %d outside the vocabulary 0..%d", id, vocab-1)
			}
		}
	}
	inputs = tensors.FromFlatDataAndDimensions(in, rows, ctxLen)
	switch {
	case targetLen == 1:
		targets = tensors.FromFlatDataAndDimensions(tg, rows)
		tokens = rows
	case m.cfg.Kind == MLP:
		targets = tensors.FromFlatDataAndDimensions(tg, rows, ctxLen)
		tokens = rows // the MLP predicts only after the last position
	default:
		targets = tensors.FromFlatDataAndDimensions(tg, rows, ctxLen)
		tokens = rows * ctxLen
	}
	return inputs, targets, tokens, nil
}

func (m *Model) String() string {
	return fmt.Sprintf("gomlx.Model(%s, %d params)", m.cfg.Kind, m.numParams)
}
