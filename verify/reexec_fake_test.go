package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/gridmind/gridmind"
)

// countingTrainer is a deterministic stand-in for a model: each step adds
// its step number to every parameter. Its state is the parameters and
// the step counter.
type countingTrainer struct {
	params []float32
	step   uint64
}

func (c *countingTrainer) NumParams() int { return len(c.params) }
func (c *countingTrainer) Params() ([]float32, error) {
	return append([]float32(nil), c.params...), nil
}
func (c *countingTrainer) SetParams(p []float32) error {
	c.params = append(c.params[:0], p...)
	return nil
}
func (c *countingTrainer) TrainSteps(_ context.Context, n int, _ gridmind.BatchSource) (gridmind.TrainStats, error) {
	for i := 0; i < n; i++ {
		c.step++
		for j := range c.params {
			c.params[j] += float32(c.step)
		}
	}
	return gridmind.TrainStats{Steps: n}, nil
}
func (c *countingTrainer) Evaluate(context.Context, []gridmind.Batch) (float64, error) { return 0, nil }
func (c *countingTrainer) Generate(context.Context, string, gridmind.GenerateOptions) (string, error) {
	return "", nil
}
func (c *countingTrainer) Save(w io.Writer) error {
	b := binary.LittleEndian.AppendUint64(nil, c.step)
	for _, p := range c.params {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p))
	}
	_, err := w.Write(b)
	return err
}
func (c *countingTrainer) Load(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil || len(b) < 8 || (len(b)-8)%4 != 0 {
		return errors.New("bad state")
	}
	c.step = binary.LittleEndian.Uint64(b)
	c.params = c.params[:0]
	for i := 8; i < len(b); i += 4 {
		c.params = append(c.params, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return nil
}
func (c *countingTrainer) Close() error { return nil }

func saved(t *testing.T, m gridmind.Trainer) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReexecutionWithQuantizationAndSegments(t *testing.T) {
	ctx := context.Background()
	key, worker := testKey(1)
	w := &countingTrainer{params: []float32{1, 2, 3}}
	start := saved(t, w)
	theta := append([]float32(nil), w.params...)
	// The job "quantizes" Δ by rounding down to even numbers and keeps the
	// remainder as error feedback; the commitment hashes Δ by its sum.
	send := func(delta []float32) ([]float32, Hash, error) {
		sent := make([]float32, len(delta))
		rest := make([]float32, len(delta))
		for i, d := range delta {
			sent[i] = float32(2 * math.Floor(float64(d)/2))
			rest[i] = d - sent[i]
		}
		return sent, ResidualHash(rest), nil
	}
	sum := func(v []float32) Hash {
		var s float64
		for _, x := range v {
			s += float64(x)
		}
		return HashBytes("sum", binary.LittleEndian.AppendUint64(nil, math.Float64bits(s)))
	}
	var ckpts []Hash
	for i := 0; i < 3; i++ { // 6 steps in segments of 2
		w.TrainSteps(ctx, 2, nil)
		ckpts = append(ckpts, StateHash(saved(t, w)))
	}
	raw := make([]float32, len(theta))
	for i := range raw {
		raw[i] = theta[i] - w.params[i]
	}
	sent, residual, _ := send(raw)
	c := Commitment{Job: "job", Round: 1, Worker: worker, Start: ThetaHash(theta), Steps: 6,
		OptBefore: StateHash(start), OptAfter: StateHash(saved(t, w)),
		ResidualBefore: ResidualHash(nil), ResidualAfter: residual, Delta: sum(sent),
		SegmentSteps: 2, Checkpoints: ckpts}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	x := Reexecution{Trainer: &countingTrainer{}, From: start, Send: send, HashDelta: sum}
	got, err := x.Run(ctx, &c, WholeRound)
	if err != nil || !c.Matches(WholeRound, got) {
		t.Fatalf("whole round: %v, matches %v", err, c.Matches(WholeRound, got))
	}
	// Without the job's quantizer the output differs: never "close enough".
	plain, err := Reexecution{Trainer: &countingTrainer{}, From: start, HashDelta: sum}.Run(ctx, &c, WholeRound)
	if err != nil || c.Matches(WholeRound, plain) {
		t.Fatalf("unquantized re-run: %v, matches %v", err, c.Matches(WholeRound, plain))
	}
	// Segment 2 from checkpoint 1.
	mid := &countingTrainer{params: []float32{1, 2, 3}}
	mid.TrainSteps(ctx, 4, nil)
	seg, err := Reexecution{Trainer: &countingTrainer{}, From: saved(t, mid)}.Run(ctx, &c, 2)
	if err != nil || !c.Matches(2, seg) {
		t.Fatalf("segment 2: %v, matches %v", err, c.Matches(2, seg))
	}
	if _, err := (Reexecution{Trainer: &countingTrainer{}, From: start}).Run(ctx, &c, 2); !errors.Is(err, ErrWrongStart) {
		t.Fatalf("segment 2 from the round's start: %v", err)
	}
	if _, err := (Reexecution{Trainer: &countingTrainer{}, From: start}).Run(ctx, &c, 3); err == nil {
		t.Fatal("re-ran a segment that does not exist")
	}
}

// A round trained ahead from an estimate shifts, after ShiftAt steps, to
// the round's real weights; its Δ is taken from them. Re-running it needs
// those weights (their hash is committed), shifts at the same step and
// reproduces the Δ; other weights do not. (This trainer's steps do not
// depend on the parameters, so neither the step of the shift nor leaving
// it out changes its Δ; diloco's audit test shows, with a model, that a
// re-run without the shift does not match.)
func TestReexecutionOfAShiftedRound(t *testing.T) {
	ctx := context.Background()
	key, worker := testKey(1)
	estimate := []float32{1, 2, 3}
	target := []float32{1.5, 1, 3.25}
	w := &countingTrainer{params: append([]float32(nil), estimate...)}
	start := saved(t, w)
	w.TrainSteps(ctx, 2, nil)
	if err := ShiftTrainer(w, estimate, target); err != nil {
		t.Fatal(err)
	}
	w.TrainSteps(ctx, 3, nil)
	delta := make([]float32, len(target))
	for i := range delta {
		delta[i] = target[i] - w.params[i] // the 5 steps' movement, the shift dropped out
	}
	c := Commitment{Job: "job", Round: 3, Worker: worker, Start: ThetaHash(estimate), Steps: 5,
		OptBefore: StateHash(start), OptAfter: StateHash(saved(t, w)),
		ResidualBefore: ResidualHash(nil), ResidualAfter: ResidualHash(nil), Delta: DeltaHash(delta),
		ShiftAt: 2, Target: ThetaHash(target)}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeCommitment(c.Encode())
	if err != nil || decoded.ShiftAt != 2 || decoded.Target != c.Target || decoded.Verify() != nil {
		t.Fatalf("round trip: %+v, %v", decoded, err)
	}
	got, err := Reexecution{Trainer: &countingTrainer{}, From: start, Target: target}.Run(ctx, &c, WholeRound)
	if err != nil || !c.Matches(WholeRound, got) {
		t.Fatalf("shifted round: %v, matches %v", err, c.Matches(WholeRound, got))
	}
	if _, err := (Reexecution{Trainer: &countingTrainer{}, From: start, Target: estimate}).Run(ctx, &c, WholeRound); !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("shifted to other weights: %v, want ErrWrongTarget", err)
	}
	if _, err := (Reexecution{Trainer: &countingTrainer{}, From: start}).Run(ctx, &c, WholeRound); !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("no target given: %v, want ErrWrongTarget", err)
	}
}

func TestShiftedCommitmentShape(t *testing.T) {
	c := signedCommitment(t, 1, 0)
	for name, tc := range map[string]struct {
		shiftAt, segments uint32
	}{
		"shift at the last step": {8, 0},
		"shift beyond the round": {9, 0},
		"shift with checkpoints": {2, 4},
	} {
		bad := c
		bad.ShiftAt, bad.Target, bad.SegmentSteps = tc.shiftAt, h("target"), tc.segments
		bad.Checkpoints = nil
		if tc.segments > 0 {
			bad.Checkpoints = make([]Hash, (8+tc.segments-1)/tc.segments)
		}
		if err := bad.CheckShape(); err == nil {
			t.Errorf("%s: shape accepted", name)
		}
	}
	if err := Shift([]float32{1}, []float32{1, 2}, []float32{1}); err == nil {
		t.Error("a shift between vectors of other lengths")
	}
}
