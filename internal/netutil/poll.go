package netutil

import (
	"context"
	"time"
)

// PollUntil checks cond every `every` until it holds, ctx ends or timeout
// passes (then it returns the context's error). Network state
// (connections, routing tables, mesh peers, deliveries, DHT records)
// changes in libp2p's goroutines without an event to wait on, so polling
// a condition with a deadline is the honest way to wait for it.
func PollUntil(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
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
