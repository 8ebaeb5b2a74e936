package trainbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/internal/wan"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/train"
)

// benchThroughput measures the all-reduce of a vector of
// opts.ThroughputParams values among k workers: through the Coordinator
// on the in-memory transport and on loopback libp2p, and the same byte
// pattern (every worker sends a part to each other, then a combined part
// to each other) on raw loopback TCP.
func benchThroughput(ctx context.Context, opts Options, k int, progress func(string)) ([]ThroughputRow, error) {
	n := opts.ThroughputParams
	// Part sizes as the int8 codec makes them, for the byte-pattern rows.
	partBytes := 9 + n/k + 4*train.NumBlocks(n/k, opts.BlockSize)
	var rows []ThroughputRow
	mem := dilocotest.NewMemNetwork[diloco.Handler]()
	_, ids := benchKeys(k)
	row, err := allReduceThroughput(ctx, opts, k, n, "in-memory", func(i int) (diloco.Transport, error) { return mem.Join(ids[i]), nil })
	if err != nil {
		return rows, err
	}
	rows = append(rows, row)
	progress(fmt.Sprintf("all-reduce in memory: %s/s per worker", humanBytes(int64(row.BytesPerSec))))
	if !opts.SkipLibp2p {
		hosts, cleanup, err := loopbackHosts(ctx, k)
		if err != nil {
			return rows, err
		}
		row, err := allReduceThroughput(ctx, opts, k, n, "libp2p (loopback TCP, Noise, yamux)", func(i int) (diloco.Transport, error) { return hosts[i], nil })
		if err != nil {
			cleanup()
			return rows, err
		}
		rows = append(rows, row)
		progress(fmt.Sprintf("all-reduce over libp2p: %s/s per worker", humanBytes(int64(row.BytesPerSec))))
		ts := make([]diloco.Transport, k)
		for i, h := range hosts {
			ts[i] = h
		}
		row, err = transportExchange(ctx, ts, partBytes)
		cleanup()
		if err != nil {
			return rows, err
		}
		row.Transport, row.VectorBytes = "libp2p streams only (same byte pattern, no computation)", 4*n
		rows = append(rows, row)
		progress(fmt.Sprintf("same pattern on libp2p streams: %s/s per worker", humanBytes(int64(row.BytesPerSec))))
	}
	row, err = rawTCPExchange(ctx, k, partBytes)
	if err != nil {
		return rows, err
	}
	row.VectorBytes = 4 * n
	rows = append(rows, row)
	progress(fmt.Sprintf("same pattern on raw TCP: %s/s per worker", humanBytes(int64(row.BytesPerSec))))
	return rows, nil
}

func allReduceThroughput(ctx context.Context, opts Options, k, n int, name string, transport func(i int) (diloco.Transport, error)) (ThroughputRow, error) {
	const rounds = 4 // the first is a warm-up and not counted
	keys, ids := benchKeys(k)
	initial, err := train.NewGlobalState(make([]float32, n), ids)
	if err != nil {
		return ThroughputRow{}, err
	}
	var mu sync.Mutex
	var bytes int64
	var seconds float64
	workers := make([]*diloco.Worker, k)
	for i := range workers {
		tr, err := transport(i)
		if err != nil {
			return ThroughputRow{}, err
		}
		workers[i], err = diloco.NewWorker(diloco.Config{
			Job: "bench-allreduce", Key: keys[i], Trainer: dilocotest.NewNullTrainer(n, int64(i)), Workers: ids, Initial: initial,
			Batches: func(uint64) gridmind.BatchSource { return dilocotest.NoBatches{} }, InnerSteps: 1, Rounds: rounds,
			Transport: tr, Protocol: train.Config{BlockSize: opts.BlockSize, Timing: benchTiming},
			Linger: 50 * time.Millisecond, TickEvery: 20 * time.Millisecond, Logger: opts.Logger,
			Progress: func(p diloco.Progress) {
				if p.Round == 0 {
					return
				}
				mu.Lock()
				bytes += p.RoundBytes
				seconds += p.AllReduce.Seconds()
				mu.Unlock()
			},
		})
		if err != nil {
			return ThroughputRow{}, err
		}
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { _, errs[i] = w.Run(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return ThroughputRow{}, fmt.Errorf("all-reduce throughput on %s: worker %d: %w", name, i, err)
		}
	}
	samples := float64(k * (rounds - 1))
	row := ThroughputRow{Transport: name, Workers: k, VectorBytes: 4 * n, BytesPerWorker: int64(float64(bytes) / samples), Seconds: seconds / samples}
	if row.Seconds > 0 {
		row.BytesPerSec = float64(row.BytesPerWorker) / row.Seconds
	}
	return row, nil
}

// loopbackHosts starts k fully connected loopback libp2p hosts with the
// job's transport and waits for the gossip mesh.
func loopbackHosts(ctx context.Context, k int) ([]*diloco.P2PTransport, func(), error) {
	keys, _ := benchKeys(k)
	var hosts []*p2p.Host
	var transports []*diloco.P2PTransport
	cleanup := func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	for i := range k {
		h, err := p2p.New(ctx, p2p.Config{Key: keys[i], LoopbackOnly: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet, Limits: p2p.Limits{Unlimited: true}})
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		for _, prev := range hosts {
			if err := h.Connect(ctx, prev.Addrs()[0]); err != nil {
				cleanup()
				return nil, nil, err
			}
		}
		hosts = append(hosts, h)
		t, err := diloco.NewP2PTransport(h, "bench-allreduce", quiet)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		transports = append(transports, t)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, t := range transports {
		for len(t.Topic().Peers()) < k-1 {
			if time.Now().After(deadline) {
				cleanup()
				return nil, nil, fmt.Errorf("bench: the job topic did not connect %d hosts", k)
			}
			select {
			case <-ctx.Done():
				cleanup()
				return nil, nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return transports, cleanup, nil
}

// rawTCPExchange times k workers on loopback TCP, each sending partBytes
// to every other worker and then, once it has received all parts, another
// partBytes to every other worker: the butterfly all-reduce's byte pattern
// without any computation or framing.
func rawTCPExchange(ctx context.Context, k, partBytes int) (ThroughputRow, error) {
	listeners := make([]net.Listener, k)
	for i := range listeners {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return ThroughputRow{}, err
		}
		defer l.Close()
		listeners[i] = l
	}
	// conns[i][j]: i writes to j on it; j reads from accepted[j][i].
	conns := make([][]net.Conn, k)
	accepted := make([][]net.Conn, k)
	for j := range accepted {
		accepted[j] = make([]net.Conn, k)
	}
	var acceptErr error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for j, l := range listeners {
		wg.Go(func() {
			for range k - 1 {
				c, err := l.Accept()
				if err != nil {
					mu.Lock()
					acceptErr = err
					mu.Unlock()
					return
				}
				var from [1]byte
				if _, err := io.ReadFull(c, from[:]); err != nil {
					mu.Lock()
					acceptErr = err
					mu.Unlock()
					return
				}
				accepted[j][from[0]] = c
			}
		})
	}
	var d net.Dialer
	for i := range conns {
		conns[i] = make([]net.Conn, k)
		for j := range k {
			if i == j {
				continue
			}
			c, err := d.DialContext(ctx, "tcp", listeners[j].Addr().String())
			if err != nil {
				return ThroughputRow{}, err
			}
			defer c.Close()
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				return ThroughputRow{}, err
			}
			conns[i][j] = c
		}
	}
	wg.Wait()
	if acceptErr != nil {
		return ThroughputRow{}, acceptErr
	}
	for j := range accepted {
		for i, c := range accepted[j] {
			if c != nil {
				defer c.Close()
			} else if i != j {
				return ThroughputRow{}, fmt.Errorf("raw tcp: connection %d→%d missing", i, j)
			}
		}
	}
	payload := make([]byte, partBytes)
	phase := func(i int) error {
		var pw sync.WaitGroup
		errs := make(chan error, 2*k)
		for j := range k {
			if j == i {
				continue
			}
			pw.Go(func() {
				if _, err := conns[i][j].Write(payload); err != nil {
					errs <- err
				}
			})
			pw.Go(func() {
				buf := make([]byte, partBytes)
				if _, err := io.ReadFull(accepted[i][j], buf); err != nil {
					errs <- err
				}
			})
		}
		pw.Wait()
		close(errs)
		return <-errs
	}
	start := time.Now()
	errs := make([]error, k)
	var run sync.WaitGroup
	for i := range k {
		run.Go(func() {
			if errs[i] = phase(i); errs[i] == nil {
				errs[i] = phase(i)
			}
		})
	}
	run.Wait()
	took := time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return ThroughputRow{}, err
		}
	}
	sent := int64(2 * (k - 1) * partBytes)
	return ThroughputRow{Transport: "raw TCP (same byte pattern)", Workers: k, BytesPerWorker: sent, Seconds: took, BytesPerSec: float64(sent) / took}, nil
}

// transportExchange times the butterfly byte pattern over Transports'
// SendBulk: every worker sends partBytes to each other, waits for all
// parts, then sends partBytes to each other again.
func transportExchange(ctx context.Context, ts []diloco.Transport, partBytes int) (ThroughputRow, error) {
	k := len(ts)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ids := make([]gridmind.NodeID, k)
	counters := make([]*wan.PatternCounter, k)
	payloads := make([][]byte, k)
	for i, t := range ts {
		ids[i], counters[i], payloads[i] = t.Self(), wan.NewPatternCounter(), make([]byte, max(partBytes, wan.PatternHeader))
		if err := t.Serve(ctx, counters[i]); err != nil {
			return ThroughputRow{}, err
		}
	}
	start := time.Now()
	errs := make([]error, k)
	var run sync.WaitGroup
	for i := range k {
		run.Go(func() { errs[i] = wan.ExchangeRound(ctx, ts[i], ids, i, counters[i], 0, payloads[i]) })
	}
	run.Wait()
	took := time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			return ThroughputRow{}, err
		}
	}
	sent := int64(2 * (k - 1) * partBytes)
	return ThroughputRow{Workers: k, BytesPerWorker: sent, Seconds: took, BytesPerSec: float64(sent) / took}, nil
}
