package p2p

import (
	"context"
	"time"

	"github.com/gridmind/gridmind/internal/netutil"
)

// pollUntil waits for cond every few milliseconds (netutil.PollUntil).
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return netutil.PollUntil(ctx, timeout, 5*time.Millisecond, cond)
}
