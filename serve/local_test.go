package serve

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
)

// blockingGenerator emits one token, then waits for release or ctx.
type blockingGenerator struct{ release chan struct{} }

func (g blockingGenerator) Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	if opts.OnToken != nil {
		if err := opts.OnToken("x"); err != nil {
			return "", err
		}
	}
	select {
	case <-g.release:
		return "x", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// batchGenerator returns its text without streaming tokens.
type batchGenerator struct {
	text string
	err  error
}

func (g batchGenerator) Generate(context.Context, string, gridmind.GenerateOptions) (string, error) {
	return g.text, g.err
}

func TestLocalComplete(t *testing.T) {
	prefix := sha256.Sum256([]byte(testnet.FakeText("hi", 5, 3)))
	tests := []struct {
		name       string
		gen        Generator
		req        Request
		skip       int
		prefixHash []byte
		wantText   string
		wantFinish string
		wantErr    error
	}{
		{
			name: "streams max_tokens tokens", gen: testnet.FakeGenerator{},
			req:      Request{Model: "m", Prompt: "hi", MaxTokens: 10, Seed: 5, TopP: 1},
			wantText: testnet.FakeText("hi", 5, 10), wantFinish: FinishLength,
		},
		{
			name: "model stops early", gen: testnet.FakeGenerator{StopAfter: 4},
			req:      Request{Model: "m", Prompt: "hi", MaxTokens: 10, Seed: 5, TopP: 1},
			wantText: testnet.FakeText("hi", 5, 4), wantFinish: FinishStop,
		},
		{
			name: "non-streaming generator: one token per character", gen: batchGenerator{text: "héllo"},
			req:      Request{Model: "m", Prompt: "hi", MaxTokens: 10, TopP: 1},
			wantText: "héllo", wantFinish: FinishStop,
		},
		{
			name: "skips a matching prefix", gen: testnet.FakeGenerator{},
			req:  Request{Model: "m", Prompt: "hi", MaxTokens: 10, Seed: 5, TopP: 1},
			skip: 3, prefixHash: prefix[:],
			wantText: testnet.FakeText("hi", 5, 10)[3:], wantFinish: FinishLength,
		},
		{
			name: "a different prefix diverges", gen: testnet.FakeGenerator{},
			req:  Request{Model: "m", Prompt: "hi", MaxTokens: 10, Seed: 6, TopP: 1},
			skip: 3, prefixHash: prefix[:],
			wantErr: ErrDiverged,
		},
		{
			name: "too few tokens to skip diverges", gen: testnet.FakeGenerator{StopAfter: 2},
			req:  Request{Model: "m", Prompt: "hi", MaxTokens: 10, Seed: 5, TopP: 1},
			skip: 3, prefixHash: prefix[:],
			wantErr: ErrDiverged,
		},
		{
			name: "unknown model", gen: testnet.FakeGenerator{},
			req:     Request{Model: "other", Prompt: "hi", MaxTokens: 1, TopP: 1},
			wantErr: ErrModelNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocal(LocalConfig{})
			if err := l.Add("m", tt.gen); err != nil {
				t.Fatal(err)
			}
			var streamed string
			comp, err := l.generate(context.Background(), tt.req, tt.skip, tt.prefixHash, func(p string) error {
				streamed += p
				return nil
			})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if comp.Text != tt.wantText || streamed != tt.wantText || comp.FinishReason != tt.wantFinish {
				t.Errorf("got text %q streamed %q finish %q, want %q %q", comp.Text, streamed, comp.FinishReason, tt.wantText, tt.wantFinish)
			}
			if want := tt.skip + len([]rune(tt.wantText)); comp.PromptTokens != 2 || comp.CompletionTokens != want {
				t.Errorf("usage %d/%d, want 2/%d", comp.PromptTokens, comp.CompletionTokens, want)
			}
		})
	}
}

func TestLocalQueueBound(t *testing.T) {
	gen := blockingGenerator{release: make(chan struct{})}
	l := NewLocal(LocalConfig{Workers: 1, MaxQueue: 1})
	if err := l.Add("m", gen); err != nil {
		t.Fatal(err)
	}
	req := Request{Model: "m", MaxTokens: 4, TopP: 1}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := l.Complete(context.Background(), req, nil)
			errs <- err
		}()
	}
	waitFor(t, "one running and one queued", 5*time.Second, func() bool { return l.QueueLength("m") == 2 })
	if got := l.Served(); len(got) != 1 || got[0].QueueLength != 2 || got[0].Hash != "m" {
		t.Errorf("Served = %+v, want m with queue 2", got)
	}
	_, err := l.Complete(context.Background(), req, nil)
	if !errors.Is(err, ErrOverloaded) || gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Fatalf("third request: err = %v, want ErrOverloaded (unavailable)", err)
	}
	close(gen.release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Errorf("queued request failed: %v", err)
		}
	}
	if got := l.QueueLength("m"); got != 0 {
		t.Errorf("queue after release = %d", got)
	}
	st := l.Served()[0]
	if st.LatencyP50Ms <= 0 || st.LatencyP95Ms < st.LatencyP50Ms || st.ErrorRate != 0 {
		t.Errorf("Served after two requests = %+v, want latencies and no errors", st)
	}
}

func TestLocalCancelWhileQueued(t *testing.T) {
	gen := blockingGenerator{release: make(chan struct{})}
	defer close(gen.release)
	l := NewLocal(LocalConfig{Workers: 1})
	if err := l.Add("m", gen); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = l.Complete(context.Background(), Request{Model: "m", MaxTokens: 1, TopP: 1}, nil) }()
	waitFor(t, "the first request running", 5*time.Second, func() bool { return l.QueueLength("m") == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Complete(ctx, Request{Model: "m", MaxTokens: 1, TopP: 1}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestLocalGeneratorErrorCounts(t *testing.T) {
	l := NewLocal(LocalConfig{})
	if err := l.Add("m", batchGenerator{err: errors.New("out of memory")}); err != nil {
		t.Fatal(err)
	}
	_, err := l.Complete(context.Background(), Request{Model: "m", MaxTokens: 1, TopP: 1}, nil)
	if gridmind.KindOf(err) != gridmind.KindInternal {
		t.Errorf("err = %v (kind %v), want internal", err, gridmind.KindOf(err))
	}
	if st := l.Served()[0]; st.ErrorRate <= 0 {
		t.Errorf("error rate %v after a failure", st.ErrorRate)
	}
}

func TestLocalAddRemove(t *testing.T) {
	l := NewLocal(LocalConfig{})
	if err := l.Add("", testnet.FakeGenerator{}); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("empty hash: %v", err)
	}
	if err := l.Add("b", testnet.FakeGenerator{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add("a", testnet.FakeGenerator{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add("a", testnet.FakeGenerator{}); gridmind.KindOf(err) != gridmind.KindConflict {
		t.Errorf("duplicate: %v", err)
	}
	if got := l.Models(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Models = %v", got)
	}
	if !l.Remove("a") || l.Has("a") || l.Remove("a") {
		t.Error("Remove did not work once and only once")
	}
}
