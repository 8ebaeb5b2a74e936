package dilocotest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strings"

	"github.com/gridmind/gridmind"
)

// ToyTrainer is a bigram language model in plain Go (a vocab×vocab table of
// logits, softmax cross-entropy, Adam): real gradient descent whose loss
// falls, deterministic under its seed, and fast enough to test the DiLoCo
// machinery without GoMLX. It reads the last input id of each window and
// predicts the last target id.
type ToyTrainer struct {
	vocab int
	lr    float64
	w     []float32
	m, v  []float64
	step  int
}

var _ gridmind.Trainer = (*ToyTrainer)(nil)

// NewToyTrainer returns a model whose weights are drawn from seed.
func NewToyTrainer(vocab int, seed int64, lr float64) (*ToyTrainer, error) {
	if vocab < 2 || vocab > 4096 {
		return nil, fmt.Errorf("toy trainer: vocabulary %d outside 2..4096", vocab)
	}
	if !(lr > 0) {
		return nil, fmt.Errorf("toy trainer: learning rate %v must be positive", lr)
	}
	rng := rand.New(rand.NewSource(seed))
	n := vocab * vocab
	t := &ToyTrainer{vocab: vocab, lr: lr, w: make([]float32, n), m: make([]float64, n), v: make([]float64, n)}
	for i := range t.w {
		t.w[i] = float32(rng.NormFloat64() * 0.1)
	}
	return t, nil
}

// NumParams is vocab².
func (t *ToyTrainer) NumParams() int { return len(t.w) }

// Params copies the weights.
func (t *ToyTrainer) Params() ([]float32, error) { return append([]float32(nil), t.w...), nil }

// SetParams overwrites the weights and keeps the Adam moments.
func (t *ToyTrainer) SetParams(flat []float32) error {
	if len(flat) != len(t.w) {
		return fmt.Errorf("toy trainer: %d parameters, want %d", len(flat), len(t.w))
	}
	copy(t.w, flat)
	return nil
}

// example returns the (previous, next) ids of the window's last position.
func (t *ToyTrainer) example(b gridmind.Batch, i int) (int, int, bool) {
	if i >= len(b.Targets) || len(b.Inputs[i]) == 0 || len(b.Targets[i]) == 0 {
		return 0, 0, false
	}
	prev, next := int(b.Inputs[i][len(b.Inputs[i])-1]), int(b.Targets[i][len(b.Targets[i])-1])
	return prev, next, prev >= 0 && prev < t.vocab && next >= 0 && next < t.vocab
}

// loss adds the example's cross-entropy gradient (if grad is not nil) and
// returns its loss.
func (t *ToyTrainer) loss(prev, next int, grad []float64) float64 {
	row := t.w[prev*t.vocab : (prev+1)*t.vocab]
	maxLogit := math.Inf(-1)
	for _, l := range row {
		maxLogit = max(maxLogit, float64(l))
	}
	var z float64
	for _, l := range row {
		z += math.Exp(float64(l) - maxLogit)
	}
	if grad != nil {
		g := grad[prev*t.vocab : (prev+1)*t.vocab]
		for j, l := range row {
			g[j] += math.Exp(float64(l)-maxLogit) / z
		}
		g[next]--
	}
	return math.Log(z) + maxLogit - float64(row[next])
}

// TrainSteps runs n Adam steps, one batch each.
func (t *ToyTrainer) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	var stats gridmind.TrainStats
	grad := make([]float64, len(t.w))
	var lossSum float64
	for s := 0; s < n; s++ {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		b := src.Next()
		clear(grad)
		var count int
		var loss float64
		for i := range b.Inputs {
			prev, next, ok := t.example(b, i)
			if !ok {
				continue
			}
			loss += t.loss(prev, next, grad)
			count++
		}
		if count == 0 {
			return stats, errors.New("toy trainer: a batch without usable examples")
		}
		t.step++
		const beta1, beta2, eps = 0.9, 0.999, 1e-8
		c1, c2 := 1-math.Pow(beta1, float64(t.step)), 1-math.Pow(beta2, float64(t.step))
		for i, g := range grad {
			g /= float64(count)
			t.m[i] = beta1*t.m[i] + (1-beta1)*g
			t.v[i] = beta2*t.v[i] + (1-beta2)*g*g
			t.w[i] -= float32(t.lr * (t.m[i] / c1) / (math.Sqrt(t.v[i]/c2) + eps))
		}
		lossSum += loss / float64(count)
		stats.Steps++
		stats.Tokens += int64(count)
		stats.FLOPs += float64(count*6*t.vocab) + float64(10*len(t.w))
	}
	if stats.Steps > 0 {
		stats.Loss = lossSum / float64(stats.Steps)
	}
	return stats, nil
}

// Evaluate is the mean cross-entropy in nats over the batches' usable examples.
func (t *ToyTrainer) Evaluate(ctx context.Context, batches []gridmind.Batch) (float64, error) {
	var sum float64
	var count int
	for _, b := range batches {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i := range b.Inputs {
			if prev, next, ok := t.example(b, i); ok {
				sum += t.loss(prev, next, nil)
				count++
			}
		}
	}
	if count == 0 {
		return 0, errors.New("toy trainer: nothing to evaluate")
	}
	return sum / float64(count), nil
}

// Generate samples ids as letters ('a' + id), continuing from the prompt's last letter.
func (t *ToyTrainer) Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	rng := rand.New(rand.NewSource(opts.Seed))
	prev := 0
	if prompt != "" {
		prev = int(prompt[len(prompt)-1]-'a') % t.vocab
		prev = (prev + t.vocab) % t.vocab
	}
	var out strings.Builder
	for i := 0; i < opts.MaxTokens; i++ {
		if err := ctx.Err(); err != nil {
			return out.String(), err
		}
		row := t.w[prev*t.vocab : (prev+1)*t.vocab]
		probs := softmax64(row, max(opts.Temperature, 1e-3))
		r, next := rng.Float64(), t.vocab-1
		for j, p := range probs {
			if r -= p; r < 0 {
				next = j
				break
			}
		}
		piece := string(rune('a' + next%26))
		out.WriteString(piece)
		if opts.OnToken != nil {
			if err := opts.OnToken(piece); err != nil {
				return out.String(), err
			}
		}
		prev = next
	}
	return out.String(), nil
}

func softmax64(logits []float32, temperature float64) []float64 {
	out := make([]float64, len(logits))
	maxLogit := math.Inf(-1)
	for _, l := range logits {
		maxLogit = max(maxLogit, float64(l)/temperature)
	}
	var z float64
	for i, l := range logits {
		out[i] = math.Exp(float64(l)/temperature - maxLogit)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// Save writes vocab, step, weights and Adam moments.
func (t *ToyTrainer) Save(w io.Writer) error {
	b := binary.LittleEndian.AppendUint32(nil, uint32(t.vocab))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.step))
	for i := range t.w {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(t.w[i]))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.m[i]))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.v[i]))
	}
	_, err := w.Write(b)
	return err
}

// Load reads what Save wrote.
func (t *ToyTrainer) Load(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, int64(12+20*len(t.w)+1)))
	if err != nil {
		return err
	}
	if len(b) != 12+20*len(t.w) || int(binary.LittleEndian.Uint32(b)) != t.vocab {
		return fmt.Errorf("toy trainer: checkpoint of %d bytes does not fit a vocabulary of %d", len(b), t.vocab)
	}
	t.step = int(binary.LittleEndian.Uint64(b[4:]))
	for i, p := 0, 12; i < len(t.w); i, p = i+1, p+20 {
		t.w[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[p:]))
		t.m[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[p+4:]))
		t.v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[p+12:]))
	}
	return nil
}

// Close does nothing.
func (t *ToyTrainer) Close() error { return nil }

// ToyData is text from a fixed random Markov chain over vocab ids: the best
// possible bigram loss is the chain's entropy rate, so a test can tell how
// far training got.
type ToyData struct {
	vocab int
	cum   [][]float64 // cumulative transition probabilities per previous id
	probs [][]float64
}

// NewToyData draws a chain from seed; sharpness > 0 makes transitions more
// predictable (3 gives an entropy rate well under log(vocab)).
func NewToyData(vocab int, seed int64, sharpness float64) *ToyData {
	rng := rand.New(rand.NewSource(seed))
	d := &ToyData{vocab: vocab}
	for i := 0; i < vocab; i++ {
		logits := make([]float32, vocab)
		for j := range logits {
			logits[j] = float32(rng.NormFloat64() * sharpness)
		}
		p := softmax64(logits, 1)
		c := make([]float64, vocab)
		var s float64
		for j, v := range p {
			s += v
			c[j] = s
		}
		d.probs = append(d.probs, p)
		d.cum = append(d.cum, c)
	}
	return d
}

// EntropyRate is the chain's conditional entropy under a uniform previous
// id, a floor the model's loss approaches.
func (d *ToyData) EntropyRate() float64 {
	var h float64
	for _, row := range d.probs {
		for _, p := range row {
			if p > 0 {
				h -= p * math.Log(p) / float64(d.vocab)
			}
		}
	}
	return h
}

type toyBatches struct {
	d                  *ToyData
	rng                *rand.Rand
	batchSize, context int
}

// Batches returns a seeded source of batches of windows of context ids
// (each window starts at a uniformly drawn id).
func (d *ToyData) Batches(seed int64, batchSize, context int) gridmind.BatchSource {
	return &toyBatches{d: d, rng: rand.New(rand.NewSource(seed)), batchSize: max(batchSize, 1), context: max(context, 1)}
}

func (b *toyBatches) Next() gridmind.Batch {
	out := gridmind.Batch{Inputs: make([][]int32, b.batchSize), Targets: make([][]int32, b.batchSize)}
	for i := range out.Inputs {
		seq := make([]int32, b.context+1)
		seq[0] = int32(b.rng.Intn(b.d.vocab))
		for k := 1; k < len(seq); k++ {
			r, c := b.rng.Float64(), b.d.cum[seq[k-1]]
			next := len(c) - 1
			for j, v := range c {
				if r < v {
					next = j
					break
				}
			}
			seq[k] = int32(next)
		}
		out.Inputs[i], out.Targets[i] = seq[:b.context], seq[1:]
	}
	return out
}

// EvalBatches returns n fixed batches (seed -1), the same for every caller.
func (d *ToyData) EvalBatches(n, batchSize int) []gridmind.Batch {
	src := d.Batches(-1, batchSize, 1)
	out := make([]gridmind.Batch, n)
	for i := range out {
		out[i] = src.Next()
	}
	return out
}

// ToySeed derives the batch seed of a worker in a round.
func ToySeed(worker int, round uint64) int64 {
	return int64(round)*1_000_003 + int64(worker)*7919 + 17
}
