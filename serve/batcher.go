package serve

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
)

// Batch is a set of doubly signed receipts submitted for payment together.
type Batch struct {
	Receipts  []Receipt
	TokensIn  int64
	TokensOut int64
}

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	// Submit pays a batch (the node submits it to the ledger). An error
	// keeps the receipts for the next flush.
	Submit func(ctx context.Context, b Batch) error
	// MaxReceipts triggers a flush when that many are pending (default 100).
	MaxReceipts int
	// MaxDelay flushes pending receipts at least this often (default 30 s).
	MaxDelay time.Duration
	// MaxPending bounds memory if Submit keeps failing (default 100,000);
	// Add refuses receipts beyond it.
	MaxPending int
	// Remember is how many receipt keys are kept to refuse duplicates (default 100,000).
	Remember int
	Logger   *slog.Logger
}

// Batcher collects receipts and hands them to Submit in batches. Add is
// safe for concurrent use; Run owns the flushing goroutine.
type Batcher struct {
	cfg     BatcherConfig
	log     *slog.Logger
	full    chan struct{}
	flushMu sync.Mutex // one Submit at a time, in order

	mu      sync.Mutex
	pending []Receipt
	seen    map[string]struct{}
	order   []string // ring of seen keys, oldest first at seenPos
	seenPos int
}

// NewBatcher checks the configuration and returns a Batcher.
func NewBatcher(cfg BatcherConfig) (*Batcher, error) {
	if cfg.Submit == nil {
		return nil, gridmind.E(gridmind.KindInvalid, "serve.batcher", "no Submit callback")
	}
	if cfg.MaxReceipts <= 0 {
		cfg.MaxReceipts = 100
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Batcher{
		cfg:  cfg,
		log:  cfg.Logger,
		full: make(chan struct{}, 1),
		seen: make(map[string]struct{}),
	}, nil
}

// Add verifies r (shape and both signatures) and queues it. A receipt seen
// before (same server and request id) is refused, so a replayed
// acknowledgement cannot be paid twice.
func (b *Batcher) Add(r Receipt) error {
	if err := r.Verify(); err != nil {
		return gridmind.E(gridmind.KindUnauthorized, "serve.batcher", "%w", err)
	}
	key := string(r.Server) + "\x00" + r.RequestID
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.seen[key]; dup {
		return gridmind.E(gridmind.KindConflict, "serve.batcher", "receipt %s from %s already counted", r.RequestID, r.Server.Short())
	}
	if len(b.pending) >= b.cfg.MaxPending {
		return gridmind.E(gridmind.KindUnavailable, "serve.batcher", "%d receipts pending, submissions failing", len(b.pending))
	}
	b.remember(key)
	b.pending = append(b.pending, r)
	if len(b.pending) >= b.cfg.MaxReceipts {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	return nil
}

func (b *Batcher) remember(key string) {
	if len(b.order) < b.cfg.Remember {
		b.order = append(b.order, key)
	} else {
		delete(b.seen, b.order[b.seenPos])
		b.order[b.seenPos] = key
		b.seenPos = (b.seenPos + 1) % len(b.order)
	}
	b.seen[key] = struct{}{}
}

// Pending is the number of receipts waiting for a flush.
func (b *Batcher) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Flush submits pending receipts in batches of at most MaxReceipts. On a
// Submit error the unsubmitted receipts stay pending and the error returns.
func (b *Batcher) Flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.cfg.MaxReceipts)
		batch := Batch{Receipts: append([]Receipt(nil), b.pending[:n]...)}
		b.mu.Unlock()
		if n == 0 {
			return nil
		}
		for _, r := range batch.Receipts {
			batch.TokensIn += r.TokensIn
			batch.TokensOut += r.TokensOut
		}
		if err := b.cfg.Submit(ctx, batch); err != nil {
			return fmt.Errorf("serve.batcher: submit %d receipts: %w", n, err)
		}
		b.mu.Lock()
		// Only Flush removes from the front, under flushMu, so the first n
		// are still the ones submitted.
		b.pending = append(b.pending[:0:0], b.pending[n:]...)
		b.mu.Unlock()
	}
}

// Run flushes when a batch fills up and every MaxDelay, until ctx ends;
// then it makes one last attempt with a short grace period and returns.
func (b *Batcher) Run(ctx context.Context) error {
	ticker := time.NewTicker(b.cfg.MaxDelay)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := b.Flush(final)
			cancel()
			if err != nil {
				b.log.Warn("receipts left unpaid at shutdown", "pending", b.Pending(), "err", err)
			}
			return ctx.Err()
		case <-ticker.C:
		case <-b.full:
		}
		if err := b.Flush(ctx); err != nil {
			b.log.Warn("receipt batch not submitted; will retry", "pending", b.Pending(), "err", err)
		}
	}
}
