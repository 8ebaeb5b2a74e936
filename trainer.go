package gridmind

import (
	"context"
	"io"
)

// Batch is a set of training examples for a character-level language
// model: Inputs[i] is a window of token ids and Targets[i] the id that
// follows it (for sequence models, Targets holds one id per position).
type Batch struct {
	Inputs  [][]int32
	Targets [][]int32
}

// BatchSource hands out batches; it is deterministic for a given seed.
type BatchSource interface {
	Next() Batch
}

// TrainStats reports what a call to TrainSteps did.
type TrainStats struct {
	Steps  int
	Tokens int64   // target tokens processed
	Loss   float64 // mean training loss over the steps
	FLOPs  float64 // estimated floating point operations
}

// Trainer is a model that can be trained locally. Parameters are exposed
// as one flat float32 vector in a canonical order that is the same on every
// node, which is all the DiLoCo outer loop needs.
type Trainer interface {
	// NumParams is the length of the flat parameter vector.
	NumParams() int
	// Params copies the parameters into a new flat vector.
	Params() ([]float32, error)
	// SetParams overwrites the parameters from a flat vector; the inner
	// optimizer state is kept (DiLoCo keeps AdamW moments across rounds).
	SetParams(flat []float32) error
	// TrainSteps runs n inner optimizer steps on batches from src.
	TrainSteps(ctx context.Context, n int, src BatchSource) (TrainStats, error)
	// Evaluate returns the mean loss over the given batches.
	Evaluate(ctx context.Context, batches []Batch) (float64, error)
	// Generate continues prompt by up to maxTokens characters.
	Generate(ctx context.Context, prompt string, opts GenerateOptions) (string, error)
	// Save writes parameters (and inner optimizer state) to w; Load reads them back.
	Save(w io.Writer) error
	Load(r io.Reader) error
	// Close releases the trainer's resources.
	Close() error
}

// GenerateOptions controls sampling.
type GenerateOptions struct {
	MaxTokens   int
	Temperature float64
	TopP        float64
	Seed        int64
	// OnToken, if set, is called with each generated piece of text as it is produced.
	OnToken func(piece string) error
}
