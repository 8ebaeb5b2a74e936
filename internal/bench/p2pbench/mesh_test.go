package p2pbench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Thirty hosts in one process, all bootstrapped to the first: once the
// GossipSub meshes connect, every host receives every other host's message.
func TestMesh30AllToAll(t *testing.T) {
	if testing.Short() {
		t.Skip("30-host mesh takes several seconds (and much longer under -race); runs without -short")
	}
	const n = 30
	ctx := context.Background()
	start := time.Now()
	m, err := startMesh(ctx, n, 1000, quietLogger(), 45*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	setup := time.Since(start)
	for i, h := range m.hosts {
		if len(h.Peers()) == 0 {
			t.Fatalf("host %d has no peers", i)
		}
	}
	took, err := m.allToAll(ctx, 1, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d hosts: mesh ready in %v, all-to-all delivered in %v", n, setup.Round(time.Millisecond), took.Round(time.Millisecond))

	// Every host counted exactly the messages from the others as received.
	for i, h := range m.hosts {
		if got := h.Stats().MsgsIn; got != n-1 {
			t.Errorf("host %d: MsgsIn = %d, want %d", i, got, n-1)
		}
	}
	// A host that leaves disappears from everyone's peer list.
	gone := m.hosts[n-1]
	gone.Close()
	closedAt := time.Now()
	still := func() []string {
		var out []string
		for i, h := range m.hosts[:n-1] {
			if slices.Contains(h.Peers(), gone.ID()) {
				out = append(out, fmt.Sprintf("host %d", i))
			}
		}
		return out
	}
	if err := pollUntil(ctx, 40*time.Second, func() bool { return len(still()) == 0 }); err != nil {
		t.Fatalf("40s after Close, hosts still connected to it: %v", still())
	}
	t.Logf("closed host gone from all peer lists after %v", time.Since(closedAt).Round(time.Millisecond))
}
