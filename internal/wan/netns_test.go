package wan

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/netns"
	"github.com/gridmind/gridmind/train"
)

// nodeEnv makes the test binary one node of a netns run (see TestMain).
const nodeEnv = "GRIDMIND_WAN_TEST_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) == "toy" {
		o := toyOptions()
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := RunNode(context.Background(), o, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// toyOptions is a tiny job: the toy trainer, rounds of milliseconds.
func toyOptions() Options {
	o := toyJob(0, 10, 0)
	// Short deadlines keep the test to seconds; the stall bound
	// (diloco.DefaultStallTimeout) follows from them: 10.2 s.
	o.Timing = train.Timing{
		MinReadyWait: 200 * time.Millisecond, MaxReadyWait: 600 * time.Millisecond, LeaderGrace: 300 * time.Millisecond,
		ResendEvery: 300 * time.Millisecond, MinExchangeWait: 300 * time.Millisecond, MaxExchangeWait: 800 * time.Millisecond,
	}
	o.SendTimeout = time.Second
	return o
}

// namespaced returns toy options whose workers are this test binary in
// network namespaces, or skips the test where namespaces cannot be made.
func namespaced(t *testing.T) Options {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces cannot be made here: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := toyOptions()
	o.Netns = &Processes{Command: []string{self}, Env: []string{nodeEnv + "=toy"}, StartTimeout: 30 * time.Second}
	t.Cleanup(func() { assertNoNamespaces(t) })
	return o
}

// assertNoNamespaces checks that this process left no namespace behind.
func assertNoNamespaces(t *testing.T) {
	entries, _ := os.ReadDir("/run/netns")
	mine := fmt.Sprintf("gm-wan-%d-", os.Getpid())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), mine) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}

// TestNamespacedJobOverShapedLinks runs a small job with each worker a
// separate process in its own network namespace, on real libp2p across a
// bridge: once unlimited, once with the kernel's tbf on every worker's
// veth (20 Mbit/s up, 50 down) and latency, jitter and loss in user space.
// Both finish at the same loss, and the shaping is really in the kernel.
func TestNamespacedJobOverShapedLinks(t *testing.T) {
	o := namespaced(t)
	link, err := ParseLink("up=20M,down=50M,rtt=40ms,jitter=5ms,loss=0.01")
	if err != nil {
		t.Fatal(err)
	}
	var qdiscs []string
	o.Netns.OnStart = func(n *netns.Network) {
		out, err := exec.Command("tc", "-n", n.Namespace(0), "qdisc", "show", "dev", "eth0").CombinedOutput()
		qdiscs = append(qdiscs, fmt.Sprintf("%s %v", out, err))
	}
	o.Workers, o.Rounds = 3, 3
	o.Configs = []Config{{Name: "shaped", Links: []Link{link}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows", len(rep.Rows))
	}
	for _, row := range rep.Rows {
		if row.BytesPerRound <= 0 || row.RoundP50 <= 0 {
			t.Errorf("%s: %d bytes per round, round p50 %s: no rounds reported", row.Config, row.BytesPerRound, row.RoundP50)
		}
	}
	if d := rep.Rows[1].VsUnlimited; d > 0.02 || d < -0.02 {
		t.Errorf("loss moved %+.2f%% with shaped links", 100*d)
	}
	if len(qdiscs) != 2 {
		t.Fatalf("%d starts, want one per configuration", len(qdiscs))
	}
	if strings.Contains(qdiscs[0], "tbf") {
		t.Errorf("unlimited run: worker 0's uplink is shaped: %s", qdiscs[0])
	}
	if !strings.Contains(qdiscs[1], "tbf") || !strings.Contains(qdiscs[1], "rate 20Mbit") {
		t.Errorf("shaped run: worker 0's uplink has no 20 Mbit/s tbf: %s", qdiscs[1])
	}
}

// TestNamespacedJobFailsNamingACutOffWorker cuts one worker's link once
// the job has run a round: a blackhole (every packet dropped both ways),
// and the badly shaped link (a tbf bucket smaller than a full
// packet: small packets pass, bulk never does). The run must not hang: it
// ends with an error that names that worker (it stalls, or trains on alone
// and ends on a state the others do not hold, or is still running well
// after the others finished) within a bound the configuration sets; the
// harness kills a silent node only after twice its stall timeout, and
// that would say "killed". The two other workers carry on and finish.
func TestNamespacedJobFailsNamingACutOffWorker(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  netns.Shape
	}{
		{"blackhole", netns.Shape{Blackhole: true}},
		{"tiny bucket", netns.Shape{UpBits: 100e6, DownBits: 100e6, Bucket: 600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := namespaced(t)
			o.Workers, o.Rounds = 3, 6
			// Cut once every worker is connected (its libp2p connections
			// and the gossip mesh are up) and just before training starts:
			// the toy job's rounds take milliseconds, so a cut on a later
			// round's report could come after the job had ended.
			var cutAt time.Time
			o.Netns.OnStart = func(n *netns.Network) {
				if err := n.Reshape(context.Background(), 2, tc.cut); err != nil {
					t.Error(err)
				}
				cutAt = time.Now()
			}
			stall := o.stallTimeout()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, err := Run(ctx, o, nil) // the unlimited run alone, cut as it starts
			ended := time.Now()
			if cutAt.IsZero() {
				t.Fatalf("the link was never cut: %v", err)
			}
			if err == nil {
				t.Fatal("the run succeeded with a worker cut off")
			}
			t.Log(err)
			msg := err.Error()
			_, ids := workerKeys(o.Seed, o.Workers)
			if !strings.Contains(msg, "worker 2 ("+ids[2].Short()) || !(strings.Contains(msg, "no progress") || strings.Contains(msg, "trained on alone") || strings.Contains(msg, "left behind")) {
				t.Errorf("the error does not name worker 2 (%s) as stalled or cut off: %v", ids[2].Short(), err)
			}
			for i := range 2 {
				if strings.Contains(msg, fmt.Sprintf("worker %d (", i)) {
					t.Errorf("worker %d, whose link was fine, failed: %v", i, err)
				}
			}
			if strings.Contains(msg, "killed") {
				t.Errorf("the harness had to kill a node: the protocol did not end it: %v", err)
			}
			// The stall clock starts at the worker's last progress, at most
			// a round after the cut; then Run waits out its sends and the
			// process reports. Twice the stall bound covers that, loaded.
			if bound := 2*stall + 2*o.sendTimeout(); ended.Sub(cutAt) > bound {
				t.Errorf("the run ended %s after the cut, beyond the bound %s the configuration sets", ended.Sub(cutAt).Round(time.Second), bound)
			}
		})
	}
}

// TestNamespacedAllReduceAgainstStreams measures the all-reduce alone and
// the same bytes on plain streams, in namespaces, unlimited and behind a
// 20 Mbit/s tbf: both runs report rounds, move the same bytes, and the
// shaped link really slows both (so the rates are the link's, not a
// constant).
func TestNamespacedAllReduceAgainstStreams(t *testing.T) {
	o := namespaced(t)
	o.Workers = 3
	o.Configs = []Config{{Name: "20M", Links: []Link{{UpBits: 20e6, DownBits: 20e6}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := RunThroughput(ctx, o, 1<<18, 1, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + ThroughputMarkdown(rows, o.Workers))
	if len(rows) != 2 {
		t.Fatalf("%d rows, want unlimited and 20M", len(rows))
	}
	for _, r := range rows {
		// int8 of 2^18 values: each worker sends 2 × 2 parts of ~1/3 of 256 KiB.
		if r.Payload < 4*(1<<18)/3 || r.AllReduce <= 0 || r.Streams <= 0 || r.Ratio <= 0 {
			t.Errorf("%s: %d bytes per round, all-reduce %s, streams %s, ratio %.2f", r.Config, r.Payload, r.AllReduce, r.Streams, r.Ratio)
		}
	}
	// ≈350 KB per worker and round at 20 Mbit/s up takes ≥ 0.14 s.
	if shaped := rows[1]; shaped.StreamRate > 20e6/8*1.1 || shaped.AllReduceRate > 20e6/8*1.1 {
		t.Errorf("shaped: streams %.0f B/s, all-reduce %.0f B/s: faster than the 20 Mbit/s link", shaped.StreamRate, shaped.AllReduceRate)
	}
}
