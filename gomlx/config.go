package gomlx

import (
	"fmt"
	"math"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
)

// Model kinds.
const (
	// MLP reads a window of Context characters through per-character
	// embeddings and two hidden layers and predicts the next character.
	// It is the fast choice on CPUs.
	MLP = "mlp"
	// Transformer is a small pre-norm causal transformer that predicts the
	// next character at every position of the window.
	Transformer = "transformer"
)

// Config is everything that defines a model: two models with equal
// Configs start from identical weights. Zero fields take the defaults of
// DefaultConfig(Kind).
type Config struct {
	Kind         string  `json:"kind"`          // MLP or Transformer
	VocabSize    int     `json:"vocab_size"`    // number of token ids; corpus.VocabSize by default
	Context      int     `json:"context"`       // characters the model reads
	BatchSize    int     `json:"batch_size"`    // windows per step the caller should feed (the model accepts any)
	LearningRate float64 `json:"learning_rate"` // AdamW learning rate
	WeightDecay  float64 `json:"weight_decay"`  // AdamW decoupled weight decay (negative means none)
	Seed         int64   `json:"seed"`          // weight initialisation (0 is a seed like any other)

	// MLP.
	EmbedDim int `json:"embed_dim,omitempty"` // embedding width per character
	Hidden   int `json:"hidden,omitempty"`    // width of each of the two hidden layers

	// Transformer.
	Dim    int `json:"dim,omitempty"`    // model width
	Layers int `json:"layers,omitempty"` // transformer blocks
	Heads  int `json:"heads,omitempty"`  // attention heads; Dim must divide evenly
}

// DefaultConfig returns the defaults for kind, chosen on the 2-core
// development machine (shared with other builds, so numbers vary ~2x):
// the MLP (224k parameters) runs 14-19 steps/s alone at batch 64 and
// reaches a held-out loss near 2.9 nats (from 4.56) in 300 steps; four
// MLP workers in one process make ~115 steps each in a minute and reach
// ~3.1. The transformer (115k parameters) runs ~1.3-2 steps/s at batch 32
// (1-2k predicted tokens/s) and reaches ~3.0 in 60 steps. Learning rate
// 5e-3 beat 2e-3 and 1e-2 for the MLP over 300 steps.
func DefaultConfig(kind string) Config {
	c := Config{
		Kind:         kind,
		VocabSize:    corpus.VocabSize,
		Context:      32,
		BatchSize:    64,
		LearningRate: 5e-3,
		WeightDecay:  0.01,
	}
	switch kind {
	case MLP:
		c.EmbedDim, c.Hidden = 16, 256
	case Transformer:
		c.Dim, c.Layers, c.Heads = 64, 2, 4
		c.BatchSize = 32 // 1024 predicted tokens per step already
	}
	return c
}

// withDefaults fills zero fields from DefaultConfig(c.Kind).
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Kind)
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.VocabSize, d.VocabSize)
	setInt(&c.Context, d.Context)
	setInt(&c.BatchSize, d.BatchSize)
	if c.LearningRate == 0 {
		c.LearningRate = d.LearningRate
	}
	if c.WeightDecay == 0 {
		c.WeightDecay = d.WeightDecay
	} else if c.WeightDecay < 0 {
		c.WeightDecay = 0
	}
	switch c.Kind {
	case MLP:
		setInt(&c.EmbedDim, d.EmbedDim)
		setInt(&c.Hidden, d.Hidden)
	case Transformer:
		setInt(&c.Dim, d.Dim)
		setInt(&c.Layers, d.Layers)
		setInt(&c.Heads, d.Heads)
	}
	return c
}

// validate checks a config after withDefaults. The bounds keep a job spec
// from asking for a model that cannot fit in memory.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "gomlx.config", format, args...)
	}
	inRange := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return bad("%s %d outside %d..%d", name, v, lo, hi)
		}
		return nil
	}
	checks := []error{
		inRange("vocab size", c.VocabSize, 2, 1<<16),
		inRange("context", c.Context, 1, corpus.MaxContext),
		inRange("batch size", c.BatchSize, 1, corpus.MaxBatchSize),
	}
	switch c.Kind {
	case MLP:
		checks = append(checks,
			inRange("embedding width", c.EmbedDim, 1, 1024),
			inRange("hidden width", c.Hidden, 1, 16384))
	case Transformer:
		checks = append(checks,
			inRange("dim", c.Dim, 1, 4096),
			inRange("layers", c.Layers, 1, 64),
			inRange("heads", c.Heads, 1, 64))
		if c.Heads > 0 && c.Dim%c.Heads != 0 {
			checks = append(checks, bad("dim %d is not a multiple of heads %d", c.Dim, c.Heads))
		}
	default:
		return bad("unknown model kind %q (want %q or %q)", c.Kind, MLP, Transformer)
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if !(c.LearningRate > 0 && c.LearningRate < 10) {
		return bad("learning rate %v outside (0, 10)", c.LearningRate)
	}
	if math.IsNaN(c.WeightDecay) || c.WeightDecay > 1 {
		return bad("weight decay %v outside [0, 1]", c.WeightDecay)
	}
	return nil
}

// sameTraining reports the first field (other than Seed and BatchSize,
// which a checkpoint does not depend on) where c and o differ.
func (c Config) sameTraining(o Config) error {
	c.Seed, o.Seed, c.BatchSize, o.BatchSize = 0, 0, 0, 0
	if c != o {
		return fmt.Errorf("checkpoint is for %+v, model is %+v", o, c)
	}
	return nil
}

// flopsPerWindow estimates the floating point operations of one training
// step per input window: matrix multiplies only, forward plus a backward
// pass counted as twice the forward.
func (c Config) flopsPerWindow(allPositions bool) float64 {
	const trainFactor = 3
	switch c.Kind {
	case MLP:
		forward := 2 * float64(c.Context*c.EmbedDim*c.Hidden+c.Hidden*c.Hidden+c.Hidden*c.VocabSize)
		return trainFactor * forward
	default:
		t, d := float64(c.Context), float64(c.Dim)
		perLayer := 24*t*d*d + 4*t*t*d // projections and MLP, then scores and weighted values
		head := 2 * t * d * float64(c.VocabSize)
		if !allPositions {
			head = 2 * d * float64(c.VocabSize)
		}
		return trainFactor * (float64(c.Layers)*perLayer + head)
	}
}
