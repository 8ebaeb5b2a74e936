package gomlx

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads like maths with the dot import
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
)

// modelScope holds every trainable weight; Params flattens exactly the
// variables under it.
const modelScope = "model"

// logits builds the model: inputs is [batch, context] int32 ids. The MLP
// returns [batch, vocab] (the next id after the window); the transformer
// returns [batch, context, vocab] (the next id after every position).
func logits(ctx *context.Context, cfg Config, inputs *Node) *Node {
	ctx = ctx.In(modelScope)
	if cfg.Kind == MLP {
		return mlpLogits(ctx, cfg, inputs)
	}
	return transformerLogits(ctx, cfg, inputs)
}

func mlpLogits(ctx *context.Context, cfg Config, inputs *Node) *Node {
	batch := inputs.Shape().Dimensions[0]
	x := layers.Embedding(ctx.In("embed"), inputs, dtypes.Float32, cfg.VocabSize, cfg.EmbedDim)
	x = Reshape(x, batch, cfg.Context*cfg.EmbedDim) // the window, position by position
	x = activations.Relu(dense(ctx.In("hidden1"), x, cfg.Hidden))
	x = activations.Relu(dense(ctx.In("hidden2"), x, cfg.Hidden))
	return dense(ctx.In("output"), x, cfg.VocabSize)
}

func transformerLogits(ctx *context.Context, cfg Config, inputs *Node) *Node {
	g := inputs.Graph()
	// Small normal initialisation for the position table: the default He
	// scale for a [context, dim] table would swamp the token embeddings.
	small := ctx.WithInitializer(func(g *Graph, shape shapes.Shape) *Node {
		return MulScalar(ctx.RandomNormal(g, shape), 0.02)
	})
	x := layers.Embedding(ctx.In("token"), inputs, dtypes.Float32, cfg.VocabSize, cfg.Dim)
	pos := small.In("position").VariableWithShape("embeddings", shapes.Make(dtypes.Float32, cfg.Context, cfg.Dim))
	x = Add(x, InsertAxes(pos.ValueGraph(g), 0))
	for l := range cfg.Layers {
		block := ctx.Inf("block%02d", l)
		h := layerNorm(block.In("norm1"), x)
		x = Add(x, causalSelfAttention(block.In("attention"), h, cfg.Heads))
		h = layerNorm(block.In("norm2"), x)
		h = activations.Gelu(dense(block.In("mlp_in"), h, 4*cfg.Dim))
		x = Add(x, dense(block.In("mlp_out"), h, cfg.Dim))
	}
	x = layerNorm(ctx.In("norm_final"), x)
	// A small output layer starts the model near the uniform guess (loss
	// ln(vocab)) instead of confidently wrong, which wastes early steps.
	return dense(small.In("output"), x, cfg.VocabSize)
}

// lossGraph is the mean cross-entropy (nats) of the model on a batch.
// targets is [batch] (the id after the window) or [batch, context] (the id
// after every position; the MLP uses the last column, the transformer all).
func lossGraph(ctx *context.Context, cfg Config, inputs, targets *Node) *Node {
	out := logits(ctx, cfg, inputs)
	if cfg.Kind == MLP && targets.Rank() == 2 {
		targets = Squeeze(Slice(targets, AxisRange(), AxisElem(-1)), 1)
	}
	if cfg.Kind == Transformer && targets.Rank() == 1 {
		out = Squeeze(Slice(out, AxisRange(), AxisElem(-1), AxisRange()), 1)
	}
	return crossEntropy(out, targets)
}

// crossEntropy is the mean of -log softmax(logits)[target]; logits has one
// more axis (the vocabulary) than targets.
func crossEntropy(logits, targets *Node) *Node {
	vocab := logits.Shape().Dimensions[logits.Rank()-1]
	logProbs := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logProbs, OneHot(targets, vocab, logProbs.DType())), -1)
	return Neg(ReduceAllMean(picked))
}
