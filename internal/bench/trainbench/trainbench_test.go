package trainbench

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// toyVocab is the toy model's vocabulary, as in diloco's tests.
const toyVocab = 24

// newToy is the toy trainer at learning rate lr (0: 0.05, what these
// tests used before the rate was a parameter).
func newToy(seed int64, lr float64) (gridmind.Trainer, error) {
	if lr == 0 {
		lr = 0.05
	}
	return dilocotest.NewToyTrainer(toyVocab, seed, lr)
}

func TestRunToy(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	opts := Options{
		NewTrainer: newToy,
		Batches: func(_ int64, workers, worker int, round uint64) gridmind.BatchSource {
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
	if !strings.Contains(md, "| param-avg | 2 | 1 | 100 | float32 | 1 | default |") || len(lines) == 0 {
		t.Errorf("markdown or progress missing:\n%s", md)
	}
}

func TestRunCodec(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	opts := func(codec train.Codec) Options {
		var codecs []train.Codec // none: the default
		if codec != 0 {
			codecs = []train.Codec{codec}
		}
		return Options{
			NewTrainer: newToy,
			Batches: func(_ int64, workers, worker int, round uint64) gridmind.BatchSource {
				return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
			},
			EvalBatches: data.EvalBatches(4, 256), Workers: []int{2}, InnerSteps: []int{5}, TotalSteps: 40,
			BlockSize: 64, Codecs: codecs, ThroughputParams: -1,
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
			if md := rep.Markdown(); !strings.Contains(md, "| diloco | 2 | 5 | 4 | "+tt.want+" | 1 | default |") {
				t.Errorf("markdown lacks the %s row:\n%s", tt.want, md)
			}
		})
	}
}

// TestRunSyncDP: with a sync trainer the baseline is one optimizer
// over the K workers' batches, and its bytes are a ring all-reduce's.
func TestRunSyncDP(t *testing.T) {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	opts := Options{
		NewTrainer:     newToy,
		NewSyncTrainer: func(_ int, seed int64, lr float64) (gridmind.Trainer, error) { return newToy(seed, lr) },
		Batches: func(_ int64, workers, worker int, round uint64) gridmind.BatchSource {
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

// seededToyOptions is a small toy run with a sync-dp baseline, a
// validation set, and batches that follow the seed.
func seededToyOptions() Options {
	data := dilocotest.NewToyData(toyVocab, 7, 3)
	return Options{
		NewTrainer:     newToy,
		NewSyncTrainer: func(_ int, seed int64, lr float64) (gridmind.Trainer, error) { return newToy(seed, lr) },
		Batches: func(seed int64, workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31+seed*101, 16, 2)
		},
		EvalBatches: data.EvalBatches(4, 256), ValidBatches: data.EvalBatches(2, 256),
		Workers: []int{2}, InnerSteps: []int{5}, TotalSteps: 40, BlockSize: 64, ThroughputParams: -1,
	}
}

// TestRunSeedsAndRates: every configuration runs at every seed and rate;
// the summary is over the seeds at the chosen rate, and DiLoCo is compared
// with the baseline of the same seed.
func TestRunSeedsAndRates(t *testing.T) {
	opts := seededToyOptions()
	opts.Seeds, opts.LearningRates = []int64{1, 2}, []float64{0.05, 0.005}
	opts.Codecs = []train.Codec{train.CodecInt8, train.CodecInt4}
	rep, err := Run(context.Background(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 2 seeds × 2 rates × (baseline, int8, int4).
	if len(rep.Rows) != 12 || len(rep.Summaries) != 3 {
		t.Fatalf("%d rows, %d summaries:\n%s", len(rep.Rows), len(rep.Summaries), rep.Markdown())
	}
	base := map[int64]Row{}
	for _, r := range rep.Rows {
		if r.Method == "sync-dp" && r.Chosen {
			base[r.Seed] = r
		}
	}
	if len(base) != 2 || base[1].FinalEvalLoss == base[2].FinalEvalLoss {
		t.Fatalf("chosen baselines %+v: want one per seed, and seeds that differ", base)
	}
	for _, s := range rep.Summaries {
		best := s.ValidLossByLR[0] <= s.ValidLossByLR[1]
		if (best && s.LR != 0.05) || (!best && s.LR != 0.005) {
			t.Errorf("%s %s: chose lr %g with mean validation losses %v", s.Method, s.Codec, s.LR, s.ValidLossByLR)
		}
		if s.Seeds != 2 || !(s.Loss.Min <= s.Loss.Mean && s.Loss.Mean <= s.Loss.Max && s.Loss.Std > 0) {
			t.Errorf("%s %s: spread %+v over %d seeds", s.Method, s.Codec, s.Loss, s.Seeds)
		}
	}
	for _, r := range rep.Rows {
		b := base[r.Seed]
		if want := (r.FinalEvalLoss - b.FinalEvalLoss) / b.FinalEvalLoss; r.Method == "diloco" && r.LossVsSync != want {
			t.Errorf("%s seed %d lr %g: vs baseline %v, want %v", r.Codec, r.Seed, r.LR, r.LossVsSync, want)
		}
	}
	md := rep.Markdown()
	for _, want := range []string{"seeds 1, 2; AdamW learning rates 0.05, 0.005 (each configuration's chosen by its mean loss over the seeds on a validation set",
		"Learning-rate search", "| diloco | 2 | 5 | 4 | int4 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestChooseOnValidation: the rate is chosen by the validation loss
// averaged over the seeds, even where the reported loss would choose
// otherwise, and a diverged rate (NaN) is never chosen.
func TestChooseOnValidation(t *testing.T) {
	row := func(method string, seed int64, lr, valid, eval float64) Row {
		return Row{Method: method, Workers: 4, InnerSteps: 1, Codec: "float32", Seed: seed, LR: lr, ValidLoss: valid, FinalEvalLoss: eval, BytesPerWorker: 1000}
	}
	dl := func(seed int64, lr, valid, eval float64) Row {
		r := row("diloco", seed, lr, valid, eval)
		r.InnerSteps, r.Codec, r.BytesPerWorker = 200, "int8", 10
		return r
	}
	rep := Report{Seeds: []int64{1, 2}, LearningRates: []float64{1e-3, 1e-2, 1e-1}, Rows: []Row{
		// sync-dp: lr 1e-2 is best on validation on average (seed 2 alone prefers 1e-3), 1e-3 on eval.
		row("sync-dp", 1, 1e-3, 2.5, 2.0), row("sync-dp", 1, 1e-2, 2.1, 2.2), row("sync-dp", 1, 1e-1, math.NaN(), math.NaN()),
		row("sync-dp", 2, 1e-3, 2.2, 2.0), row("sync-dp", 2, 1e-2, 2.3, 2.4), row("sync-dp", 2, 1e-1, 1.0, 1.0),
		dl(1, 1e-3, 3, 3), dl(1, 1e-2, 2.6, 2.2), dl(1, 1e-1, 9, 9),
		dl(2, 1e-3, 3, 3), dl(2, 1e-2, 2.6, 2.6), dl(2, 1e-1, 9, 9),
	}}
	rep.choose()
	if len(rep.Summaries) != 2 {
		t.Fatalf("summaries %+v", rep.Summaries)
	}
	sync, d := rep.Summaries[0], rep.Summaries[1]
	if sync.LR != 1e-2 || d.LR != 1e-2 {
		t.Fatalf("chose %g and %g, want 1e-2 for both", sync.LR, d.LR)
	}
	if sync.Loss.Mean != 2.3 || sync.Loss.Min != 2.2 || sync.Loss.Max != 2.4 {
		t.Errorf("baseline spread %+v", sync.Loss)
	}
	// Seed by seed: (2.2−2.2)/2.2 and (2.6−2.4)/2.4.
	if want := (0 + 0.2/2.4) / 2; math.Abs(d.LossVsSync.Mean-want) > 1e-12 || d.LossVsSync.Min != 0 || d.Reduction != 100 {
		t.Errorf("diloco vs baseline %+v (want mean %v), reduction %v", d.LossVsSync, want, d.Reduction)
	}
}

// TestRunBaselineRates: further seeds at rates already chosen run the
// baseline at its rate and DiLoCo at its own, and still compare them.
func TestRunBaselineRates(t *testing.T) {
	opts := seededToyOptions()
	opts.Seeds, opts.LearningRates, opts.BaselineLearningRates = []int64{3}, []float64{0.005}, []float64{0.05}
	rep, err := Run(context.Background(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Method != "sync-dp" || rep.Rows[0].LR != 0.05 || rep.Rows[1].LR != 0.005 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	b, d := rep.Rows[0], rep.Rows[1]
	if !b.Chosen || !d.Chosen || d.LossVsSync != (d.FinalEvalLoss-b.FinalEvalLoss)/b.FinalEvalLoss {
		t.Errorf("baseline %+v, diloco %+v", b, d)
	}
	if md := rep.Markdown(); !strings.Contains(md, "| sync-dp | 2 | 1 | float32 | **") || !strings.Contains(md, "not run") {
		t.Errorf("markdown:\n%s", md)
	}
}
