package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/gridmind/gridmind"
)

// The hashes a worker commits to and an auditor recomputes must be taken
// the same way on both sides; these helpers fix how. A "state" is what
// gridmind.Trainer.Save writes: the parameters and the inner optimizer's
// state (AdamW moments and step), in the trainer's canonical order.
const (
	stateDomain    = "gridmind/verify/state/v1"
	thetaDomain    = "gridmind/verify/theta/v1"
	deltaDomain    = "gridmind/verify/delta/v1"
	residualDomain = "gridmind/verify/residual/v1"
)

// StateHash hashes a state as Save wrote it.
func StateHash(state []byte) Hash { return HashBytes(stateDomain, state) }

// TrainerState hashes a trainer's current state (Save) without keeping
// the bytes.
func TrainerState(t gridmind.Trainer) (Hash, error) {
	h := sha256.New()
	writeDomain(h, stateDomain)
	if err := t.Save(h); err != nil {
		return Hash{}, err
	}
	var out Hash
	h.Sum(out[:0])
	return out, nil
}

// writeDomain starts h the way HashBytes does.
func writeDomain(h hash.Hash, domain string) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(domain)))])
	io.WriteString(h, domain)
}

// ThetaHash hashes flat parameters (the Commitment's Start).
func ThetaHash(theta []float32) Hash { return HashFloats(thetaDomain, theta) }

// DeltaHash hashes a pseudo-gradient Δ = θ_start − θ_end, as decoded from
// what the worker sent (after quantization, when the job quantizes).
func DeltaHash(delta []float32) Hash { return HashFloats(deltaDomain, delta) }

// ResidualHash hashes an error-feedback residual (nil hashes as empty:
// a job without error feedback).
func ResidualHash(residual []float32) Hash { return HashFloats(residualDomain, residual) }

// Reexecution is what an auditor needs to re-run part of a committed
// round: a fresh trainer of the job's configuration, the state the part
// starts from, and the worker's batches.
type Reexecution struct {
	Trainer gridmind.Trainer
	// From is the state the part starts from, as Save wrote it: θ_r with
	// the worker's optimizer state for the whole round or segment 0 (its
	// hash must be the commitment's OptBefore), the state at checkpoint
	// j−1 for segment j.
	From []byte
	// Batches deals the worker's shard (ShardID) with the job's batch
	// seed, already advanced to the part's first step.
	Batches gridmind.BatchSource
	// Send, for a whole round, turns the raw Δ into what the worker sent
	// (quantization with error feedback, given the residual before) and
	// returns it with the residual after. Nil: Δ is sent as is and the
	// residual does not change.
	Send func(delta []float32) (sent []float32, residualAfter Hash, err error)
	// HashDelta, if set, hashes what was sent the way the worker's
	// commitment does (for instance the Merkle root over the blocks of the
	// decoded Δ that the round protocol already signs, so the two
	// commitments bind each other). Nil: DeltaHash.
	HashDelta func(sent []float32) Hash
	// Target is the weights a shifted round (Commitment.ShiftAt) moved
	// to; its hash must be the commitment's Target. Nil otherwise.
	Target []float32
}

// Shift moves params by to − from, element by element in float32: what a
// worker that trained ahead from the estimate from does once it knows the
// round's real weights to (Commitment.ShiftAt). Worker and auditor both
// call it, so their parameters agree bit for bit.
func Shift(params, from, to []float32) error {
	if len(from) != len(params) || len(to) != len(params) {
		return fmt.Errorf("verify: shift of %d parameters from %d to %d", len(params), len(from), len(to))
	}
	for i := range params {
		params[i] += to[i] - from[i]
	}
	return nil
}

// ShiftTrainer applies Shift to t's parameters, keeping its optimizer
// state: the one shift worker and auditor both make.
func ShiftTrainer(t gridmind.Trainer, from, to []float32) error {
	params, err := t.Params()
	if err != nil {
		return err
	}
	if err := Shift(params, from, to); err != nil {
		return err
	}
	return t.SetParams(params)
}

// ErrWrongStart: the state handed to Run is not the one the commitment
// says the part starts from, so re-running it would prove nothing.
var ErrWrongStart = errors.New("verify: re-execution starts from another state than the commitment's")

// ErrWrongTarget: the weights handed to Run for a shifted round are not
// the ones the commitment names.
var ErrWrongTarget = errors.New("verify: re-execution shifts to other weights than the commitment's")

// Run re-executes part of c and returns the output hash to compare
// (c.Matches) and to sign (NewResult): RoundOutput(Δ, state after,
// residual after) for the whole round, the state hash for a segment.
func (x Reexecution) Run(ctx context.Context, c *Commitment, part Part) (Hash, error) {
	want := c.OptBefore
	steps := int(c.Steps)
	if part != WholeRound {
		first, last, ok := c.SegmentRange(part)
		if !ok {
			return Hash{}, fmt.Errorf("verify: part %d of a commitment with %d segments", part, c.Segments())
		}
		steps = int(last - first)
		want, _ = c.SegmentInput(part)
	}
	if StateHash(x.From) != want {
		return Hash{}, ErrWrongStart
	}
	if err := x.Trainer.Load(bytes.NewReader(x.From)); err != nil {
		return Hash{}, err
	}
	start, err := x.Trainer.Params()
	if err != nil {
		return Hash{}, err
	}
	if part == WholeRound && ThetaHash(start) != c.Start {
		return Hash{}, ErrWrongStart
	}
	if c.ShiftAt > 0 {
		if part != WholeRound {
			return Hash{}, fmt.Errorf("verify: part %d of a shifted round (audited whole)", part)
		}
		if len(x.Target) != len(start) || ThetaHash(x.Target) != c.Target {
			return Hash{}, ErrWrongTarget
		}
		if _, err := x.Trainer.TrainSteps(ctx, int(c.ShiftAt), x.Batches); err != nil {
			return Hash{}, err
		}
		if err := ShiftTrainer(x.Trainer, start, x.Target); err != nil {
			return Hash{}, err
		}
		steps -= int(c.ShiftAt)
		start = x.Target // Δ is taken from the weights shifted to
	}
	if _, err := x.Trainer.TrainSteps(ctx, steps, x.Batches); err != nil {
		return Hash{}, err
	}
	after, err := TrainerState(x.Trainer)
	if err != nil {
		return Hash{}, err
	}
	if part != WholeRound {
		return after, nil
	}
	end, err := x.Trainer.Params()
	if err != nil {
		return Hash{}, err
	}
	delta := make([]float32, len(start))
	for i := range delta {
		delta[i] = start[i] - end[i]
	}
	residual := c.ResidualBefore
	if x.Send != nil {
		if delta, residual, err = x.Send(delta); err != nil {
			return Hash{}, err
		}
	}
	hashDelta := x.HashDelta
	if hashDelta == nil {
		hashDelta = DeltaHash
	}
	return RoundOutput(hashDelta(delta), after, residual), nil
}
