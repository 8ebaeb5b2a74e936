package p2pbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Stream throughput per transport: each op sends 64 MiB in 1 MiB writes on
// a new stream between two loopback hosts (or a raw TCP connection).
//
//	go test ./internal/bench/p2pbench/ -run '^$' -bench Stream -benchtime 5x
func BenchmarkStream(b *testing.B) {
	const total, write = 64 << 20, 1 << 20
	for _, kind := range []string{kindRawTCP, kindTCP, kindQUIC} {
		b.Run(strings.NewReplacer(" ", "", "+", "-").Replace(kind), func(b *testing.B) {
			ctx := context.Background()
			p, err := newStreamPair(ctx, kind, quietLogger())
			if err != nil {
				b.Fatal(err)
			}
			defer p.close()
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				s, err := p.open(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := send(s, total, write); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}

// GossipSub all-to-all: each op, every host publishes one message and the
// op ends when every host has every other host's message. Reports memory
// per host from the set-up.
//
//	go test ./internal/bench/p2pbench/ -run '^$' -bench Gossip -benchtime 3x -timeout 30m
func BenchmarkGossipAllToAll(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			ctx := context.Background()
			heap0 := liveHeap()
			m, err := startMesh(ctx, n, uint64(n)*1_000_000, quietLogger(), 3*time.Minute, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			heapPerHost := float64(liveHeap()-heap0) / float64(n) / (1 << 20)
			round := 0
			b.ResetTimer()
			for b.Loop() {
				round++
				if _, err := m.allToAll(ctx, round, 3*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(heapPerHost, "heapMiB/host") // after the loop: ResetTimer clears metrics
		})
	}
}

// Run end to end at a small size, so the CLI path is tested on every run.
func TestRunSmall(t *testing.T) {
	var lines []string
	rep, err := Run(context.Background(), Options{
		StreamBytes: 4 << 20, WriteSize: 256 << 10, StreamRuns: 1,
		GossipSizes: []int{4}, GossipRounds: 2, Timeout: 30 * time.Second, Logger: quietLogger(),
	}, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Streams) != 3 || rep.Streams[0].Ratio != 1 {
		t.Fatalf("streams = %+v, want raw TCP, TCP, QUIC with raw TCP as ratio 1", rep.Streams)
	}
	for _, s := range rep.Streams {
		if s.MBps <= 0 || s.Median <= 0 {
			t.Errorf("%s: %.1f MB/s in %v, want positive", s.Transport, s.MBps, s.Median)
		}
	}
	if len(rep.Gossip) != 1 || rep.Gossip[0].Hosts != 4 || len(rep.Gossip[0].Rounds) != 2 || rep.Gossip[0].Median <= 0 {
		t.Fatalf("gossip = %+v, want one 4-host result with 2 rounds", rep.Gossip)
	}
	md := rep.Markdown()
	for _, want := range []string{"| transport |", "| TCP+Noise+yamux |", "| QUIC |", "| hosts |", "| 4 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if len(lines) == 0 {
		t.Error("no progress lines")
	}
}

// The full report that `gridmind bench p2p` prints, run from go test:
//
//	GRIDMIND_P2P_BENCH=1 go test ./internal/bench/p2pbench/ -run TestBenchReport -v -timeout 60m
func TestBenchReport(t *testing.T) {
	if os.Getenv("GRIDMIND_P2P_BENCH") == "" {
		t.Skip("full benchmark (minutes); set GRIDMIND_P2P_BENCH=1 to run it")
	}
	rep, err := Run(context.Background(), Options{}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(rep.Markdown())
}
