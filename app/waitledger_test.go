package app

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWaitLedger: a validator that refuses the first dials (it starts beside
// the node) is no reason to warn; one that never answers within the window
// is, with its last error.
func TestWaitLedger(t *testing.T) {
	refused := errors.New("connection refused")
	calls := 0
	err := waitLedger(context.Background(), time.Minute, time.Millisecond, func(context.Context) error {
		if calls++; calls < 3 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("a ledger answering at the third try: err %v after %d calls, want nil after 3", err, calls)
	}
	err = waitLedger(context.Background(), 20*time.Millisecond, time.Millisecond, func(context.Context) error { return refused })
	if !errors.Is(err, refused) {
		t.Errorf("a ledger that never answers: err %v, want %v", err, refused)
	}
}
