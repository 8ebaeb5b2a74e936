package gomlx

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestDotGeneralGradient checks the fast gradient against GoMLX's own for
// the axis layouts the models use and a few awkward ones.
func TestDotGeneralGradient(t *testing.T) {
	backend, err := sharedBackend()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		lhsDims, rhsDims []int
		lc, lb, rc, rb   []int
	}{
		{"matmul", []int{5, 7}, []int{7, 3}, []int{1}, nil, []int{0}, nil},
		{"dense over rank 3", []int{2, 5, 7}, []int{7, 3}, []int{2}, nil, []int{0}, nil},
		{"dense to heads", []int{2, 5, 6}, []int{6, 2, 3}, []int{2}, nil, []int{0}, nil},
		{"attention scores", []int{2, 5, 3, 4}, []int{2, 5, 3, 4}, []int{3}, []int{0, 2}, []int{3}, []int{0, 2}},
		{"attention mix", []int{2, 3, 5, 5}, []int{2, 5, 3, 4}, []int{3}, []int{0, 1}, []int{1}, []int{0, 2}},
		{"two contracted, swapped order", []int{3, 4, 5}, []int{5, 2, 4}, []int{1, 2}, nil, []int{2, 0}, nil},
		{"contract first axis", []int{7, 5}, []int{7, 3}, []int{0}, nil, []int{0}, nil},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(dims []int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(data, dims...)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lhs, rhs := random(tt.lhsDims), random(tt.rhsDims)
			grads := func(fast bool) []*tensors.Tensor {
				return MustExecOnceN(backend, func(lhs, rhs *Node) []*Node {
					var out *Node
					if fast {
						out = dotGeneral(lhs, tt.lc, tt.lb, rhs, tt.rc, tt.rb)
					} else {
						out = DotGeneral(lhs, tt.lc, tt.lb, rhs, tt.rc, tt.rb)
					}
					// A non-uniform loss so that every output element has its own adjoint.
					weights := Iota(out.Graph(), out.Shape(), out.Rank()-1)
					loss := ReduceAllSum(Mul(Square(out), AddScalar(weights, 1)))
					return append([]*Node{out}, Gradient(loss, lhs, rhs)...)
				}, lhs, rhs)
			}
			before := fastGradients.Load()
			want, got := grads(false), grads(true)
			if calls := fastGradients.Load() - before; calls != 2 {
				t.Fatalf("fast gradient built %d times, want 2 (one per operand)", calls)
			}
			for i, name := range []string{"output", "d/dlhs", "d/drhs"} {
				w, g := tensors.MustCopyFlatData[float32](want[i]), tensors.MustCopyFlatData[float32](got[i])
				if !want[i].Shape().Equal(got[i].Shape()) {
					t.Fatalf("%s: shape %s, want %s", name, got[i].Shape(), want[i].Shape())
				}
				for j := range w {
					if math.Abs(float64(w[j]-g[j])) > 1e-3*(1+math.Abs(float64(w[j]))) {
						t.Fatalf("%s[%d] = %v, want %v", name, j, g[j], w[j])
					}
				}
			}
		})
	}
}
