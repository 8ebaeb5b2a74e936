// Package netns builds a small emulated network out of Linux network
// namespaces: one namespace per node, each joined by a veth pair to a
// bridge in a core namespace of its own, with the kernel's tbf shaping the
// node's uplink (its end of the pair) and downlink (the core's end).
// Nothing is added to the caller's own namespace, so several networks (and
// several engineers' tests) can exist at once with the same addresses.
//
// Use it like this:
//
//	if err := netns.Available(); err != nil { ... } // says why it cannot run
//	n, err := netns.New(ctx, []netns.Shape{{UpBits: 20e6, DownBits: 100e6}, {}})
//	defer n.Close()
//	cmd := n.Command(ctx, 0, "/path/to/program", args...) // runs inside node 0's namespace
//	addr := n.Addr(1)                                      // node 1's address, reachable from node 0
//
// It needs root and iproute2's ip and tc. The kernel here has no netem, so
// only bandwidth is shaped here; latency, jitter and loss are for user
// space (wan.ShapedTransport in internal/wan).
package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Shape is one node's link as the kernel enforces it.
type Shape struct {
	UpBits, DownBits float64 // bit/s; 0 is unlimited
	// Bucket, if set, is tbf's bucket in bytes both ways (default: 5 ms at
	// the rate, at least 32 KiB). tbf drops every packet larger than its
	// bucket, so a bucket below the MTU (1500) is a badly shaped link that
	// passes small packets and no full-sized one.
	Bucket int
	// Blackhole drops every packet both ways: tbf with a bucket smaller
	// than any packet never sends one.
	Blackhole bool
}

func (s Shape) String() string {
	if s.Blackhole {
		return "blackhole"
	}
	bw := func(b float64) string {
		if b == 0 {
			return "∞"
		}
		return fmt.Sprintf("%g Mbit/s", b/1e6)
	}
	text := fmt.Sprintf("up %s, down %s", bw(s.UpBits), bw(s.DownBits))
	if s.Bucket > 0 {
		text += fmt.Sprintf(", %d-byte bucket", s.Bucket)
	}
	return text
}

// MaxNodes bounds a network: every node gets an address in one /24.
const MaxNodes = 200

// prefix starts every namespace this package makes; the process id after
// it lets New remove what a killed process left behind.
const prefix = "gm-wan-"

// Available reports why namespaces cannot be made here, or nil. It tries
// once per process: root, ip and tc on the PATH, and one namespace made,
// entered and deleted (a container may refuse it even to root).
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return errors.New("netns: network namespaces need root (ip netns add)")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netns: %s not found (install iproute2): %w", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	probe := fmt.Sprintf("%s%d-probe", prefix, os.Getpid())
	if err := run(ctx, "ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("netns: cannot make a namespace here: %w", err)
	}
	// ip netns exec also needs a mount namespace of its own, which a
	// container may refuse where it allows the network namespace.
	execErr := run(ctx, "ip", "netns", "exec", probe, "ip", "link", "show", "lo")
	if err := run(ctx, "ip", "netns", "del", probe); err != nil {
		return fmt.Errorf("netns: cannot delete a namespace here: %w", err)
	}
	if execErr != nil {
		return fmt.Errorf("netns: cannot run a program in a namespace here: %w", execErr)
	}
	return nil
})

// Network is a set of namespaces joined by a bridge.
type Network struct {
	name   string // prefix + pid + "-" + sequence
	shapes []Shape
	mu     sync.Mutex
	closed bool
}

var sequence atomic.Int64

// New makes one namespace per shape, joined by a bridge. On error nothing
// is left behind.
func New(ctx context.Context, shapes []Shape) (*Network, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if len(shapes) < 1 || len(shapes) > MaxNodes {
		return nil, fmt.Errorf("netns: %d nodes: want 1 to %d", len(shapes), MaxNodes)
	}
	sweep(ctx)
	n := &Network{name: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), sequence.Add(1)), shapes: append([]Shape(nil), shapes...)}
	if err := n.build(ctx); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// Namespace is node i's namespace name.
func (n *Network) Namespace(i int) string { return fmt.Sprintf("%s-%d", n.name, i) }

func (n *Network) core() string { return n.name + "-core" }

// Addr is node i's address on the bridge.
func (n *Network) Addr(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i)}) }

// Len is the number of nodes.
func (n *Network) Len() int { return len(n.shapes) }

func (n *Network) build(ctx context.Context) error {
	core := n.core()
	steps := [][]string{
		{"ip", "netns", "add", core},
		{"ip", "-n", core, "link", "set", "lo", "up"},
		{"ip", "-n", core, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", core, "link", "set", "br0", "up"},
	}
	for i := range n.shapes {
		ns, port := n.Namespace(i), "v"+strconv.Itoa(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			// Both ends are made directly in their namespaces, so no
			// interface ever appears in the caller's.
			[]string{"ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", core},
			[]string{"ip", "-n", core, "link", "set", port, "master", "br0"},
			[]string{"ip", "-n", core, "link", "set", port, "up"},
			[]string{"ip", "-n", ns, "addr", "add", n.Addr(i).String() + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	for i, s := range n.shapes {
		if err := n.Reshape(ctx, i, s); err != nil {
			return err
		}
	}
	return nil
}

// Reshape changes node i's link, now: a test can cut a link mid-run.
func (n *Network) Reshape(ctx context.Context, i int, s Shape) error {
	if i < 0 || i >= len(n.shapes) {
		return fmt.Errorf("netns: node %d of %d", i, len(n.shapes))
	}
	if err := shape(ctx, n.Namespace(i), "eth0", s.UpBits, s.Bucket, s.Blackhole); err != nil {
		return err
	}
	if err := shape(ctx, n.core(), "v"+strconv.Itoa(i), s.DownBits, s.Bucket, s.Blackhole); err != nil {
		return err
	}
	n.mu.Lock()
	n.shapes[i] = s
	n.mu.Unlock()
	return nil
}

// shape puts a tbf on dev's egress in ns, or takes it off for an unlimited link.
func shape(ctx context.Context, ns, dev string, bits float64, bucket int, blackhole bool) error {
	if blackhole {
		return run(ctx, "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", "1kbit", "burst", "40", "limit", "40")
	}
	if bits <= 0 && bucket > 0 {
		bits = 10e9 // a bucket needs a rate; this one never limits
	}
	if bits <= 0 {
		// Deleting the root qdisc restores the default; there may be none to delete.
		_ = run(ctx, "tc", "-n", ns, "qdisc", "del", "dev", dev, "root")
		return nil
	}
	// A bucket of 5 ms at the rate, at least 32 KiB: much smaller and tbf
	// drops the veth's large offloaded packets or cannot keep the rate
	// with the kernel's timer; the queue holds 100 ms, as a modem's does.
	bytesPerSec := bits / 8
	burst := max(int64(bytesPerSec*0.005), 32<<10)
	if bucket > 0 {
		burst = int64(bucket)
	}
	limit := max(int64(bytesPerSec*0.1), 2*burst)
	return run(ctx, "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", strconv.FormatInt(int64(bits), 10)+"bit", "burst", strconv.FormatInt(burst, 10), "limit", strconv.FormatInt(limit, 10))
}

// Command runs name inside node i's namespace (through ip netns exec, which
// replaces itself with the program, so the process is the program's).
func (n *Network) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Namespace(i), name}, args...)...)
}

// Close deletes every namespace of the network (and with them the veth
// pairs and the bridge). Processes still inside keep their namespace until
// they exit; the caller stops them first.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	// Cleanup must run even when the caller's context has ended.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for i := range n.shapes {
		errs = append(errs, deleteNamespace(ctx, n.Namespace(i)))
	}
	errs = append(errs, deleteNamespace(ctx, n.core()))
	return errors.Join(errs...)
}

func deleteNamespace(ctx context.Context, ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return run(ctx, "ip", "netns", "del", ns)
}

// sweep deletes the namespaces of processes that died without closing
// their networks (killed tests), and never a live process's.
func sweep(ctx context.Context) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = run(ctx, "ip", "netns", "del", e.Name())
		}
	}
}

func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
