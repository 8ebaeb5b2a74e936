package corpus

import (
	"github.com/gridmind/gridmind"
)

// Limits on batch geometry; they keep a malformed job spec from asking
// for gigabytes per batch.
const (
	MaxContext   = 4096
	MaxBatchSize = 1 << 16
)

// Batches is a seeded gridmind.BatchSource over one shard: each batch
// holds batchSize windows whose start positions are drawn uniformly from
// the shard. Inputs[i] is context ids; Targets[i] is the next id at every
// position (context ids), so a model that predicts one id per window uses
// the last target. The same shard, geometry and seed give the same
// batches on every node.
type Batches struct {
	tokens             []uint8
	spans              []span // clipped to positions where a whole window fits
	positions          int
	context, batchSize int
	rng                splitmix64
}

var _ gridmind.BatchSource = (*Batches)(nil)

func checkGeometry(op string, context, batchSize int) error {
	if context <= 0 || context > MaxContext {
		return gridmind.E(gridmind.KindInvalid, op, "context length %d outside 1..%d", context, MaxContext)
	}
	if batchSize <= 0 || batchSize > MaxBatchSize {
		return gridmind.E(gridmind.KindInvalid, op, "batch size %d outside 1..%d", batchSize, MaxBatchSize)
	}
	return nil
}

// NewBatches returns the batch source for shard s. It fails when the
// shard is invalid (see Shard.Err), the geometry is out of range, or the
// shard has no room for a single window of context+1 characters.
func NewBatches(s Shard, context, batchSize int, seed int64) (*Batches, error) {
	const op = "corpus.batches"
	if s.err != nil {
		return nil, s.err
	}
	if err := checkGeometry(op, context, batchSize); err != nil {
		return nil, err
	}
	limit := len(s.tokens) - context // a window starting at p reads p..p+context
	b := &Batches{tokens: s.tokens, context: context, batchSize: batchSize,
		rng: splitmix64{state: uint64(seed) ^ 0x6a09e667f3bcc908}}
	for _, sp := range s.spans {
		end := min(sp.end, limit)
		if end > sp.start {
			b.spans = append(b.spans, span{sp.start, end})
			b.positions += end - sp.start
		}
	}
	if b.positions == 0 {
		return nil, gridmind.E(gridmind.KindInvalid, op,
			"shard %d/%d of job %q round %d has no room for a window of %d characters (training stream is %d)",
			s.Worker, s.Workers, s.Job, s.Round, context+1, len(s.tokens))
	}
	return b, nil
}

// Next returns the next batch.
func (b *Batches) Next() gridmind.Batch {
	batch := gridmind.Batch{Inputs: make([][]int32, b.batchSize), Targets: make([][]int32, b.batchSize)}
	for i := range batch.Inputs {
		k := int(b.rng.below(uint64(b.positions)))
		p := 0
		for _, sp := range b.spans {
			if n := sp.end - sp.start; k < n {
				p = sp.start + k
				break
			} else {
				k -= n
			}
		}
		batch.Inputs[i], batch.Targets[i] = window(b.tokens, p, b.context)
	}
	return batch
}

// window returns the context ids starting at p and the ids that follow
// each of them. Both slices share one allocation.
func window(tokens []uint8, p, context int) (inputs, targets []int32) {
	ids := make([]int32, 2*context)
	for j := 0; j < context; j++ {
		ids[j] = int32(tokens[p+j])
		ids[context+j] = int32(tokens[p+j+1])
	}
	return ids[:context:context], ids[context:]
}

// EvalBatches returns n fixed batches from the evaluation split: windows
// at evenly spaced positions, so every node evaluates the same text.
func (c *Corpus) EvalBatches(context, batchSize, n int) ([]gridmind.Batch, error) {
	const op = "corpus.eval_batches"
	if err := checkGeometry(op, context, batchSize); err != nil {
		return nil, err
	}
	if n <= 0 || n*batchSize > 1<<20 {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%d batches of %d windows: need 1..%d windows in all", n, batchSize, 1<<20)
	}
	c.load()
	positions := len(c.eval) - context
	if positions <= 0 {
		return nil, gridmind.E(gridmind.KindInvalid, op,
			"evaluation split of %s has %d characters, too short for a window of %d", c.name, len(c.eval), context+1)
	}
	total := n * batchSize
	out := make([]gridmind.Batch, n)
	for i := range out {
		out[i] = gridmind.Batch{Inputs: make([][]int32, batchSize), Targets: make([][]int32, batchSize)}
		for j := 0; j < batchSize; j++ {
			w := i*batchSize + j
			p := int(int64(w) * int64(positions) / int64(total))
			out[i].Inputs[j], out[i].Targets[j] = window(c.eval, p, context)
		}
	}
	return out, nil
}
