package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// TestBanListFollowsTheLedger: the cached list takes up a ban at the next
// refresh and keeps it when the ledger cannot be read.
func TestBanListFollowsTheLedger(t *testing.T) {
	const cheat, honest = gridmind.NodeID("cheat"), gridmind.NodeID("honest")
	type answer struct {
		recs []ledger.VerifyRecord
		err  error
	}
	answers := make(chan answer)
	list := func(ctx context.Context) ([]ledger.VerifyRecord, error) {
		select {
		case a := <-answers:
			return a.recs, a.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b := &banList{}
	go func() { defer close(done); b.run(ctx, list, time.Millisecond, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })

	answers <- answer{}
	answers <- answer{recs: []ledger.VerifyRecord{{Kind: "banned", Node: cheat, Height: 7}}}
	answers <- answer{err: errors.New("ledger unreachable")} // sent once the previous one is stored
	if !b.has(cheat) || b.has(honest) {
		t.Fatalf("after the ban: cheat %v honest %v", b.has(cheat), b.has(honest))
	}
	answers <- answer{err: errors.New("ledger unreachable")}
	if !b.has(cheat) {
		t.Fatal("an unreadable ledger lifted the ban")
	}
}
