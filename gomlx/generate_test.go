package gomlx

import (
	stdcontext "context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

func TestGenerate(t *testing.T) {
	for _, cfg := range smallConfigs {
		m := newModel(t, cfg)
		train(t, m, 5, batches(t, m, 1))
		gen := func(prompt string, opts gridmind.GenerateOptions) string {
			t.Helper()
			out, err := m.Generate(stdcontext.Background(), prompt, opts)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		sampled := gridmind.GenerateOptions{MaxTokens: 40, Temperature: 1, TopP: 0.95, Seed: 7}
		a := gen("func main() {", sampled)
		if n := utf8.RuneCountInString(a); n != 40 {
			t.Errorf("%s: %d characters, want MaxTokens = 40", cfg.Kind, n)
		}
		if b := gen("func main() {", sampled); a != b {
			t.Errorf("%s: same seed gave %q then %q", cfg.Kind, a, b)
		}
		sampled.Seed = 8
		if c := gen("func main() {", sampled); c == a {
			t.Errorf("%s: seeds 7 and 8 gave the same 40 characters %q", cfg.Kind, a)
		}
		greedy := gridmind.GenerateOptions{MaxTokens: 20, Seed: 1}
		g1 := gen("package ", greedy)
		greedy.Seed = 2
		if g2 := gen("package ", greedy); g1 != g2 {
			t.Errorf("%s: temperature 0 depends on the seed: %q vs %q", cfg.Kind, g1, g2)
		}
		if out := gen("", gridmind.GenerateOptions{MaxTokens: 5, Temperature: 1}); utf8.RuneCountInString(out) != 5 {
			t.Errorf("%s: empty prompt gave %q", cfg.Kind, out)
		}
		if out := gen("x", gridmind.GenerateOptions{}); out != "" {
			t.Errorf("%s: MaxTokens 0 gave %q", cfg.Kind, out)
		}
		long := strings.Repeat("abc ", 50) // longer than the context
		if out := gen(long, gridmind.GenerateOptions{MaxTokens: 3}); utf8.RuneCountInString(out) != 3 {
			t.Errorf("%s: long prompt gave %q", cfg.Kind, out)
		}
	}
}

func TestGenerateStreams(t *testing.T) {
	m := newModel(t, smallConfigs[1])
	var pieces []string
	opts := gridmind.GenerateOptions{MaxTokens: 12, Temperature: 0.8, Seed: 3, OnToken: func(p string) error {
		pieces = append(pieces, p)
		return nil
	}}
	out, err := m.Generate(stdcontext.Background(), "if err != nil ", opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(pieces) != 12 || strings.Join(pieces, "") != out {
		t.Fatalf("streamed %q, returned %q", pieces, out)
	}

	stop := errors.New("client went away")
	calls := 0
	opts.OnToken = func(string) error {
		if calls++; calls == 4 {
			return stop
		}
		return nil
	}
	out, err = m.Generate(stdcontext.Background(), "x", opts)
	if !errors.Is(err, stop) || utf8.RuneCountInString(out) != 4 {
		t.Fatalf("got %q, %v; want the 4 characters so far and the callback's error", out, err)
	}

	ctx, cancel := stdcontext.WithCancel(stdcontext.Background())
	cancel()
	if _, err := m.Generate(ctx, "x", gridmind.GenerateOptions{MaxTokens: 5}); !errors.Is(err, stdcontext.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	m := newModel(t, smallConfigs[0])
	for _, opts := range []gridmind.GenerateOptions{
		{MaxTokens: -1},
		{MaxTokens: MaxGenerateTokens + 1},
		{MaxTokens: 1, Temperature: -0.5},
		{MaxTokens: 1, Temperature: math.NaN()},
		{MaxTokens: 1, TopP: 1.5},
		{MaxTokens: 1, TopP: -0.1},
	} {
		if _, err := m.Generate(stdcontext.Background(), "x", opts); gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Errorf("%+v: %v, want invalid", opts, err)
		}
	}
}

func TestSample(t *testing.T) {
	logits := []float32{0, 3, 1, 3.5, -2}
	rng := rand.New(rand.NewPCG(1, 1))
	if got := sample(logits, 0, 0, rng); got != 3 {
		t.Errorf("greedy picked %d, want 3", got)
	}
	// With top_p small enough to keep only the best id, sampling is greedy.
	for range 50 {
		if got := sample(logits, 1, 0.1, rng); got != 3 {
			t.Fatalf("top_p 0.1 picked %d, want 3", got)
		}
	}
	// Softmax is about [0.018 0.352 0.048 0.580 0.002]: top_p 0.9 keeps
	// ids 3 and 1 (0.932) and nothing else.
	seen := map[int32]int{}
	for range 2000 {
		seen[sample(logits, 1, 0.9, rng)]++
	}
	if seen[0]+seen[2]+seen[4] != 0 || seen[3] < seen[1] || seen[1] == 0 {
		t.Errorf("top_p 0.9 draws: %v", seen)
	}
	// Plain sampling follows the softmax: id 3 about 58% of the time.
	counts := map[int32]int{}
	for range 4000 {
		counts[sample(logits, 1, 1, rng)]++
	}
	if p := float64(counts[3]) / 4000; math.Abs(p-0.580) > 0.03 {
		t.Errorf("id 3 drawn with frequency %.3f, want about 0.580", p)
	}
}
