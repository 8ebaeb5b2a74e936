package wan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/internal/netns"
	"github.com/gridmind/gridmind/train"
)

// This file measures the all-reduce alone against plain libp2p streams on
// the same shaped links (issue 17: the all-reduce should reach ≥ 80% of
// the streams' throughput). Both runs are node processes in namespaces, as
// for a netns job:
//
//   - allreduce: each node runs a DiLoCo worker whose trainer does nothing
//     (dilocotest.NullTrainer), so a round is the protocol's exchange of a
//     params-long vector in the job's codec, screened and combined as a
//     job does; the node reports each round's all-reduce time (from the
//     announcement to the last combined part) and bytes sent;
//   - streams: each node sends, over its job transport's bulk streams, the
//     same bytes per round in the same two phases (a part to every other
//     node, then, once it has every part, a combined part to every other),
//     with no computation, hashing or signatures.
//
// The first round of each is a warm-up (connections, TCP's slow start)
// and is not counted.

// Stream-mode payloads start with the round and phase they belong to, so
// a node that runs ahead cannot complete a slower node's phase early.
const PatternHeader = 9

// ThroughputRow is one link setting's all-reduce against plain streams.
type ThroughputRow struct {
	Config, Link string
	Params       int
	Codec        string
	// Payload is the vector's bytes each node sends per round: its parts
	// to the k−1 other reducers, then its combined part to the k−1 others
	// (encoded in the codec; the streams send exactly this). The
	// all-reduce's control messages come on top, in its time.
	Payload   int64
	AllReduce time.Duration // mean per node and round
	RoundComm time.Duration // mean round time less training (ready, announcement, all-reduce, done)
	Streams   time.Duration // mean per node and round
	// Rates are Payload per second per node; Ratio is AllReduceRate /
	// StreamRate, i.e. Streams / AllReduce.
	AllReduceRate, StreamRate, Ratio float64
	Rounds                           int // counted, per node
	LeftOut                          int // rounds of the all-reduce run some node was left out of
	Failure                          string
}

// RunThroughput measures the all-reduce of params values and the plain
// streams on each of o.Configs (an unlimited setting first), over
// rounds+1 rounds each (the first a warm-up). It needs o.Netns.
func RunThroughput(ctx context.Context, o Options, params, rounds int, progress func(string)) ([]ThroughputRow, error) {
	if o.Netns == nil {
		return nil, errors.New("wan: the all-reduce throughput runs in namespaces (--netns)")
	}
	progress = o.withDefaults(progress)
	if o.Workers < 2 || params < o.Workers || rounds < 1 {
		return nil, fmt.Errorf("wan: all-reduce throughput of %d values among %d workers over %d rounds: want ≥ 2 workers, ≥ 1 value each, ≥ 1 round", params, o.Workers, rounds)
	}
	configs := append([]Config{{Name: "unlimited", Links: []Link{{}}}}, o.Configs...)
	var rows []ThroughputRow
	var failures []error
	for _, c := range configs {
		row, err := throughputOne(ctx, o, c, params, rounds)
		if err != nil {
			err = fmt.Errorf("wan %s: %w", c.Name, err)
			if ctx.Err() != nil {
				return rows, err
			}
			row.Config, row.Link, row.Failure = c.Name, linkText(c.Links), err.Error()
			failures = append(failures, err)
			progress(err.Error())
		} else {
			progress(fmt.Sprintf("%s: all-reduce %s/s per worker, plain streams %s/s: %.0f%%", c.Name,
				human(int64(row.AllReduceRate)), human(int64(row.StreamRate)), 100*row.Ratio))
		}
		rows = append(rows, row)
	}
	return rows, errors.Join(failures...)
}

func throughputOne(ctx context.Context, o Options, c Config, params, rounds int) (ThroughputRow, error) {
	row := ThroughputRow{Config: c.Name, Link: linkText(c.Links), Params: params, Codec: o.Codec.String(), Rounds: rounds}
	k := o.Workers
	keys, ids := workerKeys(o.Seed, k)
	links, shapes, describe := nodeLinks(c, ids)
	spec := func(mode string, partBytes int) func(int, []string) nodeSpec {
		return func(i int, addrs []string) nodeSpec {
			return nodeSpec{
				Job: "wan-" + mode, Index: i, Key: keys[i], IDs: ids, Addrs: addrs, Links: links,
				InnerSteps: 1, Rounds: rounds + 1, Codec: o.Codec.String(), Timing: o.timing(),
				SendTimeout: o.sendTimeout(), StallTimeout: o.stallTimeout(), Linger: linger(c, 8*params), Seed: o.Seed,
				Mode: mode, Params: params, PartBytes: partBytes,
			}
		}
	}
	payload, err := vectorPayload(o.Codec, params, k)
	if err != nil {
		return row, err
	}
	row.Payload = int64(2 * (k - 1) * payload)
	ar, err := collectRounds(ctx, o, shapes, ids, describe, spec(modeAllReduce, 0))
	if err != nil {
		return row, fmt.Errorf("all-reduce: %w", err)
	}
	row.AllReduce, row.RoundComm, row.LeftOut = ar.allReduce/time.Duration(ar.n), ar.comm/time.Duration(ar.n), ar.excluded
	st, err := collectRounds(ctx, o, shapes, ids, describe, spec(modeStreams, max(payload, PatternHeader)))
	if err != nil {
		return row, fmt.Errorf("plain streams: %w", err)
	}
	row.Streams = st.round / time.Duration(st.n)
	if row.AllReduce > 0 {
		row.AllReduceRate = float64(row.Payload) / row.AllReduce.Seconds()
	}
	if row.Streams > 0 {
		row.StreamRate = float64(row.Payload) / row.Streams.Seconds()
	}
	if row.StreamRate > 0 {
		row.Ratio = row.AllReduceRate / row.StreamRate
	}
	return row, nil
}

// vectorPayload is the encoded size of one node's part of a params-long
// vector among k in codec (its own part, which it sends to each other
// reducer; the combined part it sends back is as large).
func vectorPayload(codec train.Codec, params, k int) (int, error) {
	bounds := train.PartBounds(params, train.DefaultBlockSize, k)
	x := make([]float32, bounds[1]-bounds[0])
	rng := rand.New(rand.NewSource(1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	fb := train.ErrorFeedback{Codec: codec}
	q, err := fb.Compress(x, train.DefaultBlockSize)
	if err != nil {
		return 0, err
	}
	return len(train.EncodeQuantized(nil, q)), nil
}

// roundSums adds up the counted rounds of every node.
type roundSums struct {
	n, excluded            int
	allReduce, comm, round time.Duration
}

// collectRounds runs one netns cluster to its end and sums the rounds its
// nodes report after the warm-up round.
func collectRounds(ctx context.Context, o Options, shapes []netns.Shape, ids []gridmind.NodeID, describe func(int) string, spec func(int, []string) nodeSpec) (roundSums, error) {
	var sums roundSums
	cl, err := launch(ctx, o, shapes, ids, describe, spec)
	if err != nil {
		return sums, err
	}
	defer cl.close()
	var failures []string
	reported := make([]bool, len(ids))
	for running := len(ids); running > 0; {
		select {
		case e := <-cl.events:
			i := e.worker
			switch {
			case e.exited:
				running--
				if !reported[i] {
					failures = append(failures, fmt.Sprintf("%s exited without a result: %v: %s", describe(i), e.err, cl.children[i].tail()))
				}
			case e.Event == "round" && e.Round > 0:
				sums.n++
				sums.allReduce += e.AllReduce
				sums.comm += e.RoundTime - e.Train
				sums.round += e.RoundTime
			case e.Event == "done":
				reported[i] = true
				sums.excluded += e.Excluded
				if e.Error != "" {
					failures = append(failures, describe(i)+": "+e.Error)
				}
			}
		case <-ctx.Done():
			return sums, ctx.Err()
		}
	}
	if len(failures) > 0 {
		return sums, errors.New(strings.Join(failures, "; "))
	}
	if sums.n == 0 {
		return sums, errors.New("no round after the warm-up was reported")
	}
	return sums, nil
}

// The node modes of a throughput run (nodeSpec.Mode; "" is a job).
const (
	modeAllReduce = "allreduce"
	modeStreams   = "streams"
)

// allReduceWorker is a node's DiLoCo worker for an allreduce run: a
// trainer that does nothing, so each round is the exchange alone.
func allReduceWorker(spec nodeSpec, codec train.Codec, transport diloco.Transport, report func(nodeEvent)) (*diloco.Worker, error) {
	initial, err := train.NewGlobalState(make([]float32, spec.Params), spec.IDs)
	if err != nil {
		return nil, err
	}
	return diloco.NewWorker(diloco.Config{
		Job: spec.Job, Key: spec.Key, Trainer: dilocotest.NewNullTrainer(spec.Params, spec.Seed+int64(spec.Index)),
		Workers: spec.IDs, Initial: initial,
		Batches:    func(uint64) gridmind.BatchSource { return dilocotest.NoBatches{} },
		InnerSteps: spec.InnerSteps, Rounds: uint64(spec.Rounds), Transport: transport,
		Protocol:    train.Config{Codec: codec, Combiner: train.CenteredClip{}, Screen: train.DefaultScreen(), Timing: spec.Timing},
		SendTimeout: spec.SendTimeout, StallTimeout: spec.StallTimeout, Linger: spec.Linger,
		Progress: func(p diloco.Progress) {
			report(nodeEvent{Event: "round", Round: p.Round, Train: p.TrainTime, RoundTime: p.RoundTime, Bytes: p.RoundBytes, AllReduce: p.AllReduce})
		},
	})
}

// runStreams sends the all-reduce's byte pattern over t for spec.Rounds
// rounds: in each, a part of spec.PartBytes to every other node, then,
// once every other node's part is in, another to every other node.
// h must be serving t on every node before any starts.
func runStreams(ctx context.Context, spec nodeSpec, t diloco.Transport, h *PatternCounter, report func(nodeEvent)) error {
	k := len(spec.IDs)
	payload := make([]byte, spec.PartBytes)
	for r := range spec.Rounds {
		start := time.Now()
		if err := streamRound(ctx, spec, t, h, r, payload); err != nil {
			return err
		}
		took := time.Since(start)
		report(nodeEvent{Event: "round", Round: uint64(r), RoundTime: took, AllReduce: took, Bytes: int64(2 * (k - 1) * spec.PartBytes)})
	}
	// A peer may still wait for this node's acknowledgement of its last
	// part (its send returns on it): keep serving a while, as a finished
	// DiLoCo worker lingers.
	select {
	case <-time.After(spec.Linger):
	case <-ctx.Done():
	}
	return nil
}

// streamRound is one round's two phases. A round that cannot finish (a
// peer gone, a link cut) ends within the stall bound a job would have.
func streamRound(ctx context.Context, spec nodeSpec, t diloco.Transport, h *PatternCounter, r int, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, spec.StallTimeout)
	defer cancel()
	return ExchangeRound(ctx, t, spec.IDs, spec.Index, h, r, payload)
}

// ExchangeRound is round r of the butterfly all-reduce's byte pattern
// from worker self of ids, without computation: payload to every other
// worker, then, once every other worker's part of the phase arrived at h
// (which must be serving t on every worker before any starts), payload to
// every other worker again. It writes the round and phase into the
// payload's first PatternHeader bytes, so a worker that runs ahead cannot
// complete a slower one's phase; each worker needs its own payload.
func ExchangeRound(ctx context.Context, t diloco.Transport, ids []gridmind.NodeID, self int, h *PatternCounter, r int, payload []byte) error {
	if len(payload) < PatternHeader {
		return fmt.Errorf("wan: a pattern payload of %d bytes: want at least %d", len(payload), PatternHeader)
	}
	k := len(ids)
	for phase := range 2 {
		binary.BigEndian.PutUint64(payload, uint64(r))
		payload[8] = byte(phase)
		var wg sync.WaitGroup
		errs := make([]error, k)
		for j, peer := range ids {
			if j != self {
				wg.Go(func() { errs[j] = t.SendBulk(ctx, peer, payload) })
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("round %d, phase %d: %w", r, phase, err)
		}
		if err := h.wait(ctx, r, phase, k-1); err != nil {
			return fmt.Errorf("round %d, phase %d: waiting for the others' parts: %w", r, phase, err)
		}
	}
	return nil
}

// PatternCounter counts the parts ExchangeRound received per round and
// phase; it serves a transport as its diloco.Handler.
type PatternCounter struct {
	mu   sync.Mutex
	cond *sync.Cond
	got  map[[2]uint64]int
}

func NewPatternCounter() *PatternCounter {
	h := &PatternCounter{got: map[[2]uint64]int{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *PatternCounter) Control(gridmind.NodeID, []byte) {}

func (h *PatternCounter) Bulk(_ gridmind.NodeID, data []byte) {
	if len(data) < PatternHeader {
		return
	}
	key := [2]uint64{binary.BigEndian.Uint64(data), uint64(data[8])}
	h.mu.Lock()
	h.got[key]++
	h.mu.Unlock()
	h.cond.Broadcast()
}

func (h *PatternCounter) State(context.Context, uint64, train.Hash) ([]byte, error) {
	return nil, errors.New("no state in a streams run")
}

// wait blocks until want parts of round r's phase arrived or ctx ends.
func (h *PatternCounter) wait(ctx context.Context, r, phase, want int) error {
	stop := context.AfterFunc(ctx, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.cond.Broadcast()
	})
	defer stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	key := [2]uint64{uint64(r), uint64(phase)}
	for h.got[key] < want {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.cond.Wait()
	}
	return nil
}

// ThroughputMarkdown is the rows as a table.
func ThroughputMarkdown(rows []ThroughputRow, workers int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| links | each worker | vector | payload/round/worker | all-reduce | its rate | round's communication | rounds left out | plain streams, same payload | their rate | all-reduce / streams |\n")
	fmt.Fprintf(&b, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if r.Failure != "" {
			fmt.Fprintf(&b, "| %s | %s | %d × %s | failed | | | | | | | |\n", r.Config, r.Link, r.Params, r.Codec)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d × %s | %s | %s | %s/s | %s | %d | %s | %s/s | **%.0f%%** |\n", r.Config, r.Link, r.Params, r.Codec,
			human(r.Payload), r.AllReduce.Round(time.Millisecond), human(int64(r.AllReduceRate)), r.RoundComm.Round(time.Millisecond),
			r.LeftOut, r.Streams.Round(time.Millisecond), human(int64(r.StreamRate)), 100*r.Ratio)
	}
	fmt.Fprintf(&b, "\n%d workers; means over every worker's rounds after a warm-up round.\n", workers)
	for _, r := range rows {
		if r.Failure != "" {
			fmt.Fprintf(&b, "\n%s failed: %s\n", r.Config, r.Failure)
		}
	}
	return b.String()
}
