package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func TestPeerTable(t *testing.T) {
	tab := NewPeerTable()
	t0 := time.Unix(1000, 0)
	tab.Observe("a", 2, gridmind.Heartbeat{Version: "v2"}, t0)
	tab.Observe("a", 1, gridmind.Heartbeat{Version: "v1"}, t0.Add(time.Second)) // late, older beat
	tab.Observe("b", 1, gridmind.Heartbeat{Version: "v1"}, t0.Add(4*time.Second))
	tab.SetRTT("a", 3*time.Millisecond)
	a, ok := tab.Get("a")
	if !ok || a.Heartbeat.Version != "v2" || a.RTT != 3*time.Millisecond || !a.LastSeen.Equal(t0) {
		t.Fatalf("a = %+v", a)
	}
	gone := tab.Expire(t0.Add(5*time.Second), 3*time.Second)
	if len(gone) != 1 || gone[0] != "a" || tab.Len() != 1 {
		t.Fatalf("expired %v, left %d", gone, tab.Len())
	}
}

func TestReplayGuard(t *testing.T) {
	g := newReplayGuard()
	now := time.Unix(1000, 0)
	if !g.accept("t", "a", 5, now, now) || g.accept("t", "a", 5, now, now) {
		t.Fatal("a sequence number must be accepted once")
	}
	if !g.accept("t", "a", 4, now, now) {
		t.Fatal("an unseen older number within the window is not a replay (out-of-order gossip)")
	}
	if !g.accept("u", "a", 5, now, now) || !g.accept("t", "b", 5, now, now) {
		t.Fatal("topics and senders are separate")
	}
	g.prune(now.Add(10 * MaxClockSkew))
	if len(g.seen) != 0 {
		t.Fatalf("prune kept %d entries past the freshness window", len(g.seen))
	}
}

func TestCheckHeartbeat(t *testing.T) {
	key := KeyFromSeedString("hb")
	now := time.Now()
	open := func(hb any) *gridmind.Envelope {
		data, err := gridmind.SignEnvelope(key, "heartbeat", 1, now, hb)
		if err != nil {
			t.Fatal(err)
		}
		env, err := gridmind.OpenEnvelope(data, now, MaxClockSkew)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	good := gridmind.Heartbeat{Version: "1", Hardware: gridmind.Hardware{CPUCores: 2}, ThroughputGFLOPS: 3}
	if err := checkHeartbeat(open(good)); err != nil {
		t.Fatalf("good heartbeat refused: %v", err)
	}
	bad := []gridmind.Heartbeat{
		{Version: ""},
		{Version: "1", Hardware: gridmind.Hardware{CPUCores: -1}},
		{Version: "1", ThroughputGFLOPS: -4},
		{Version: "1", Energy: gridmind.EnergyState{BatteryPercent: 120}},
		{Version: "1", Addrs: make([]string, 40)},
	}
	for _, hb := range bad {
		if err := checkHeartbeat(open(hb)); !errors.Is(err, gridmind.ErrMalformed) {
			t.Errorf("%+v: got %v", hb, err)
		}
	}
	if err := checkHeartbeat(open(map[string]any{"version": 5})); !errors.Is(err, gridmind.ErrMalformed) {
		t.Errorf("wrong types: got %v", err)
	}
}

// FuzzCheckHeartbeat: any body is a valid heartbeat or ErrMalformed,
// never a panic.
func FuzzCheckHeartbeat(f *testing.F) {
	for _, s := range []string{
		`{"version":"1","hardware":{"cpu_cores":2}}`, `{"version":"1","energy":{"battery_pct":1e308}}`, `[]`,
		`{"version":"1","unknown":1}`, `{"version":"1","rpc":"http://x"}`, `{"version":"1","rpc":"ftp://x"}`,
		`{"version":"1","serving":[{"hash":"a","latency_p50_ms":1e400}]}`, `{"version":"1"} []`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := checkHeartbeat(&gridmind.Envelope{Type: "heartbeat", Body: body})
		if err != nil && !errors.Is(err, gridmind.ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}

func TestPeerTableIsBounded(t *testing.T) {
	tab := newPeerTable(16)
	t0 := time.Unix(1000, 0)
	tab.Observe("honest", 1, gridmind.Heartbeat{}, t0.Add(time.Hour)) // heard from most recently
	for i := range 1000 {
		tab.Observe(gridmind.NodeID(fmt.Sprint("sybil-", i)), 1, gridmind.Heartbeat{}, t0.Add(time.Duration(i)*time.Millisecond))
		if tab.Len() > 16 {
			t.Fatalf("%d peers after %d sybils, bound 16", tab.Len(), i+1)
		}
	}
	if _, ok := tab.Get("honest"); !ok {
		t.Fatal("the most recently heard peer was evicted before stale ones")
	}
	if _, ok := tab.Get("sybil-999"); !ok {
		t.Fatal("the newest peer was not admitted")
	}
}

func TestReplayGuardIsBoundedAndStaysExact(t *testing.T) {
	g := newReplayGuard()
	g.maxKeys, g.maxPerKey = 64, 32
	now := time.Unix(1000, 0)
	type msg struct {
		from gridmind.NodeID
		seq  uint64
		sent time.Time
	}
	var accepted []msg
	// Many identities, each sending a few fresh messages, all inside the window.
	for i := range 2000 {
		m := msg{gridmind.NodeID(fmt.Sprint("sender-", i%500)), uint64(i), now.Add(time.Duration(i) * time.Millisecond)}
		if g.accept("t", m.from, m.seq, m.sent, m.sent) {
			accepted = append(accepted, m)
		}
		if keys, seqs := g.size(); keys > 64 || seqs > 64*32 {
			t.Fatalf("after %d messages the guard holds %d pairs, %d numbers; bounds 64 and %d", i+1, keys, seqs, 64*32)
		}
	}
	// One identity flooding its own pair.
	for i := range 1000 {
		sent := now.Add(2*time.Second + time.Duration(i)*time.Microsecond)
		if g.accept("t", "flooder", uint64(10_000+i), sent, sent) {
			accepted = append(accepted, msg{"flooder", uint64(10_000 + i), sent})
		}
	}
	if keys, seqs := g.size(); keys > 64 || seqs > 64*32 {
		t.Fatalf("the guard holds %d pairs, %d numbers", keys, seqs)
	}
	if len(accepted) < 2000 {
		t.Fatalf("only %d fresh, distinct messages accepted", len(accepted))
	}
	// Whatever was evicted, no accepted message is accepted twice.
	late := now.Add(3 * time.Second)
	for _, m := range accepted {
		if g.accept("t", m.from, m.seq, m.sent, late) {
			t.Fatalf("replay of %s/%d accepted after eviction", m.from, m.seq)
		}
	}
	// And a fresh message still gets through.
	if !g.accept("t", "newcomer", 1, late, late) {
		t.Fatal("a fresh message from a new sender is refused")
	}
}
