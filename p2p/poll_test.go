package p2p

import (
	"context"
	"time"
)

// pollUntil checks cond every few milliseconds until it holds, ctx ends or
// timeout passes. Network state (connections, routing tables, deliveries)
// changes in libp2p's goroutines without an event we can wait on, so
// polling a condition with a deadline is the honest way to wait for it.
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
