package byzantine

import (
	"context"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

const vocab = 24

func toyOptions(attacks []Attack, rules []Rule) Options {
	data := dilocotest.NewToyData(vocab, 7, 3)
	return Options{
		NewTrainer: func() (gridmind.Trainer, error) { return dilocotest.NewToyTrainer(vocab, 1, 0.05) },
		Batches: func(workers, worker int, round uint64) gridmind.BatchSource {
			return data.Batches(dilocotest.ToySeed(worker, round)+int64(workers)*31, 16, 2)
		},
		EvalBatches: data.EvalBatches(4, 256),
		Setups:      [][2]int{{5, 1}},
		Attacks:     attacks, Rules: rules, Seeds: []int64{1},
		Rounds: 6, InnerSteps: 5,
	}
}

// TestDefaultRuleHoldsAgainstEveryAttack is the fast configuration of
// `gridmind bench byzantine`: with the job defaults, no attack moves the
// final loss more than 5% from the clean run, every attacker is out within
// 2 rounds, and no honest worker is excluded or rejected.
func TestDefaultRuleHoldsAgainstEveryAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 8 jobs")
	}
	rep, err := Run(context.Background(), toyOptions(Attacks, DefaultRules()[:1]), func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(Attacks) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(Attacks))
	}
	for _, row := range rep.Rows {
		if !(row.Ratio <= 1.05) {
			t.Errorf("%s: final loss %.4f is %.1f%% above clean %.4f", row.Attack, row.FinalLoss, 100*(row.Ratio-1), row.CleanLoss)
		}
		if row.ExcludedAfter < 0 || row.ExcludedAfter > 2 {
			t.Errorf("%s: attacker out after %s, want within 2 rounds", row.Attack, excludedText(row.ExcludedAfter))
		}
		if row.HonestRejected != 0 {
			t.Errorf("%s: the screen rejected honest workers in %d rounds", row.Attack, row.HonestRejected)
		}
	}
	if md := rep.Markdown(); !strings.Contains(md, "| 5 | 1 | centered-clip+screen (default) | sign-flip-x10 |") {
		t.Errorf("markdown lacks a row:\n%s", md)
	}
}

// TestPlainMeanIsPoisoned shows what the harness is for: without the
// screen, the mean follows one attacker sending −10·Δ.
func TestPlainMeanIsPoisoned(t *testing.T) {
	rules := []Rule{{"mean, no screen", train.Mean{}, train.Screen{}}}
	rep, err := Run(context.Background(), toyOptions([]Attack{SignFlipX10}, rules), func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if row := rep.Rows[0]; !(row.Ratio > 1.05) || row.ExcludedAfter >= 0 {
		t.Errorf("plain mean under sign-flip ×10: ratio %.3f, attacker out after %s; want poisoned and never excluded", row.Ratio, excludedText(row.ExcludedAfter))
	}
}

func TestParseAttacks(t *testing.T) {
	if got, err := ParseAttacks("all"); err != nil || len(got) != len(Attacks) {
		t.Errorf("all: %v %v", got, err)
	}
	if got, err := ParseAttacks("noise,free-rider"); err != nil || len(got) != 2 {
		t.Errorf("two: %v %v", got, err)
	}
	if _, err := ParseAttacks("noise,bribe"); err == nil || !strings.Contains(err.Error(), "bribe") {
		t.Errorf("an unknown attack: %v", err)
	}
}
