package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// banList caches the ledger's list of servers banned for proven inference
// fraud, for the inference client's directory (serve.Screened), which asks
// about every replica of every request: a set read from memory, refreshed
// in the background.
type banList struct {
	ids atomic.Pointer[map[gridmind.NodeID]bool]
}

// has reports whether id was banned at the last refresh.
func (b *banList) has(id gridmind.NodeID) bool {
	m := b.ids.Load()
	return m != nil && (*m)[id]
}

// run refreshes the list from list every interval until ctx ends. A failed
// read keeps the last list: a ban is never lifted on the ledger.
func (b *banList) run(ctx context.Context, list func(context.Context) ([]ledger.VerifyRecord, error), every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		recs, err := list(ctx)
		if err == nil {
			m := make(map[gridmind.NodeID]bool, len(recs))
			for _, r := range recs {
				m[r.Node] = true
			}
			if old := b.ids.Load(); old == nil || len(*old) != len(m) {
				log.Info("servers banned for proven inference fraud", "count", len(m))
			}
			b.ids.Store(&m)
		} else if ctx.Err() == nil {
			log.Debug("reading the ban list", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
