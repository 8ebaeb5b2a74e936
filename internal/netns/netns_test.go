package netns

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNetworkShapesAndCleansUp builds two nodes, checks the kernel holds
// the shapes asked for (and none on an unlimited link), reshapes one, and
// checks Close leaves no namespace behind.
func TestNetworkShapesAndCleansUp(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("network namespaces cannot be made here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := New(ctx, []Shape{{UpBits: 20e6, DownBits: 100e6}, {}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	qdisc := func(ns, dev string) string {
		out, err := exec.Command("tc", "-n", ns, "qdisc", "show", "dev", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("tc: %v: %s", err, out)
		}
		return string(out)
	}
	if q := qdisc(n.Namespace(0), "eth0"); !strings.Contains(q, "tbf") || !strings.Contains(q, "rate 20Mbit") {
		t.Errorf("node 0 uplink: %s", q)
	}
	if q := qdisc(n.core(), "v0"); !strings.Contains(q, "rate 100Mbit") {
		t.Errorf("node 0 downlink: %s", q)
	}
	if q := qdisc(n.Namespace(1), "eth0"); strings.Contains(q, "tbf") {
		t.Errorf("node 1 is unlimited but shaped: %s", q)
	}
	// A program run in node 1 sees node 1's address and not node 0's.
	out, err := n.Command(ctx, 1, "ip", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), n.Addr(1).String()+"/24") {
		t.Errorf("node 1's own address: %v: %s", err, out)
	}
	if err := n.Reshape(ctx, 1, Shape{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	if q := qdisc(n.Namespace(1), "eth0"); !strings.Contains(q, "burst 40b") {
		t.Errorf("node 1 blackholed: %s", q)
	}
	if err := n.Reshape(ctx, 0, Shape{}); err != nil {
		t.Fatal(err)
	}
	if q := qdisc(n.Namespace(0), "eth0"); strings.Contains(q, "tbf") {
		t.Errorf("node 0 made unlimited but still shaped: %s", q)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{n.Namespace(0), n.Namespace(1), n.core()} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}

func TestNewRefusesBadSizes(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("network namespaces cannot be made here: %v", err)
	}
	for _, k := range []int{0, MaxNodes + 1} {
		if _, err := New(context.Background(), make([]Shape, k)); err == nil {
			t.Errorf("%d nodes accepted", k)
		}
	}
}
