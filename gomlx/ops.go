package gomlx

import (
	"math"
	"slices"
	"sync/atomic"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Why this file exists: GoMLX v0.26.0 differentiates DotGeneral by
// broadcasting both operands to [batch, lhs cross, rhs cross, contracted]
// and reducing, which on the simplego backend runs element by element
// through a generic broadcast iterator. Profiling the MLP showed 95% of a
// training step there and 3% in the matrix multiplies themselves. The
// gradient of a DotGeneral is two more DotGenerals, which simplego runs with
// its blocked, parallel kernels; dotGeneral below wires that in through
// custom gradients, and dense and attention use it for every product.

// dotGeneral is graph.DotGeneral with its gradient computed by DotGeneral.
//
// GoMLX only lets an Identity node carry a custom gradient, so the trick is
// three identities: the one on the output records the adjoint dL/dout
// when reverse-mode autodiff reaches it (always before the operands,
// which come earlier in topological order); the ones on the operands
// ignore the slow gradient GoMLX computed for them and return the fast one
// built from that adjoint. The slow nodes are then unused, and simplego
// never executes unused nodes.
func dotGeneral(lhs *Node, lhsContract, lhsBatch []int, rhs *Node, rhsContract, rhsBatch []int) *Node {
	var adjoint *Node
	lhsIn := IdentityWithCustomGradient(lhs, func(_, slow *Node) *Node {
		if adjoint == nil {
			return slow
		}
		return dotGeneralGrad(adjoint, lhs, lhsContract, lhsBatch, rhs, rhsContract, rhsBatch, true)
	})
	rhsIn := IdentityWithCustomGradient(rhs, func(_, slow *Node) *Node {
		if adjoint == nil {
			return slow
		}
		return dotGeneralGrad(adjoint, lhs, lhsContract, lhsBatch, rhs, rhsContract, rhsBatch, false)
	})
	out := DotGeneral(lhsIn, lhsContract, lhsBatch, rhsIn, rhsContract, rhsBatch)
	return IdentityWithCustomGradient(out, func(_, v *Node) *Node {
		adjoint = v
		return v
	})
}

// crossAxes lists, in increasing order, the axes of a rank-r operand that
// are neither contracted nor batch axes.
func crossAxes(rank int, contract, batch []int) []int {
	var cross []int
	for a := range rank {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			cross = append(cross, a)
		}
	}
	return cross
}

// dotGeneralGrad returns dL/dlhs (forLHS) or dL/drhs given v = dL/dout.
// out's axes are [batch..., lhs cross..., rhs cross...]. For the lhs, v is
// contracted with rhs over the rhs cross axes, batch to batch, which leaves
// [batch..., lhs cross..., rhs contracted axes in increasing order]; each
// rhs contracted axis stands for the lhs axis it was paired with, and a
// transpose puts the axes back in the lhs's order. The rhs is symmetric.
// fastGradients counts dotGeneralGrad calls, so tests can see that the
// fast path is the one taken.
var fastGradients atomic.Int64

func dotGeneralGrad(v, lhs *Node, lhsContract, lhsBatch []int, rhs *Node, rhsContract, rhsBatch []int, forLHS bool) *Node {
	fastGradients.Add(1)
	lhsContract, lhsBatch = normAxes(lhs, lhsContract), normAxes(lhs, lhsBatch)
	rhsContract, rhsBatch = normAxes(rhs, rhsContract), normAxes(rhs, rhsBatch)
	lhsCross := crossAxes(lhs.Rank(), lhsContract, lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), rhsContract, rhsBatch)
	nb := len(lhsBatch)
	vBatch := iota(0, nb)

	this, thisContract, thisBatch, thisCross := lhs, lhsContract, lhsBatch, lhsCross
	other, otherContract, otherBatch, otherCross := rhs, rhsContract, rhsBatch, rhsCross
	vOtherCross := iota(nb+len(lhsCross), len(rhsCross))
	if !forLHS {
		this, thisContract, thisBatch, thisCross = rhs, rhsContract, rhsBatch, rhsCross
		other, otherContract, otherBatch, otherCross = lhs, lhsContract, lhsBatch, lhsCross
		vOtherCross = iota(nb, len(lhsCross))
	}
	g := DotGeneral(v, vOtherCross, vBatch, other, otherCross, otherBatch)
	// g is [batch..., this cross..., other's contracted axes, increasing].
	sortedOther := slices.Sorted(slices.Values(otherContract))
	perm := make([]int, this.Rank())
	for i, a := range thisBatch {
		perm[a] = i
	}
	for j, a := range thisCross {
		perm[a] = nb + j
	}
	for k, a := range thisContract {
		perm[a] = nb + len(thisCross) + slices.Index(sortedOther, otherContract[k])
	}
	if slices.Equal(perm, iota(0, len(perm))) {
		return g
	}
	return TransposeAllAxes(g, perm...)
}

func normAxes(x *Node, axes []int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += x.Rank()
		}
		out[i] = a
	}
	return out
}

func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

// dense is a fully connected layer over the last axis of x with a bias:
// variables "weights" [in, outDims...] and "biases" [outDims...] in ctx,
// initialised like layers.Dense (He normal, zero bias).
func dense(ctx *context.Context, x *Node, outDims ...int) *Node {
	g := x.Graph()
	in := x.Shape().Dimensions[x.Rank()-1]
	w := ctx.VariableWithShape("weights", shapes.Make(x.DType(), append([]int{in}, outDims...)...)).ValueGraph(g)
	b := ctx.VariableWithShape("biases", shapes.Make(x.DType(), outDims...)).ValueGraph(g)
	y := dotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	// Give the bias leading axes of size 1 so it broadcasts over x's batch axes.
	return Add(y, Reshape(b, append(slices.Repeat([]int{1}, x.Rank()-1), outDims...)...))
}

// causalSelfAttention is multi-head attention of x [batch, time, dim] over
// itself where position t sees positions 0..t.
func causalSelfAttention(ctx *context.Context, x *Node, heads int) *Node {
	g := x.Graph()
	dims := x.Shape().Dimensions
	batch, time, dim := dims[0], dims[1], dims[2]
	headDim := dim / heads
	q := dense(ctx.In("query"), x, heads, headDim) // [batch, time, heads, headDim]
	k := dense(ctx.In("key"), x, heads, headDim)
	v := dense(ctx.In("value"), x, heads, headDim)
	// scores[b, h, i, j] = q[b, i, h, :] . k[b, j, h, :]
	scores := dotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2})
	scores = MulScalar(scores, 1/math.Sqrt(float64(headDim)))
	scores = Add(scores, causalMask(g, time))
	weights := Softmax(scores, -1)
	// mixed[b, h, i, :] = sum_j weights[b, h, i, j] v[b, j, h, :]
	mixed := dotGeneral(weights, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2})
	mixed = Reshape(TransposeAllAxes(mixed, 0, 2, 1, 3), batch, time, dim)
	return dense(ctx.In("output"), mixed, dim)
}

// causalMask is [1, 1, time, time]: 0 where key j <= query i, and a large
// negative number elsewhere so softmax gives those keys no weight.
func causalMask(g *Graph, time int) *Node {
	mask := make([]float32, time*time)
	for i := range time {
		for j := i + 1; j < time; j++ {
			mask[i*time+j] = -1e9
		}
	}
	return Reshape(Const(g, mask), 1, 1, time, time)
}

// layerNorm normalises the last axis of x and applies a learned gain and
// offset (variables "gain", "offset").
func layerNorm(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	dim := x.Shape().Dimensions[x.Rank()-1]
	gain := ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Ones(g, s) }).
		VariableWithShape("gain", shapes.Make(dtypes.Float32, dim)).ValueGraph(g)
	offset := ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Zeros(g, s) }).
		VariableWithShape("offset", shapes.Make(dtypes.Float32, dim)).ValueGraph(g)
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centred := Sub(x, mean)
	variance := ReduceAndKeep(Square(centred), ReduceMean, -1)
	normed := Div(centred, Sqrt(AddScalar(variance, 1e-5))) // Rsqrt has no gradient in GoMLX v0.26.0
	lead := slices.Repeat([]int{1}, x.Rank()-1)
	return Add(Mul(normed, Reshape(gain, append(lead, dim)...)), Reshape(offset, append(lead, dim)...))
}
