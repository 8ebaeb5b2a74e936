// Package p2pbench measures gridmind's libp2p layer as a node uses it:
// stream throughput between two p2p.Host values on loopback (TCP+Noise+yamux
// and QUIC) against raw TCP measured in the same run, and all-to-all
// GossipSub delivery across many hosts in one process, with memory per
// host. It uses only p2p's exported API.
//
// `gridmind bench p2p` is the command line over Run.
package p2pbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
)

// Options configures Run. Zero fields take the defaults shown.
type Options struct {
	StreamBytes  int64         // bytes per stream transfer; 256 MiB
	WriteSize    int           // bytes per Write call; 1 MiB
	StreamRuns   int           // transfers per transport, the median is reported; 3
	GossipSizes  []int         // host counts for all-to-all gossip; 10, 50, 100
	GossipRounds int           // all-to-all rounds per size, the median is reported; 3
	Timeout      time.Duration // per gossip round and per mesh set-up; 2 min
	Logger       *slog.Logger  // for the hosts; default discards
}

func (o Options) withDefaults() Options {
	if o.StreamBytes <= 0 {
		o.StreamBytes = 256 << 20
	}
	if o.WriteSize <= 0 {
		o.WriteSize = 1 << 20
	}
	if o.StreamRuns <= 0 {
		o.StreamRuns = 3
	}
	if len(o.GossipSizes) == 0 {
		o.GossipSizes = []int{10, 50, 100}
	}
	if o.GossipRounds <= 0 {
		o.GossipRounds = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// StreamResult is one transport's throughput between two hosts on loopback.
type StreamResult struct {
	Transport string        // "raw TCP", "TCP+Noise+yamux", "QUIC"
	Bytes     int64         // per transfer
	Median    time.Duration // median transfer time, write start to receiver's ack
	MBps      float64       // Bytes / Median in 10^6 bytes per second
	Ratio     float64       // MBps / raw TCP MBps
}

// GossipResult is one all-to-all gossip measurement.
type GossipResult struct {
	Hosts        int
	Setup        time.Duration // start hosts, bootstrap, until the meshes connect
	Median       time.Duration // median over rounds: first publish to last delivery
	Rounds       []time.Duration
	AvgPeers     float64 // connections per host after the rounds
	DroppedRPCs  int64   // gossip RPCs dropped during the rounds, all hosts (see Stats.DroppedRPCs)
	HeapPerHost  float64 // live heap growth divided by hosts, MiB
	GoroutinesPH float64 // goroutine growth divided by hosts
}

// Report is what Run measured, with the machine it ran on.
type Report struct {
	Date      time.Time
	GoVersion string
	OS, Arch  string
	CPUs      int
	Options   Options
	Streams   []StreamResult
	Gossip    []GossipResult
}

// Run measures, on 127.0.0.1 with loopback-only hosts: stream throughput
// for raw TCP, TCP+Noise+yamux and QUIC; all-to-all gossip delivery time for
// each size in opts.GossipSizes; and memory per host. progress, if not nil,
// receives one line per step.
func Run(ctx context.Context, opts Options, progress func(string)) (Report, error) {
	opts = opts.withDefaults()
	say := func(format string, args ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, args...))
		}
	}
	rep := Report{Date: time.Now(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Options: opts}
	var raw float64
	for _, kind := range []string{kindRawTCP, kindTCP, kindQUIC} {
		var times []time.Duration
		for run := range opts.StreamRuns {
			say("stream %s: run %d/%d, %d MiB in %d KiB writes", kind, run+1, opts.StreamRuns, opts.StreamBytes>>20, opts.WriteSize>>10)
			d, err := streamTransfer(ctx, kind, opts.StreamBytes, opts.WriteSize, opts.Logger)
			if err != nil {
				return rep, fmt.Errorf("stream %s: %w", kind, err)
			}
			times = append(times, d)
		}
		r := StreamResult{Transport: kind, Bytes: opts.StreamBytes, Median: median(times)}
		r.MBps = float64(r.Bytes) / r.Median.Seconds() / 1e6
		if kind == kindRawTCP {
			raw = r.MBps
		}
		r.Ratio = r.MBps / raw
		rep.Streams = append(rep.Streams, r)
		say("stream %s: %.0f MB/s (%.2f× raw TCP)", kind, r.MBps, r.Ratio)
	}
	for _, n := range opts.GossipSizes {
		g, err := gossipBench(ctx, n, opts, say)
		if err != nil {
			return rep, fmt.Errorf("gossip %d hosts: %w", n, err)
		}
		rep.Gossip = append(rep.Gossip, g)
	}
	return rep, nil
}

func gossipBench(ctx context.Context, n int, opts Options, say func(string, ...any)) (GossipResult, error) {
	res := GossipResult{Hosts: n}
	heap0, gor0 := liveHeap(), runtime.NumGoroutine()
	say("gossip %d hosts: starting and bootstrapping", n)
	start := time.Now()
	m, err := startMesh(ctx, n, uint64(n)*1_000_000, opts.Logger, opts.Timeout, nil)
	if err != nil {
		return res, err
	}
	defer m.Close()
	res.Setup = time.Since(start)
	say("gossip %d hosts: meshes connected after %v", n, res.Setup.Round(time.Millisecond))
	droppedBefore := m.droppedRPCs()
	for r := range opts.GossipRounds {
		d, err := m.allToAll(ctx, r+1, opts.Timeout)
		if err != nil {
			return res, err
		}
		res.Rounds = append(res.Rounds, d)
		say("gossip %d hosts: round %d all-to-all in %v", n, r+1, d.Round(time.Millisecond))
	}
	res.Median = median(res.Rounds)
	peers := 0
	for _, h := range m.hosts {
		peers += len(h.Peers())
	}
	res.AvgPeers = float64(peers) / float64(n)
	res.DroppedRPCs = m.droppedRPCs() - droppedBefore
	res.HeapPerHost = float64(liveHeap()-heap0) / float64(n) / (1 << 20)
	res.GoroutinesPH = float64(runtime.NumGoroutine()-gor0) / float64(n)
	return res, nil
}

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

const benchProtocol = "/gridmind/bench-sink/1.0.0"

// Stream kinds measured by the benchmark.
const (
	kindRawTCP = "raw TCP"
	kindTCP    = "TCP+Noise+yamux"
	kindQUIC   = "QUIC"
)

// streamPair is a sender and a sink of one transport kind on loopback.
type streamPair struct {
	open  func(context.Context) (halfCloser, error)
	close func()
}

func newStreamPair(ctx context.Context, kind string, log *slog.Logger) (*streamPair, error) {
	if kind == kindRawTCP {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return // listener closed
				}
				wg.Go(func() { sink(c.(*net.TCPConn)) })
			}
		})
		var d net.Dialer
		return &streamPair{
			open: func(ctx context.Context) (halfCloser, error) {
				c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
				if err != nil {
					return nil, err
				}
				return c.(*net.TCPConn), nil
			},
			close: func() { ln.Close(); wg.Wait() },
		}, nil
	}
	listen := map[string]string{kindTCP: "/ip4/127.0.0.1/tcp/0", kindQUIC: "/ip4/127.0.0.1/udp/0/quic-v1"}[kind]
	if listen == "" {
		return nil, fmt.Errorf("unknown transport %q", kind)
	}
	var hosts []*p2p.Host
	closeAll := func() {
		for _, h := range hosts {
			h.Close()
		}
	}
	for i := range 2 {
		h, err := p2p.New(ctx, p2p.Config{Key: seededKey(uint64(900 + i)), LoopbackOnly: true, ListenAddrs: []string{listen}, Logger: log})
		if err != nil {
			closeAll()
			return nil, err
		}
		hosts = append(hosts, h)
	}
	hosts[1].Handle(benchProtocol, func(_ gridmind.NodeID, s p2p.Stream) { sink(s) })
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := hosts[0].Connect(cctx, hosts[1].Addrs()[0]); err != nil {
		closeAll()
		return nil, err
	}
	return &streamPair{
		open:  func(ctx context.Context) (halfCloser, error) { return hosts[0].Open(ctx, hosts[1].ID(), benchProtocol) },
		close: closeAll,
	}, nil
}

// streamTransfer sends total bytes in writeSize writes over one new stream
// of the given kind and returns the time until the receiver acknowledged
// the last byte.
func streamTransfer(ctx context.Context, kind string, total int64, writeSize int, log *slog.Logger) (time.Duration, error) {
	p, err := newStreamPair(ctx, kind, log)
	if err != nil {
		return 0, err
	}
	defer p.close()
	s, err := p.open(ctx)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return send(s, total, writeSize)
}

type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
	SetDeadline(time.Time) error
}

// transferDeadline bounds one transfer so a stuck benchmark fails instead of hanging.
const transferDeadline = 5 * time.Minute

// sink reads everything, then acknowledges with one byte.
func sink(s halfCloser) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(transferDeadline))
	if _, err := io.Copy(io.Discard, s); err != nil {
		return
	}
	s.Write([]byte{1})
}

func send(s halfCloser, total int64, writeSize int) (time.Duration, error) {
	s.SetDeadline(time.Now().Add(transferDeadline))
	buf := make([]byte, writeSize)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	for sent := int64(0); sent < total; {
		chunk := buf[:min(int64(len(buf)), total-sent)]
		n, err := s.Write(chunk)
		sent += int64(n)
		if err != nil {
			return 0, fmt.Errorf("after %d bytes: %w", sent, err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		return 0, fmt.Errorf("no acknowledgement: %w", err)
	}
	return time.Since(start), nil
}

// Markdown renders the report as Markdown tables.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs, %s.\n\n", r.Date.Format(time.RFC3339), r.OS, r.Arch, r.CPUs, r.GoVersion)
	if len(r.Streams) > 0 {
		fmt.Fprintf(&b, "Stream throughput, two hosts on 127.0.0.1, %d MiB in %d KiB writes, median of %d:\n\n", r.Options.StreamBytes>>20, r.Options.WriteSize>>10, r.Options.StreamRuns)
		b.WriteString("| transport | time | MB/s | ratio to raw TCP |\n|---|---:|---:|---:|\n")
		for _, s := range r.Streams {
			fmt.Fprintf(&b, "| %s | %v | %.0f | %.2f |\n", s.Transport, s.Median.Round(time.Millisecond), s.MBps, s.Ratio)
		}
		b.WriteString("\n")
	}
	if len(r.Gossip) > 0 {
		fmt.Fprintf(&b, "GossipSub all-to-all (every host publishes one message; time until every host has all), hosts in one process, median of %d rounds:\n\n", r.Options.GossipRounds)
		b.WriteString("| hosts | set-up | all-to-all | rounds | peers/host | dropped RPCs | heap/host (MiB) | goroutines/host |\n|---:|---:|---:|---|---:|---:|---:|---:|\n")
		for _, g := range r.Gossip {
			var rounds []string
			for _, d := range g.Rounds {
				rounds = append(rounds, d.Round(time.Millisecond).String())
			}
			fmt.Fprintf(&b, "| %d | %v | %v | %s | %.1f | %d | %.2f | %.0f |\n", g.Hosts, g.Setup.Round(time.Millisecond), g.Median.Round(time.Millisecond), strings.Join(rounds, ", "), g.AvgPeers, g.DroppedRPCs, g.HeapPerHost, g.GoroutinesPH)
		}
	}
	return b.String()
}
