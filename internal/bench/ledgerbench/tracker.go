package ledgerbench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/gridmind/gridmind/ledger"
)

// newBlockQuery is the CometBFT event subscription the tracker listens to:
// one event per block, carrying its transactions and their results.
// (One event per transaction, tm.event='Tx', would be thousands of
// websocket messages a second, and CometBFT drops a subscriber that
// falls behind.)
const newBlockQuery = "tm.event='NewBlock'"

type sent struct {
	at   time.Time
	kind kind
}

type record struct {
	kind kind
	lat  time.Duration
	at   time.Time // when the commit was seen
	ok   bool
}

// tracker hears of committed blocks through a validator's websocket event
// subscription and matches their transactions to the ones submitted.
type tracker struct {
	log    *slog.Logger
	rpc    *rpchttp.HTTP
	window chan struct{} // one token per transaction submitted and not yet seen committed
	height atomic.Int64
	failed chan error // the subscription broke: the figures would be wrong
	change chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	pending     map[ledger.Hash]sent
	records     []record
	failLogs    []string
	inWindow    bool
	windowStart time.Time
	windowEnd   time.Time
	blocks      int
	maxBlock    int
	committed   int
	last        int64 // the last height processed
}

func startTracker(ctx context.Context, rpcAddr string, window int, log *slog.Logger) (*tracker, error) {
	c, err := rpchttp.New(rpcAddr, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("ledgerbench: event client for %s: %w", rpcAddr, err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("ledgerbench: websocket to %s: %w", rpcAddr, err)
	}
	// A block event is a few MB at most; a deep buffer keeps a slow
	// moment of this process from dropping one (the client drops events
	// its channel cannot take; gaps are filled by asking for the block).
	sub, err := c.Subscribe(ctx, "ledgerbench", newBlockQuery, 4096)
	if err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("ledgerbench: subscribe to %s at %s: %w", newBlockQuery, rpcAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &tracker{
		log: log, rpc: c, window: make(chan struct{}, window), failed: make(chan error, 1),
		change: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}), pending: map[ledger.Hash]sent{},
	}
	go func() {
		defer close(t.done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sub:
				nb, ok := ev.Data.(cmttypes.EventDataNewBlock)
				if !ok || nb.Block == nil {
					continue
				}
				if err := t.fillGap(ctx, nb.Block.Height); err != nil {
					select {
					case t.failed <- err:
					default:
					}
					return
				}
				t.block(nb.Block.Height, nb.Block.Txs, nb.ResultFinalizeBlock.TxResults, time.Now())
			}
		}
	}()
	return t, nil
}

// fillGap asks for the blocks between the last one seen and height, in
// case an event was dropped; their commits are timed when fetched.
func (t *tracker) fillGap(ctx context.Context, height int64) error {
	t.mu.Lock()
	last := t.last
	t.mu.Unlock()
	if last == 0 {
		return nil
	}
	for h := last + 1; h < height; h++ {
		t.log.Warn("ledgerbench: block event missed; reading the block", "height", h)
		b, err := t.rpc.Block(ctx, &h)
		if err != nil {
			return fmt.Errorf("ledgerbench: block %d (its event was missed): %w", h, err)
		}
		res, err := t.rpc.BlockResults(ctx, &h)
		if err != nil {
			return fmt.Errorf("ledgerbench: results of block %d (its event was missed): %w", h, err)
		}
		t.block(h, b.Block.Txs, res.TxsResults, time.Now())
	}
	return nil
}

func (t *tracker) block(height int64, txs cmttypes.Txs, results []*abci.ExecTxResult, now time.Time) {
	t.height.Store(height)
	t.mu.Lock()
	if height <= t.last {
		t.mu.Unlock()
		return
	}
	t.last = height
	ours := 0
	for i, raw := range txs {
		h := ledger.Hash(sha256.Sum256(raw))
		s, ok := t.pending[h]
		if !ok {
			continue
		}
		delete(t.pending, h)
		ours++
		code := uint32(0)
		if i < len(results) && results[i] != nil {
			code = results[i].Code
			if code != 0 && len(t.failLogs) < 5 {
				t.failLogs = append(t.failLogs, fmt.Sprintf("%s: %s: %s", s.kind, ledger.Code(code), results[i].Log))
			}
		}
		t.records = append(t.records, record{kind: s.kind, lat: now.Sub(s.at), at: now, ok: code == 0})
		<-t.window
	}
	if t.inWindow && ours > 0 {
		t.blocks++
		t.maxBlock = max(t.maxBlock, ours)
	}
	t.committed += ours
	t.mu.Unlock()
	select {
	case t.change <- struct{}{}:
	default:
	}
}

// acquire takes a place in the window, waiting while it is full; false
// if stop closed first.
func (t *tracker) acquire(stop <-chan struct{}) bool {
	select {
	case t.window <- struct{}{}:
		return true
	case <-stop:
		return false
	}
}

// add starts the clock of a transaction about to be broadcast (before
// the call: its block can arrive before the call returns).
func (t *tracker) add(h ledger.Hash, k kind, at time.Time) {
	t.mu.Lock()
	t.pending[h] = sent{at: at, kind: k}
	t.mu.Unlock()
}

// forget drops a transaction the mempool did not take.
func (t *tracker) forget(h ledger.Hash) {
	t.mu.Lock()
	delete(t.pending, h)
	t.mu.Unlock()
}

func (t *tracker) release() { <-t.window }

func (t *tracker) committedCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed
}

func (t *tracker) startWindow() {
	t.mu.Lock()
	t.inWindow, t.windowStart = true, time.Now()
	t.mu.Unlock()
}

func (t *tracker) endWindow() {
	t.mu.Lock()
	t.inWindow, t.windowEnd = false, time.Now()
	t.mu.Unlock()
}

// windowCommits counts the load's transactions committed while it ran.
func (t *tracker) windowCommits() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.records {
		if r.kind != kindSetup && !r.at.Before(t.windowStart) && !r.at.After(t.windowEnd) {
			n++
		}
	}
	return n
}

// waitEmpty waits until every submitted transaction was seen committed,
// or ctx ends; tick is called every two seconds.
func (t *tracker) waitEmpty(ctx context.Context, tick func()) {
	every := time.NewTicker(2 * time.Second)
	defer every.Stop()
	for {
		t.mu.Lock()
		n := len(t.pending)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.change:
		case <-every.C:
			tick()
		}
	}
}

// summarise fills in r's figures from what was seen; r.Load must be set.
func (t *tracker) summarise(r *Report) {
	n := t.windowCommits()
	t.mu.Lock()
	defer t.mu.Unlock()
	var lat [numKinds][]time.Duration
	var failed [numKinds]int
	var all []time.Duration
	allFailed := 0
	for _, rec := range t.records {
		if rec.kind == kindSetup {
			continue
		}
		if !rec.ok {
			failed[rec.kind]++
			allFailed++
			continue
		}
		lat[rec.kind] = append(lat[rec.kind], rec.lat)
		all = append(all, rec.lat)
	}
	r.Overall = stats("all", all, allFailed)
	r.Overall.Share = 1
	for k := range kindSetup {
		s := stats(k.String(), lat[k], failed[k])
		if len(all) > 0 {
			s.Share = float64(s.Committed) / float64(len(all))
		}
		r.Kinds = append(r.Kinds, s)
	}
	for _, s := range t.pending {
		if s.kind != kindSetup {
			r.Uncommitted++
		}
	}
	r.FailedLogs = t.failLogs
	r.Blocks, r.MaxBlockTxs = t.blocks, t.maxBlock
	if r.Load > 0 {
		r.TPS = float64(n) / r.Load.Seconds()
	}
}

// pendingOf counts the transactions of kind k not yet seen committed.
func (t *tracker) pendingOf(k kind) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.pending {
		if s.kind == k {
			n++
		}
	}
	return n
}

func (t *tracker) stop() {
	t.cancel()
	<-t.done
	if err := t.rpc.Stop(); err != nil && !strings.Contains(err.Error(), "already stopped") {
		t.log.Debug("ledgerbench: stopping the event client", "err", err)
	}
}
