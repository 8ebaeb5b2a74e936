package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// LocalConfig configures a Local.
type LocalConfig struct {
	// Workers is how many generations of one model run at once (default 1:
	// a trainer's weights and scratch space are not shared across calls).
	Workers int
	// MaxQueue is how many requests per model may wait for a worker
	// (default 64); more are refused with ErrOverloaded so the client
	// goes to another replica instead of waiting.
	MaxQueue int
	Now      func() time.Time
	Logger   *slog.Logger
}

// Local serves models loaded on this node through bounded queues and
// keeps the load figures that go into heartbeats. Safe for concurrent use.
type Local struct {
	cfg LocalConfig
	log *slog.Logger

	mu     sync.Mutex
	models map[string]*localModel
}

type localModel struct {
	gen     Generator
	added   time.Time
	workers chan struct{} // a token per running generation

	mu        sync.Mutex // guards the fields below
	queued    int        // waiting or running
	latencies []time.Duration
	next      int
	errRate   float64
}

const localSamples = 256

// NewLocal returns an empty Local.
func NewLocal(cfg LocalConfig) *Local {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	} else if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Local{cfg: cfg, log: cfg.Logger, models: make(map[string]*localModel)}
}

// Add serves gen under the model hash.
func (l *Local) Add(model string, gen Generator) error {
	if model == "" || len(model) > maxIDBytes || gen == nil {
		return gridmind.E(gridmind.KindInvalid, "serve.local.add", "model %q: need a hash of 1..%d bytes and a generator", truncate(model, 16), maxIDBytes)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.models[model] != nil {
		return gridmind.E(gridmind.KindConflict, "serve.local.add", "model %s is already served", truncate(model, 16))
	}
	l.models[model] = &localModel{gen: gen, added: l.cfg.Now(), workers: make(chan struct{}, l.cfg.Workers)}
	return nil
}

// Remove stops serving model (running requests finish); it reports whether it was served.
func (l *Local) Remove(model string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.models[model]
	delete(l.models, model)
	return ok
}

// Has reports whether model is served here.
func (l *Local) Has(model string) bool { return l.get(model) != nil }

func (l *Local) get(model string) *localModel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.models[model]
}

// Models lists the served model hashes, sorted.
func (l *Local) Models() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.models))
	for m := range l.models {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// added is when model began to be served (zero if it is not).
func (l *Local) added(model string) time.Time {
	if m := l.get(model); m != nil {
		return m.added
	}
	return time.Time{}
}

// Workers is how many generations of one model run at once.
func (l *Local) Workers() int { return l.cfg.Workers }

// QueueLength is the number of requests waiting or running for model.
func (l *Local) QueueLength(model string) int {
	m := l.get(model)
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queued
}

// Served describes every served model with its live load, for heartbeats.
func (l *Local) Served() []gridmind.ServedModel {
	var out []gridmind.ServedModel
	for _, name := range l.Models() {
		m := l.get(name)
		if m == nil {
			continue
		}
		m.mu.Lock()
		lat := slices.Clone(m.latencies)
		sm := gridmind.ServedModel{Hash: name, QueueLength: m.queued, ErrorRate: m.errRate}
		m.mu.Unlock()
		if len(lat) > 0 {
			slices.Sort(lat)
			sm.LatencyP50Ms = msFloat(lat[(len(lat)-1)/2])
			sm.LatencyP95Ms = msFloat(lat[(len(lat)*95+99)/100-1])
		}
		out = append(out, sm)
	}
	return out
}

func msFloat(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Complete generates a completion for req with a local model.
func (l *Local) Complete(ctx context.Context, req Request, onPiece func(string) error) (Completion, error) {
	return l.generate(ctx, req, 0, nil, onPiece)
}

// generate runs req, withholding the first skip tokens (whose text must
// hash to prefixHash: the client already has them from another replica).
// CompletionTokens counts every token generated, the skipped ones included.
func (l *Local) generate(ctx context.Context, req Request, skip int, prefixHash []byte, onPiece func(string) error) (Completion, error) {
	const op = "serve.local"
	m := l.get(req.Model)
	if m == nil {
		return Completion{}, gridmind.E(gridmind.KindNotFound, op, "%w: %s is not served here", ErrModelNotFound, truncate(req.Model, 16))
	}
	m.mu.Lock()
	if m.queued >= cap(m.workers)+l.cfg.MaxQueue {
		q := m.queued
		m.mu.Unlock()
		return Completion{}, gridmind.E(gridmind.KindUnavailable, op, "%w: %d requests for %s", ErrOverloaded, q, truncate(req.Model, 16))
	}
	m.queued++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.queued--
		m.mu.Unlock()
	}()

	select {
	case m.workers <- struct{}{}:
	case <-ctx.Done():
		return Completion{}, ctx.Err()
	}
	defer func() { <-m.workers }()

	start := l.cfg.Now()
	p := &pieceFilter{skip: skip, prefixHash: prefixHash, onPiece: onPiece, hash: sha256.New()}
	text, err := m.gen.Generate(ctx, req.Prompt, gridmind.GenerateOptions{
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		TopP:        req.TopP,
		Seed:        req.Seed,
		OnToken:     p.piece,
	})
	if err == nil && p.count == 0 {
		// The generator did not stream: treat each character as a token.
		for _, r := range text {
			if err = p.piece(string(r)); err != nil {
				break
			}
		}
	}
	if err == nil && p.count < skip {
		err = gridmind.E(gridmind.KindConflict, op, "%w: only %d tokens regenerated, %d were delivered", ErrDiverged, p.count, skip)
	}
	if err != nil {
		if p.err != nil { // our own callback stopped the generator: report why
			err = p.err
		}
		if ctx.Err() == nil && !errors.Is(err, ErrDiverged) && !errors.Is(err, errPieceRefused) {
			m.observe(0, true)
		}
		if gridmind.KindOf(err) == gridmind.KindOther && ctx.Err() == nil {
			err = gridmind.E(gridmind.KindInternal, op, "generate with %s: %w", truncate(req.Model, 16), err)
		}
		return Completion{}, err
	}
	m.observe(l.cfg.Now().Sub(start), false)
	finish := FinishStop
	if p.count >= req.MaxTokens {
		finish = FinishLength
	}
	return Completion{
		Text:             p.text.String(),
		FinishReason:     finish,
		PromptTokens:     countTokens(req.Prompt),
		CompletionTokens: p.count,
		Attempts:         1,
	}, nil
}

func (m *localModel) observe(latency time.Duration, failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x := 0.0
	if failed {
		x = 1
	}
	m.errRate += 0.1 * (x - m.errRate)
	if failed {
		return
	}
	if len(m.latencies) < localSamples {
		m.latencies = append(m.latencies, latency)
	} else {
		m.latencies[m.next] = latency
		m.next = (m.next + 1) % localSamples
	}
}

// errPieceRefused marks a stop caused by the consumer of the pieces (the
// client went away), which is no fault of the model.
var errPieceRefused = errors.New("consumer stopped reading")

// pieceFilter counts tokens, withholds and checks a skipped prefix, and
// passes the rest on.
type pieceFilter struct {
	skip       int
	prefixHash []byte
	onPiece    func(string) error
	hash       hash.Hash
	count      int
	text       bytes.Buffer // everything after the skipped prefix
	err        error        // why piece refused, if it did
}

func (p *pieceFilter) piece(s string) error {
	if p.err != nil {
		return p.err
	}
	if s == "" {
		return nil
	}
	p.count++
	if p.count <= p.skip {
		p.hash.Write([]byte(s))
		if p.count == p.skip && !bytes.Equal(p.hash.Sum(nil), p.prefixHash) {
			p.err = gridmind.E(gridmind.KindConflict, "serve.local", "%w after %d tokens", ErrDiverged, p.skip)
		}
		return p.err
	}
	p.text.WriteString(s)
	if p.onPiece != nil {
		if err := p.onPiece(s); err != nil {
			p.err = errors.Join(errPieceRefused, err)
			return p.err
		}
	}
	return nil
}
