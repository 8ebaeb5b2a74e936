package trainbench

import (
	"context"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// toyVocab is the toy model's vocabulary, as in diloco's tests.
const toyVocab = 24

func TestRunToy(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	opts := Options{
		NewTrainer: func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(toyVocab, 1, 0.05) },
		Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
		},
		EvalBatches:      data.EvalBatches(4, 256),
		Workers:          []int{2},
		InnerSteps:       []int{5, 50, 500},
		TotalSteps:       200,
		BlockSize:        64,
		ThroughputParams: 1 << 14,
		SkipLibp2p:       testing.Short(),
	}
	var lines []string
	rep, err := Run(context.Background(), opts, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	t.Log("\n" + md)
	if len(rep.Rows) != 4 || rep.Rows[0].Method != "param-avg" || rep.Rows[3].Skipped == "" {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	sync, h5, h50 := rep.Rows[0], rep.Rows[1], rep.Rows[2]
	if sync.Rounds != 100 || h5.Rounds != 20 || h50.Rounds != 2 {
		t.Errorf("rounds %d %d %d, want 100 20 2", sync.Rounds, h5.Rounds, h50.Rounds)
	}
	// Same tokens everywhere; fewer rounds send proportionally less.
	if sync.Tokens != h5.Tokens || h5.Tokens != h50.Tokens || sync.Tokens == 0 {
		t.Errorf("tokens %d %d %d differ", sync.Tokens, h5.Tokens, h50.Tokens)
	}
	if !(h50.Reduction > h5.Reduction && h5.Reduction > 5) {
		t.Errorf("reductions %.1f (H=5) %.1f (H=50)", h5.Reduction, h50.Reduction)
	}
	floor := data.EntropyRate()
	for _, r := range rep.Rows[:3] {
		if !(r.FinalEvalLoss < floor+0.5) {
			t.Errorf("%s H=%d: final loss %.3f, floor %.3f", r.Method, r.InnerSteps, r.FinalEvalLoss, floor)
		}
	}
	wantTP := 2
	if !opts.SkipLibp2p {
		wantTP = 4
	}
	if len(rep.Throughput) != wantTP {
		t.Fatalf("throughput rows %+v", rep.Throughput)
	}
	for _, tp := range rep.Throughput {
		if tp.BytesPerSec <= 0 || tp.BytesPerWorker <= 0 {
			t.Errorf("throughput %+v", tp)
		}
	}
	if !strings.Contains(md, "| param-avg | 2 | 1 | 100 | float32 |") || len(lines) == 0 {
		t.Errorf("markdown or progress missing:\n%s", md)
	}
}

func TestRunCodec(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	opts := func(codec train.Codec) Options {
		return Options{
			NewTrainer: func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(toyVocab, 1, 0.05) },
			Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
				return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
			},
			EvalBatches: data.EvalBatches(4, 256), Workers: []int{2}, InnerSteps: []int{5}, TotalSteps: 40,
			BlockSize: 64, Codec: codec, ThroughputParams: -1,
		}
	}
	tests := []struct {
		codec train.Codec
		want  string // the DiLoCo row's codec; empty: refused
	}{
		{0, "int8"},
		{train.CodecInt8, "int8"},
		{train.CodecInt4, "int4"},
		{train.CodecFloat32, ""},
		{train.Codec(9), ""},
	}
	for _, tt := range tests {
		t.Run(tt.codec.String(), func(t *testing.T) {
			rep, err := Run(context.Background(), opts(tt.codec), nil)
			if tt.want == "" {
				if gridmind.KindOf(err) != gridmind.KindInvalid {
					t.Fatalf("codec %s: error %v, want kind invalid", tt.codec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Rows) != 2 || rep.Rows[1].Codec != tt.want || rep.Rows[0].Codec != "float32" {
				t.Fatalf("rows %+v", rep.Rows)
			}
			if r := rep.Rows[1]; r.Reduction <= 1 || !(r.FinalEvalLoss > 0) {
				t.Errorf("DiLoCo row %+v", r)
			}
			if md := rep.Markdown(); !strings.Contains(md, "| diloco | 2 | 5 | 4 | "+tt.want+" |") {
				t.Errorf("markdown lacks the %s row:\n%s", tt.want, md)
			}
		})
	}
}

// TestRunSyncDP: with a sync trainer the baseline is one optimizer
// over the K workers' batches, and its bytes are a ring all-reduce's.
func TestRunSyncDP(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	newTrainer := func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(toyVocab, 1, 0.05) }
	opts := Options{
		NewTrainer:     newTrainer,
		NewSyncTrainer: func(int) (gridmind.Trainer, error) { return newTrainer() },
		Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
		},
		EvalBatches: data.EvalBatches(4, 256), Workers: []int{2}, InnerSteps: []int{5}, TotalSteps: 40,
		BlockSize: 64, ThroughputParams: -1,
	}
	rep, err := Run(context.Background(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := rep.Rows[0]
	if base.Method != "sync-dp" || base.StepsPerWorker != 20 || !(base.FinalEvalLoss > 0) {
		t.Fatalf("baseline %+v", base)
	}
	// 20 steps, K=2: 2·(2−1)/2 · 4 bytes · params per step.
	if want := int64(20 * 4 * rep.NumParams); base.BytesPerWorker != want {
		t.Errorf("baseline bytes %d, want %d", base.BytesPerWorker, want)
	}
	// Two batches of 16 windows of 2 per step.
	if base.Tokens != 20*2*16*2 && base.Tokens != 20*2*16 {
		t.Errorf("baseline trained %d tokens", base.Tokens)
	}
	if d := rep.Rows[1]; d.Method != "diloco" || d.LossVsSync != (d.FinalEvalLoss-base.FinalEvalLoss)/base.FinalEvalLoss {
		t.Errorf("diloco row %+v", d)
	}
}
