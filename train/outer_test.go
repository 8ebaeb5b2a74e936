package train

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand"
	"testing"
)

func TestNesterovStepHandComputed(t *testing.T) {
	o := Nesterov{LR: 0.5, Momentum: 0.5}
	theta := []float32{1, 2}
	velocity := []float32{0, 1}
	grad := []float32{1, -1}
	if err := o.Step(theta, velocity, grad); err != nil {
		t.Fatal(err)
	}
	// v = 0.5*v + g = [1, -0.5]; update = g + 0.5*v = [1.5, -1.25]; θ -= 0.5*update.
	want := struct{ theta, v []float32 }{[]float32{0.25, 2.625}, []float32{1, -0.5}}
	for i := range theta {
		if theta[i] != want.theta[i] || velocity[i] != want.v[i] {
			t.Fatalf("θ=%v v=%v, want θ=%v v=%v", theta, velocity, want.theta, want.v)
		}
	}
	if err := o.Step(theta, velocity, []float32{1}); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

func TestOuterWithUnitLRAndNoMomentumAverages(t *testing.T) {
	// θ − mean(θ − θ_i) = mean(θ_i): the synchronous baseline's update.
	start := []float32{1, 1, 1}
	locals := [][]float32{{0, 2, 1}, {2, 4, 1}}
	var deltas [][]float32
	for _, l := range locals {
		d, err := PseudoGradient(start, l)
		if err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, d)
	}
	mean := make([]float32, 3)
	_ = Mean{}.Combine(mean, deltas)
	theta, v := append([]float32(nil), start...), make([]float32, 3)
	if err := (Nesterov{LR: 1}).Step(theta, v, mean); err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 3, 1}; theta[0] != want[0] || theta[1] != want[1] || theta[2] != want[2] {
		t.Errorf("θ = %v, want %v", theta, want)
	}
}

func TestNesterovValidate(t *testing.T) {
	for _, o := range []Nesterov{{LR: 0}, {LR: -1}, {LR: 1, Momentum: 1}, {LR: float32(math.NaN())}, {LR: 1, Momentum: -0.1}} {
		if o.Validate() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if err := DefaultOuter().Validate(); err != nil {
		t.Error(err)
	}
}

func TestPseudoGradientRefusesNonFinite(t *testing.T) {
	if _, err := PseudoGradient([]float32{1}, []float32{float32(math.Inf(1))}); err == nil {
		t.Error("infinite local weight accepted")
	}
}

func TestHashThetaIsSHA256OfLittleEndianFloats(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	theta := randomVector(rng, 3001, 1) // spans several internal chunks
	var b []byte
	for _, v := range theta {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	if got, want := HashTheta(theta), Hash(sha256.Sum256(b)); got != want {
		t.Fatalf("HashTheta = %s, want %s", got, want)
	}
	// One bit of difference changes the hash, including -0 versus +0.
	other := append([]float32(nil), theta...)
	other[1234] = math.Float32frombits(math.Float32bits(other[1234]) ^ 1)
	if HashTheta(other) == HashTheta(theta) {
		t.Error("a one-bit change kept the hash")
	}
	if HashTheta([]float32{0}) == HashTheta([]float32{float32(math.Copysign(0, -1))}) {
		t.Error("-0 and +0 hash alike")
	}
}

func TestOuterStepIsDeterministic(t *testing.T) {
	// Same inputs give the same bits, run after run (the property every
	// worker's θ hash relies on).
	rng := rand.New(rand.NewSource(4))
	theta0, grad := randomVector(rng, 10000, 1), randomVector(rng, 10000, 0.01)
	var first Hash
	for run := 0; run < 3; run++ {
		theta, v := append([]float32(nil), theta0...), make([]float32, len(theta0))
		for step := 0; step < 5; step++ {
			if err := DefaultOuter().Step(theta, v, grad); err != nil {
				t.Fatal(err)
			}
		}
		if h := HashTheta(theta); run == 0 {
			first = h
		} else if h != first {
			t.Fatalf("run %d: hash %s, first run %s", run, h.Short(), first.Short())
		}
	}
}
