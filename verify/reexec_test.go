package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
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
	data, err := corpus.Default()
	if err != nil {
		t.Fatal(err)
	}
	seed := sha256.Sum256([]byte("worker"))
	key := ed25519.NewKeyFromSeed(seed[:])
	workerID := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))

	// θ_r: a model that has already trained a little, so the optimizer
	// state is not zero.
	w, err := gomlx.New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	train(t, w, batches(t, data, 100), 2)
	startState := state(t, w)
	startParams := params(t, w)

	// The worker's round.
	ckpts := train(t, w, batches(t, data, 0), steps)
	zero := verify.HashFloats("residual", make([]float32, len(startParams)))
	c := verify.Commitment{
		Job: job, Round: round, Worker: workerID, Start: verify.HashFloats("theta", startParams),
		Shard: verify.ShardID(job, round, index, workers), Steps: steps,
		OptBefore: verify.HashBytes("state", startState), OptAfter: verify.HashBytes("state", state(t, w)),
		ResidualBefore: zero, ResidualAfter: zero,
		Delta:        verify.HashFloats("delta", delta(startParams, params(t, w))),
		SegmentSteps: segment, Checkpoints: ckpts,
	}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}

	// The auditor: a fresh model loaded from θ_r and the optimizer state.
	reexecute := func(from []byte, skip, n int) (gridmind.Trainer, []verify.Hash) {
		a, err := gomlx.New(smallConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Load(bytes.NewReader(from)); err != nil {
			t.Fatal(err)
		}
		return a, train(t, a, batches(t, data, skip), n)
	}
	a, _ := reexecute(startState, 0, steps)
	defer a.Close()
	got := verify.RoundOutput(verify.HashFloats("delta", delta(startParams, params(t, a))), verify.HashBytes("state", state(t, a)), zero)
	if !c.Matches(verify.WholeRound, got) {
		t.Fatal("re-executing the round on the CPU backend did not reproduce the worker's hashes bit for bit")
	}

	// One segment alone: from the state at checkpoint 0, steps [2, 4).
	var mid bytes.Buffer
	m, err := gomlx.New(smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Load(bytes.NewReader(startState)); err != nil {
		t.Fatal(err)
	}
	train(t, m, batches(t, data, 0), segment)
	if err := m.Save(&mid); err != nil {
		t.Fatal(err)
	}
	if verify.HashBytes("state", mid.Bytes()) != c.Checkpoints[0] {
		t.Fatal("the state after the first segment differs from the worker's checkpoint")
	}
	s, segHashes := reexecute(mid.Bytes(), segment, segment)
	defer s.Close()
	if !c.Matches(1, segHashes[0]) {
		t.Fatal("re-executing segment 1 alone did not reproduce its checkpoint")
	}

	// A free-rider sends Δ = 0 and claims its optimizer did not move.
	free := c
	free.Delta = verify.HashFloats("delta", make([]float32, len(startParams)))
	free.OptAfter = free.OptBefore
	free.Checkpoints = []verify.Hash{free.OptBefore, free.OptBefore}
	if err := free.Sign(key); err != nil {
		t.Fatal(err)
	}
	if free.Matches(verify.WholeRound, got) || free.Matches(1, segHashes[0]) {
		t.Fatal("a free-rider's commitment matched an honest re-execution")
	}
}
