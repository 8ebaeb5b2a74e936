package dilocotest

import (
	"context"
	"io"
	"math/rand"

	"github.com/gridmind/gridmind"
)

// NullTrainer holds a vector and "trains" by nudging it with seeded noise:
// it makes the all-reduce the only work in a round, for measuring the
// exchange alone.
type NullTrainer struct {
	theta []float32
	rng   *rand.Rand
}

// NewNullTrainer holds n zeros; seed drives its noise.
func NewNullTrainer(n int, seed int64) *NullTrainer {
	return &NullTrainer{theta: make([]float32, n), rng: rand.New(rand.NewSource(seed))}
}

func (t *NullTrainer) NumParams() int                                              { return len(t.theta) }
func (t *NullTrainer) Params() ([]float32, error)                                  { return append([]float32(nil), t.theta...), nil }
func (t *NullTrainer) SetParams(f []float32) error                                 { copy(t.theta, f); return nil }
func (t *NullTrainer) Save(io.Writer) error                                        { return nil }
func (t *NullTrainer) Load(io.Reader) error                                        { return nil }
func (t *NullTrainer) Close() error                                                { return nil }
func (t *NullTrainer) Evaluate(context.Context, []gridmind.Batch) (float64, error) { return 0, nil }
func (t *NullTrainer) Generate(context.Context, string, gridmind.GenerateOptions) (string, error) {
	return "", nil
}

func (t *NullTrainer) TrainSteps(ctx context.Context, n int, _ gridmind.BatchSource) (gridmind.TrainStats, error) {
	for i := range t.theta {
		t.theta[i] += float32(t.rng.NormFloat64() * 1e-3)
	}
	return gridmind.TrainStats{Steps: n}, nil
}

// NoBatches is the batch source of a NullTrainer, which reads none.
type NoBatches struct{}

func (NoBatches) Next() gridmind.Batch { return gridmind.Batch{} }
