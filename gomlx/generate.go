package gomlx

import (
	stdcontext "context"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
)

// MaxGenerateTokens bounds one Generate call.
const MaxGenerateTokens = 1 << 16

// Generate continues prompt by up to opts.MaxTokens characters and returns
// the continuation (without the prompt). Temperature 0 picks the most
// likely character; otherwise characters are sampled from the softmax at
// that temperature, restricted to the smallest set whose probability
// reaches TopP (0 or 1 means no restriction), with a generator seeded by
// opts.Seed, so the same model, prompt and options give the same text.
// OnToken, if set, sees each character as it is produced; an error from it
// stops generation and is returned with the text so far.
//
// The model sees the last Context characters of prompt plus output. The
// MLP pads a shorter window on the left with the Unknown id; the
// transformer reads it unpadded (its causal mask makes right padding
// invisible) and starts an empty prompt from a newline.
func (m *Model) Generate(ctx stdcontext.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	const op = "gomlx.generate"
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(op); err != nil {
		return "", err
	}
	switch {
	case opts.MaxTokens < 0 || opts.MaxTokens > MaxGenerateTokens:
		return "", gridmind.E(gridmind.KindInvalid, op, "max tokens %d outside 0..%d", opts.MaxTokens, MaxGenerateTokens)
	case !(opts.Temperature >= 0) || opts.Temperature > 100:
		return "", gridmind.E(gridmind.KindInvalid, op, "temperature %v outside 0..100", opts.Temperature)
	case !(opts.TopP >= 0 && opts.TopP <= 1):
		return "", gridmind.E(gridmind.KindInvalid, op, "top_p %v outside 0..1", opts.TopP)
	}
	ids := corpus.Encode(prompt)
	if m.cfg.Kind == Transformer && len(ids) == 0 {
		ids = []int32{corpus.Newline}
	}
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x67656e6572617465)) // "generate"
	var out strings.Builder
	window := make([]int32, m.cfg.Context)
	vocab := m.cfg.VocabSize
	for range opts.MaxTokens {
		if err := ctx.Err(); err != nil {
			return out.String(), err
		}
		last := m.fillWindow(window, ids)
		logits, err := m.forward(window)
		if err != nil {
			return out.String(), err
		}
		if m.cfg.Kind == Transformer {
			logits = logits[last*vocab : (last+1)*vocab]
		}
		id := sample(logits, opts.Temperature, opts.TopP, rng)
		ids = append(ids, id)
		piece := corpus.DecodeToken(id)
		out.WriteString(piece)
		if opts.OnToken != nil {
			if err := opts.OnToken(piece); err != nil {
				return out.String(), err
			}
		}
	}
	return out.String(), nil
}

// fillWindow writes the model's view of ids into window and returns the
// position whose prediction comes next.
func (m *Model) fillWindow(window, ids []int32) int {
	for i := range window {
		window[i] = corpus.Unknown
	}
	tail := ids[max(0, len(ids)-len(window)):]
	if m.cfg.Kind == MLP {
		copy(window[len(window)-len(tail):], tail)
		return len(window) - 1
	}
	copy(window, tail)
	return len(tail) - 1
}

// sample draws an id from logits (see Generate for the rule).
func sample(logits []float32, temperature, topP float64, rng *rand.Rand) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	if temperature == 0 {
		return int32(best)
	}
	probs := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		probs[i] = math.Exp((float64(l) - float64(logits[best])) / temperature)
		sum += probs[i]
	}
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	kept := len(order)
	if topP > 0 && topP < 1 {
		sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
		var cum float64
		for k, i := range order {
			cum += probs[i] / sum
			if cum >= topP {
				kept = k + 1
				break
			}
		}
	}
	var keptSum float64
	for _, i := range order[:kept] {
		keptSum += probs[i]
	}
	u := rng.Float64() * keptSum
	for _, i := range order[:kept] {
		u -= probs[i]
		if u < 0 {
			return int32(i)
		}
	}
	return int32(order[kept-1])
}
