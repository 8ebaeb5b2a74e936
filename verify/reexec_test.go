package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/verify"
)

// This test re-executes a real training round: a worker trains H inner
// steps of the GoMLX model from θ_r on its dealt shard and signs a
// commitment; an auditor loads θ_r (with the optimizer state) into a fresh
// model, runs the same H steps on the same shard and seed, and compares.
// On the CPU backend the re-execution is bitwise identical, so Matches is
// hash equality with no tolerance; a free-rider (Δ = 0) does not match,
// and one checkpointed segment re-executed alone matches too.

const (
	job       = "0123456789abcdef0123456789abcdef"
	round     = 3
	index     = 1
	workers   = 2
	steps     = 4
	segment   = 2
	batchSeed = 11
)

func smallConfig() gomlx.Config {
	cfg := gomlx.DefaultConfig(gomlx.MLP)
	cfg.Hidden, cfg.EmbedDim, cfg.Context, cfg.BatchSize = 32, 8, 8, 8
	return cfg
}

// state is a model's parameters and optimizer state, as Save writes them.
func state(t *testing.T, m gridmind.Trainer) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func params(t *testing.T, m gridmind.Trainer) []float32 {
	t.Helper()
	p, err := m.Params()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func batches(t *testing.T, c *corpus.Corpus, skip int) *corpus.Batches {
	t.Helper()
	cfg := smallConfig()
	b, err := corpus.NewBatches(c.Shard(job, round, index, workers), cfg.Context, cfg.BatchSize, batchSeed)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < skip; i++ {
		b.Next()
	}
	return b
}

// train runs n steps of m from where src stands and returns the state
// hash after each segment of segment steps.
func train(t *testing.T, m gridmind.Trainer, src *corpus.Batches, n int) []verify.Hash {
	t.Helper()
	var ckpts []verify.Hash
	for done := 0; done < n; done += segment {
		if _, err := m.TrainSteps(context.Background(), min(segment, n-done), src); err != nil {
			t.Fatal(err)
		}
		ckpts = append(ckpts, verify.HashBytes("state", state(t, m)))
	}
	return ckpts
}

func delta(start, end []float32) []float32 {
	d := make([]float32, len(start))
	for i := range d {
		d[i] = start[i] - end[i]
	}
	return d
}

func TestReexecutionOfARealRoundIsBitwise(t *testing.T) {
	if testing.Short() {
		t.Skip("trains GoMLX models")
	}
	ctx := context.Background()
	data, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("worker"))
	key := ed25519.NewKeyFromSeed(seed[:])
	workerID := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	fresh := func() gridmind.Trainer {
		m, err := gomlx.New(smallConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}

	// θ_r: a model that has already trained a little, so the optimizer
	// state is not zero.
	w := fresh()
	train(t, w, batches(t, data, 100), 2)
	startState := state(t, w)
	startParams := params(t, w)

	// The worker's round, with a checkpoint every 2 steps.
	var ckpts []verify.Hash
	src := batches(t, data, 0)
	for done := 0; done < steps; done += segment {
		if _, err := w.TrainSteps(ctx, segment, src); err != nil {
			t.Fatal(err)
		}
		h, err := verify.TrainerState(w)
		if err != nil {
			t.Fatal(err)
		}
		ckpts = append(ckpts, h)
	}
	after, err := verify.TrainerState(w)
	if err != nil {
		t.Fatal(err)
	}
	noResidual := verify.ResidualHash(nil)
	c := verify.Commitment{
		Job: job, Round: round, Worker: workerID, Start: verify.ThetaHash(startParams),
		Shard: verify.ShardID(job, round, index, workers), Steps: steps,
		OptBefore: verify.StateHash(startState), OptAfter: after,
		ResidualBefore: noResidual, ResidualAfter: noResidual,
		Delta:        verify.DeltaHash(delta(startParams, params(t, w))),
		SegmentSteps: segment, Checkpoints: ckpts,
	}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}

	// The auditor: a fresh model, θ_r with the optimizer state, the same batches.
	got, err := verify.Reexecution{Trainer: fresh(), From: startState, Batches: batches(t, data, 0)}.Run(ctx, &c, verify.WholeRound)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Matches(verify.WholeRound, got) {
		t.Fatal("re-executing the round on the CPU backend did not reproduce the worker's hashes bit for bit")
	}

	// One segment alone: steps [2, 4) from the state at checkpoint 0.
	m := fresh()
	if err := m.Load(bytes.NewReader(startState)); err != nil {
		t.Fatal(err)
	}
	train(t, m, batches(t, data, 0), segment)
	mid := state(t, m)
	seg, err := verify.Reexecution{Trainer: fresh(), From: mid, Batches: batches(t, data, segment)}.Run(ctx, &c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Matches(1, seg) {
		t.Fatal("re-executing segment 1 alone did not reproduce its checkpoint")
	}
	// Starting from a state that is not the committed one proves nothing.
	if _, err := (verify.Reexecution{Trainer: fresh(), From: mid, Batches: batches(t, data, 0)}).Run(ctx, &c, verify.WholeRound); !errors.Is(err, verify.ErrWrongStart) {
		t.Fatalf("re-execution from another state: %v", err)
	}

	// A free-rider sends Δ = 0 and claims its optimizer did not move.
	free := c
	free.Delta = verify.DeltaHash(make([]float32, len(startParams)))
	free.OptAfter = free.OptBefore
	free.Checkpoints = []verify.Hash{free.OptBefore, free.OptBefore}
	if err := free.Sign(key); err != nil {
		t.Fatal(err)
	}
	if free.Matches(verify.WholeRound, got) || free.Matches(1, seg) {
		t.Fatal("a free-rider's commitment matched an honest re-execution")
	}
}
