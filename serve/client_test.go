package serve

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/route"
)

func fakeGen(delay time.Duration) func(int) Generator {
	return func(int) Generator { return testnet.FakeGenerator{TokenDelay: delay} }
}

func req(id string, n int) Request {
	return Request{ID: id, Model: "m", Prompt: "tell me " + id, MaxTokens: n, Temperature: 0.8, TopP: 1, Seed: 42}
}

func TestClientForwardsAndMeters(t *testing.T) {
	var mu sync.Mutex
	var clientReceipts []Receipt
	c := newCluster(t, "m", []time.Duration{2 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond}, fakeGen(0),
		func(cfg *ClientConfig) {
			cfg.OnReceipt = func(r Receipt) { mu.Lock(); clientReceipts = append(clientReceipts, r); mu.Unlock() }
		})
	servedBy := map[gridmind.NodeID]int{}
	for i := 0; i < 30; i++ {
		r := req("r"+string(rune('a'+i)), 12)
		var streamed strings.Builder
		comp, err := c.client.Complete(context.Background(), r, func(p string) error { streamed.WriteString(p); return nil })
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want := testnet.FakeText(r.Prompt, r.Seed, r.MaxTokens)
		if comp.Text != want || streamed.String() != want {
			t.Fatalf("request %d: text %q streamed %q, want %q", i, comp.Text, streamed.String(), want)
		}
		if comp.FinishReason != FinishLength || comp.CompletionTokens != 12 || comp.PromptTokens != len(r.Prompt) {
			t.Errorf("request %d: finish %s usage %d/%d", i, comp.FinishReason, comp.PromptTokens, comp.CompletionTokens)
		}
		if comp.Receipt == nil || comp.Receipt.Verify() != nil || comp.Receipt.Server != comp.Server {
			t.Fatalf("request %d: receipt %+v does not verify", i, comp.Receipt)
		}
		servedBy[comp.Server]++
	}
	// Once RTTs are measured the nearest replica takes most sequential traffic.
	if near := c.servers[0].id; servedBy[near] < 16 {
		t.Errorf("served by %v; want most by the 2 ms replica", servedBy)
	}
	// Every server holds the doubly signed receipts of what it served.
	waitFor(t, "receipts at the servers", 5*time.Second, func() bool {
		n := 0
		for _, s := range c.servers {
			n += len(s.Receipts())
		}
		return n == 30
	})
	for _, s := range c.servers {
		for _, r := range s.Receipts() {
			if r.Server != s.id || r.Client != c.client.ID() || r.TokensOut != 12 {
				t.Errorf("receipt %+v at %s", r, s.id.Short())
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(clientReceipts) != 30 {
		t.Errorf("client kept %d receipts, want 30", len(clientReceipts))
	}
	st := c.client.Stats()
	// A request slower than the recent p95 may be hedged (a slow CI machine).
	if st.Requests != 30 || st.Succeeded != 30 || st.Failed != 0 || st.Attempts != 30+st.Hedges || st.Failovers != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestClientFailsOverDeadReplica(t *testing.T) {
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}, fakeGen(0), nil)
	dead := c.servers[0].id
	c.net.Kill(dead)
	for i := 0; i < 20; i++ {
		r := req("f"+string(rune('a'+i)), 4)
		comp, err := c.client.Complete(context.Background(), r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if comp.Server == dead {
			t.Fatalf("request %d answered by the dead replica", i)
		}
	}
	// The dead replica was tried at most a few times: back-off keeps it away.
	st := c.client.Stats()
	if st.Failovers == 0 || st.Failovers > 3 {
		t.Errorf("fail-overs = %d, want 1..3 (back-off)", st.Failovers)
	}
	for _, s := range c.client.Status("m") {
		if s.ID == dead && s.Failures == 0 {
			t.Errorf("dead replica status %+v shows no failures", s)
		}
	}
}

func TestClientResumesStreamOnAnotherReplica(t *testing.T) {
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, fakeGen(2*time.Millisecond), nil)
	r := req("resume", 30)
	var got strings.Builder
	var victim gridmind.NodeID
	comp, err := c.client.Complete(context.Background(), r, func(p string) error {
		got.WriteString(p)
		if got.Len() == 5 { // kill whoever is streaming, mid-stream
			for _, s := range c.servers {
				if c.net.ActiveStreams(s.id) > 0 {
					victim = s.id
					c.net.Kill(s.id)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := testnet.FakeText(r.Prompt, r.Seed, 30)
	if got.String() != want || comp.Text != want {
		t.Fatalf("streamed %q, want %q", got.String(), want)
	}
	if victim == "" || comp.Server == victim || !comp.Resumed || comp.Attempts < 2 {
		t.Errorf("victim %s, completion %+v: want resumed on another replica", victim.Short(), comp)
	}
	// The new replica regenerated all 30 tokens and is paid for them.
	if comp.Receipt.TokensOut != 30 || comp.CompletionTokens != 30 {
		t.Errorf("receipt tokens out %d, completion tokens %d, want 30", comp.Receipt.TokensOut, comp.CompletionTokens)
	}
	if st := c.client.Stats(); st.Resumes != 1 {
		t.Errorf("stats %+v, want one resume", st)
	}
}

// stuckGenerator never produces anything until its ctx ends.
type stuckGenerator struct{ running chan struct{} }

func (g stuckGenerator) Generate(ctx context.Context, _ string, _ gridmind.GenerateOptions) (string, error) {
	g.running <- struct{}{}
	<-ctx.Done()
	return "", ctx.Err()
}

func TestClientHedgesSlowReplica(t *testing.T) {
	stuck := stuckGenerator{running: make(chan struct{}, 10)}
	gens := func(i int) Generator {
		if i == 0 {
			return stuck
		}
		return testnet.FakeGenerator{}
	}
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 20 * time.Millisecond}, gens, func(cfg *ClientConfig) {
		cfg.Route = route.Config{HedgeDefault: 30 * time.Millisecond, DefaultRTT: time.Millisecond}
	})
	// Make the stuck replica look nearest so it is asked first.
	c.client.mu.Lock()
	c.client.models["m"] = nil
	c.client.mu.Unlock()
	if _, err := c.client.routes(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	c.client.mu.Lock()
	c.client.models["m"].router.ObserveRTT(c.servers[0].id, time.Microsecond)
	c.client.models["m"].router.ObserveRTT(c.servers[1].id, 20*time.Millisecond)
	c.client.mu.Unlock()

	start := time.Now()
	comp, err := c.client.Complete(context.Background(), req("hedge", 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !comp.Hedged || comp.Server != c.servers[1].id {
		t.Errorf("completion %+v: want hedged and answered by the second replica", comp)
	}
	if elapsed := time.Since(start); elapsed < 30*time.Millisecond {
		t.Errorf("answered after %v, before the hedge delay", elapsed)
	}
	select {
	case <-stuck.running:
	default:
		t.Error("the first replica was never asked")
	}
	// The loser was cancelled: its generation ends and its queue empties.
	waitFor(t, "the slow replica's request to be cancelled", 5*time.Second, func() bool {
		return c.servers[0].local.QueueLength("m") == 0
	})
	if st := c.client.Stats(); st.Hedges != 1 || st.Failovers != 0 {
		t.Errorf("stats %+v, want one hedge", st)
	}
}

// shiftedGenerator samples differently, like a replica on other hardware.
type shiftedGenerator struct{ testnet.FakeGenerator }

func (g shiftedGenerator) Generate(ctx context.Context, p string, o gridmind.GenerateOptions) (string, error) {
	o.Seed++
	return g.FakeGenerator.Generate(ctx, p, o)
}

// signalGenerator closes done once the inner generator has produced n tokens.
type signalGenerator struct {
	Generator
	n    int
	done chan struct{}
}

func (g signalGenerator) Generate(ctx context.Context, p string, o gridmind.GenerateOptions) (string, error) {
	count, inner := 0, o.OnToken
	o.OnToken = func(s string) error {
		if count++; count == g.n {
			close(g.done)
		}
		return inner(s)
	}
	return g.Generator.Generate(ctx, p, o)
}

func TestClientDivergedResume(t *testing.T) {
	for _, streaming := range []bool{true, false} {
		progress := []chan struct{}{make(chan struct{})}
		gens := func(i int) Generator {
			if i == 0 {
				return signalGenerator{testnet.FakeGenerator{TokenDelay: time.Millisecond}, 5, progress[0]}
			}
			return shiftedGenerator{testnet.FakeGenerator{TokenDelay: time.Millisecond}}
		}
		name := map[bool]string{true: "streaming caller gets a continuation", false: "buffering caller gets a restart"}[streaming]
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, "m", []time.Duration{time.Millisecond, 50 * time.Millisecond}, gens, nil)
			c.client.mu.Lock()
			c.client.models["m"] = nil
			c.client.mu.Unlock()
			if _, err := c.client.routes(context.Background(), "m"); err != nil {
				t.Fatal(err)
			}
			c.client.mu.Lock()
			c.client.models["m"].router.ObserveRTT(c.servers[0].id, time.Microsecond)
			c.client.models["m"].router.ObserveRTT(c.servers[1].id, 50*time.Millisecond)
			c.client.mu.Unlock()

			r := req("div", 20)
			n := 0
			var kill func() // kills the first replica after 5 tokens
			kill = func() {
				n++
				if n == 5 {
					c.net.Kill(c.servers[0].id)
				}
			}
			var onPiece func(string) error
			if streaming {
				onPiece = func(string) error { kill(); return nil }
			} else {
				// No pieces reach a buffering caller: kill the first replica
				// once it has generated 5 tokens.
				go func() {
					<-progress[0]
					c.net.Kill(c.servers[0].id)
				}()
			}
			comp, err := c.client.Complete(context.Background(), r, onPiece)
			if err != nil {
				t.Fatal(err)
			}
			if streaming {
				// The first d tokens came from the first replica; the second
				// continued prompt + those d tokens with its own sampling.
				ok := false
				for d := 5; d <= 20 && !ok; d++ {
					prefix := testnet.FakeText(r.Prompt, r.Seed, d)
					ok = comp.Text == prefix+testnet.FakeText(r.Prompt+prefix, r.Seed+1, 20-d)
				}
				if !ok || comp.CompletionTokens != 20 || comp.PromptTokens != len(r.Prompt) {
					t.Errorf("completion %+v is not a prefix of the first replica continued by the second", comp)
				}
				if st := c.client.Stats(); st.Continuations != 1 {
					t.Errorf("stats %+v, want one continuation", st)
				}
				return
			}
			shifted := testnet.FakeText(r.Prompt, r.Seed+1, 20)
			if comp.Text != shifted || comp.Server != c.servers[1].id {
				t.Errorf("text %q from %s, want the second replica's own text %q", comp.Text, comp.Server.Short(), shifted)
			}
			if st := c.client.Stats(); st.Restarts != 1 {
				t.Errorf("stats %+v, want one restart after the divergence", st)
			}
		})
	}
}

func TestClientStallFailsOver(t *testing.T) {
	hang := blockingGenerator{release: make(chan struct{})}
	defer close(hang.release)
	gens := func(i int) Generator {
		if i == 0 {
			return hang // one token, then silence
		}
		return testnet.FakeGenerator{}
	}
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 5 * time.Millisecond}, gens, func(cfg *ClientConfig) {
		cfg.StallTimeout = 300 * time.Millisecond // long enough for a loaded machine
	})
	c.client.mu.Lock()
	c.client.models["m"] = nil
	c.client.mu.Unlock()
	if _, err := c.client.routes(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	c.client.mu.Lock()
	c.client.models["m"].router.ObserveRTT(c.servers[0].id, time.Microsecond)
	c.client.models["m"].router.ObserveRTT(c.servers[1].id, 5*time.Millisecond)
	c.client.mu.Unlock()
	r := req("stall", 6)
	r.Prompt = "x"
	// The hanging replica's one token "x" differs from testnet.FakeText, so resuming
	// would diverge; a buffering caller restarts cleanly on the other.
	comp, err := c.client.Complete(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if comp.Server != c.servers[1].id || comp.Text != testnet.FakeText(r.Prompt, r.Seed, 6) {
		t.Errorf("completion %+v", comp)
	}
}

// TestClientSilentReplicaBackedOff: a replica that takes the request and
// never answers (not even the start message) is counted as failed when
// another replica wins the race, whether the silent one was asked first
// (the hedge rescued the request) or was the hedge itself (the first
// replica was merely slow), so the router backs off from it instead of
// asking it again.
func TestClientSilentReplicaBackedOff(t *testing.T) {
	for _, tc := range []struct {
		name        string
		silentFirst bool
	}{
		{"silent replica asked first", true},
		{"silent replica asked as the hedge", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The answering replica takes 150 ms per token: as the first
			// choice it is hedged after 20 ms, and a silent hedge has been
			// silent for 130 ms, several hedge delays, when it answers.
			c := newCluster(t, "m", []time.Duration{time.Millisecond, time.Millisecond}, fakeGen(150*time.Millisecond), func(cfg *ClientConfig) {
				cfg.Route.HedgeDefault = 20 * time.Millisecond
			})
			silent, healthy := c.servers[0].id, c.servers[1].id
			c.net.Listen(silent, time.Millisecond, func(_ gridmind.NodeID, s io.ReadWriteCloser) { _, _ = io.Copy(io.Discard, s) })
			if _, err := c.client.routes(context.Background(), "m"); err != nil {
				t.Fatal(err)
			}
			first, second := silent, healthy
			if !tc.silentFirst {
				first, second = healthy, silent
			}
			c.client.mu.Lock()
			c.client.models["m"].router.ObserveRTT(first, time.Microsecond) // routing asks it first
			c.client.models["m"].router.ObserveRTT(second, 5*time.Millisecond)
			c.client.mu.Unlock()
			comp, err := c.client.Complete(context.Background(), req("silent", 2), nil)
			if err != nil {
				t.Fatal(err)
			}
			if comp.Server != healthy || !comp.Hedged {
				t.Fatalf("completion from %s hedged %v, want a hedged request answered by %s", comp.Server.Short(), comp.Hedged, healthy.Short())
			}
			for _, st := range c.client.Status("m") {
				if st.ID == silent && (st.Failures != 1 || st.BackoffUntil.IsZero()) {
					t.Errorf("silent replica: %d failures, back-off until %v; want 1 and a back-off", st.Failures, st.BackoffUntil)
				}
				if st.ID == healthy && st.Failures != 0 {
					t.Errorf("healthy replica: %d failures", st.Failures)
				}
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	c := newCluster(t, "m", []time.Duration{time.Millisecond, time.Millisecond}, fakeGen(0), nil)
	if _, err := c.client.Complete(context.Background(), Request{ID: "x", Model: "nope", MaxTokens: 1, TopP: 1}, nil); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("unknown model: err = %v", err)
	}
	if _, err := c.client.Complete(context.Background(), Request{ID: "x", Model: "m", MaxTokens: -1, TopP: 1}, nil); gridmind.KindOf(err) != gridmind.KindInvalid {
		t.Errorf("bad request: err = %v", err)
	}
	for _, s := range c.servers {
		c.net.Kill(s.id)
	}
	_, err := c.client.Complete(context.Background(), req("dead", 3), nil)
	if !errors.Is(err, ErrNoReplica) || gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Errorf("all replicas dead: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.client.Complete(ctx, req("cancelled", 3), nil); err == nil {
		t.Error("a cancelled request succeeded")
	}
}
