package train

import (
	"fmt"
	"math"
)

// Nesterov is the DiLoCo outer optimizer: SGD with Nesterov momentum applied
// to the averaged pseudo-gradient (θ_r − θ_local). Its state, the momentum
// buffer, lives in GlobalState.Velocity so that it travels with θ to joiners
// and checkpoints. LR 1 and Momentum 0 make the outer step plain parameter
// averaging: θ_{r+1} = mean of the workers' local weights.
type Nesterov struct {
	LR       float32
	Momentum float32
}

// DefaultOuter is the DiLoCo paper's outer optimizer: lr 0.7, momentum 0.9.
func DefaultOuter() Nesterov { return Nesterov{LR: 0.7, Momentum: 0.9} }

// Validate refuses settings that cannot train.
func (o Nesterov) Validate() error {
	if !finite32(o.LR) || o.LR <= 0 {
		return fmt.Errorf("train: outer learning rate %v must be positive", o.LR)
	}
	if !finite32(o.Momentum) || o.Momentum < 0 || o.Momentum >= 1 {
		return fmt.Errorf("train: outer momentum %v outside [0, 1)", o.Momentum)
	}
	return nil
}

// Step updates theta and velocity in place with the pseudo-gradient grad,
// as PyTorch's SGD(nesterov=True, dampening=0) does:
//
//	v ← μ·v + g;  θ ← θ − lr·(g + μ·v)
//
// Every product is converted to float32 explicitly because the Go spec
// allows a compiler to fuse x*y+z into one FMA on some CPUs, which rounds
// differently; an explicit conversion forbids the fusion, so every machine
// computes the same bits.
func (o Nesterov) Step(theta, velocity, grad []float32) error {
	if len(theta) != len(grad) || len(velocity) != len(grad) {
		return fmt.Errorf("train: outer step on θ %d, velocity %d, gradient %d elements", len(theta), len(velocity), len(grad))
	}
	for i, g := range grad {
		v := float32(o.Momentum*velocity[i]) + g
		velocity[i] = v
		update := g + float32(o.Momentum*v)
		theta[i] -= float32(o.LR * update)
	}
	return nil
}

// PseudoGradient returns start − local, refusing non-finite results (a
// diverged inner loop must not poison the global weights).
func PseudoGradient(start, local []float32) ([]float32, error) {
	if len(start) != len(local) {
		return nil, fmt.Errorf("train: pseudo-gradient of %d and %d elements", len(start), len(local))
	}
	out := make([]float32, len(start))
	for i := subtractVec(out, start, local); i < len(out); i++ {
		out[i] = start[i] - local[i]
		if math.IsNaN(float64(out[i])) || math.IsInf(float64(out[i]), 0) {
			return nil, fmt.Errorf("%w in the pseudo-gradient at element %d", ErrNonFinite, i)
		}
	}
	return out, nil
}
