package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// pair starts two connected hosts joined to topic with the given validators.
func pair(t *testing.T, topic string, va, vb Validator) (a, b *Host, ta, tb *Topic, sa, sb *Subscription) {
	t.Helper()
	a = newTestHost(t, 1, nil)
	b = newTestHost(t, 2, nil)
	var err error
	if ta, err = a.Join(topic, va); err != nil {
		t.Fatal(err)
	}
	if tb, err = b.Join(topic, vb); err != nil {
		t.Fatal(err)
	}
	if sa, err = ta.Subscribe(); err != nil {
		t.Fatal(err)
	}
	if sb, err = tb.Subscribe(); err != nil {
		t.Fatal(err)
	}
	connect(t, a, b)
	waitFor(t, 10*time.Second, "both to see each other on the topic", func() bool {
		return len(ta.Peers()) == 1 && len(tb.Peers()) == 1
	})
	return
}

func next(t *testing.T, s *Subscription) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

func TestGossipDelivery(t *testing.T) {
	a, b, ta, tb, sa, sb := pair(t, "test/gossip", nil, nil)
	c := newTestHost(t, 3, nil)
	tc, err := c.Join("test/gossip", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := tc.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	connect(t, c, b)
	waitFor(t, 10*time.Second, "c in b's mesh", func() bool { return len(tc.MeshPeers()) > 0 && len(tb.MeshPeers()) == 2 })

	ctx := context.Background()
	if _, err := a.Join("test/gossip", nil); gridmind.KindOf(err) != gridmind.KindConflict {
		t.Fatalf("second Join of a topic: err = %v, want kind conflict", err)
	}
	if err := ta.Publish(ctx, []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, tt := range []struct {
		name string
		sub  *Subscription
	}{{"b", sb}, {"c", sc}} {
		m := next(t, tt.sub)
		if string(m.Data) != "hello" || m.From != a.ID() {
			t.Fatalf("%s got %q from %s, want \"hello\" from %s", tt.name, m.Data, m.From.Short(), a.ID().Short())
		}
		// The relay is any host in the mesh but the receiver itself: with
		// flood publishing, a may reach c directly or through b, and b
		// directly or through c.
		if relay := m.ReceivedFrom; relay != a.ID() && relay != b.ID() && relay != c.ID() {
			t.Fatalf("%s: ReceivedFrom = %s, want one of a, b, c", tt.name, relay.Short())
		}
	}
	// a's own "hello" sits in a's subscription buffer; Next must skip it.
	if err := tb.Publish(ctx, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sa); string(m.Data) != "reply" || m.From != b.ID() {
		t.Fatalf("a got %q from %s, want \"reply\" from b", m.Data, m.From.Short())
	}
	if st := a.Stats(); st.MsgsOut != 1 || st.MsgsIn != 1 || st.Rejected != 0 {
		t.Fatalf("a stats = %+v, want 1 out, 1 in, 0 rejected", st)
	}

	if m := next(t, sc); string(m.Data) != "reply" {
		t.Fatalf("c got %q, want \"reply\"", m.Data)
	}
	// Cancel wakes a blocked Next with ErrClosed.
	done := make(chan error, 1)
	go func() { _, err := sc.Next(context.Background()); done <- err }()
	sc.Cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Cancel = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next still blocked 10s after Cancel")
	}
}

func TestGossipValidatorRejects(t *testing.T) {
	strict := func(_ context.Context, from gridmind.NodeID, data []byte) error {
		switch {
		case len(data) >= 3 && string(data[:3]) == "bad":
			return Reject("bad-prefix", fmt.Errorf("message %q from %s", data, from.Short()))
		case string(data) == "unauthorized":
			return gridmind.E(gridmind.KindUnauthorized, "test", "not signed by an operator")
		case string(data) == "plain":
			return errors.New("plain error")
		}
		return nil
	}
	a, b, ta, tb, _, sb := pair(t, "test/validate", nil, strict)
	ctx := context.Background()
	for _, d := range []string{"bad-1", "bad-2", "unauthorized", "plain"} {
		if err := ta.Publish(ctx, []byte(d)); err != nil {
			t.Fatalf("Publish(%q): %v", d, err)
		}
	}
	waitFor(t, 10*time.Second, "b to reject 4 messages", func() bool { return b.Stats().Rejected == 4 })
	if err := ta.Publish(ctx, []byte("good")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sb); string(m.Data) != "good" {
		t.Fatalf("b's first delivered message = %q, want \"good\" (rejected ones must not be delivered)", m.Data)
	}
	st := b.Stats()
	want := map[string]int64{"bad-prefix": 2, "unauthorized": 1, "invalid": 1}
	for reason, n := range want {
		if st.RejectedByReason[reason] != n {
			t.Errorf("RejectedByReason[%q] = %d, want %d (all: %v)", reason, st.RejectedByReason[reason], n, st.RejectedByReason)
		}
	}
	if st.Rejected != 4 || st.RejectedByTopic["test/validate"] != 4 || st.MsgsIn != 1 {
		t.Errorf("b stats = %+v, want 4 rejected on test/validate and 1 in", st)
	}
	// Our own validator refuses our own bad message: Publish fails, and it
	// is not counted as a rejection of someone else's message.
	if err := tb.Publish(ctx, []byte("bad-own")); err == nil {
		t.Fatal("Publish of a message our own validator rejects succeeded")
	}
	if got := b.Stats().Rejected; got != 4 {
		t.Fatalf("Rejected = %d after own rejected publish, want 4", got)
	}
	if a.Stats().Rejected != 0 {
		t.Fatalf("a (no validator) rejected %d messages", a.Stats().Rejected)
	}
}

// fragileDecode stands for a decoder with a bug: it indexes a slice the
// sender controls. The validator wrapper must contain the panic.
func fragileDecode(_ context.Context, _ gridmind.NodeID, data []byte) error {
	var v struct {
		Parts []int `json:"parts"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	if v.Parts[0] < 0 { // panics on an empty list
		return errors.New("negative part")
	}
	return nil
}

func TestGossipMalformedBytesNeverCrash(t *testing.T) {
	a, b, ta, _, _, sb := pair(t, "test/malformed", nil, fragileDecode)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	var junk [][]byte
	for range 40 {
		d := make([]byte, 1+rng.IntN(300))
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		junk = append(junk, d)
	}
	junk = append(junk, []byte{}, []byte("{"), []byte(`{"parts":"x"}`), []byte("null"), make([]byte, 64<<10))
	panics := [][]byte{[]byte(`{"parts":[]}`), []byte(`{}`), []byte(`{"parts":null}`)}
	for _, d := range append(junk, panics...) {
		if err := ta.Publish(ctx, d); err != nil {
			t.Fatalf("Publish(%d bytes): %v", len(d), err)
		}
	}
	total := int64(len(junk) + len(panics))
	// "null" decodes without error into an empty struct and then panics too.
	waitFor(t, 20*time.Second, "b to reject every malformed message", func() bool { return b.Stats().Rejected == total })
	st := b.Stats()
	if st.RejectedByReason["panic"] != int64(len(panics))+1 {
		t.Errorf("RejectedByReason[panic] = %d, want %d (all: %v)", st.RejectedByReason["panic"], len(panics)+1, st.RejectedByReason)
	}
	if err := ta.Publish(ctx, []byte(`{"parts":[1,2]}`)); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sb); string(m.Data) != `{"parts":[1,2]}` {
		t.Fatalf("b delivered %q, want only the well-formed message", m.Data)
	}
	if len(a.Peers()) != 1 || len(b.Peers()) != 1 {
		t.Fatalf("hosts lost their connection: a peers %v, b peers %v", a.Peers(), b.Peers())
	}
}

func TestReasonOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{Reject("stale", errors.New("old")), "stale"},
		{fmt.Errorf("wrapped: %w", Reject("replay", nil)), "replay"},
		{gridmind.E(gridmind.KindUnauthorized, "x", "bad sig"), "unauthorized"},
		{errors.New("x"), "invalid"},
		{Reject("", errors.New("x")), "invalid"},
	}
	for _, tt := range tests {
		if got := reasonOf(tt.err); got != tt.want {
			t.Errorf("reasonOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
