package app

import (
	"context"
	"sort"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// attestUptime submits, once per epoch, what this node saw of its peers'
// heartbeats: for each peer, beats seen against beats expected. A peer
// that vanished keeps being expected for a while, so a crash costs it
// uptime in everyone's attestations; the ledger sums the observations
// into each node's reputation record.
func (a *App) attestUptime(ctx context.Context, epoch, heartbeat time.Duration, forget int) {
	log := a.Node.Logger().With("part", "uptime")
	last := map[gridmind.NodeID]int64{}   // beats counted up to the previous epoch
	missing := map[gridmind.NodeID]int{}  // epochs a known peer has been absent
	expected := uint64(epoch / heartbeat) // beats a live peer sends per epoch
	var lastEpoch uint64                  // the last ledger epoch attested
	attested := false
	tick := time.NewTicker(epoch)
	defer tick.Stop()
	select { // attesting needs the stake registration puts up
	case <-a.registered:
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			var obs []ledger.Observation
			present := map[gridmind.NodeID]bool{}
			for _, p := range a.Node.Peers().List() {
				present[p.ID] = true
				prev, known := last[p.ID]
				seen := p.Beats - prev
				if seen < 0 { // the peer expired and came back: its count restarted
					seen = p.Beats
				}
				last[p.ID] = p.Beats
				delete(missing, p.ID)
				if !known {
					continue // first epoch: it may have joined halfway through
				}
				obs = append(obs, ledger.Observation{Node: p.ID, Seen: min(uint64(seen), expected), Expected: expected})
			}
			for id := range last {
				if present[id] {
					continue
				}
				if missing[id]++; missing[id] > forget {
					delete(last, id)
					delete(missing, id)
					continue
				}
				last[id] = 0
				obs = append(obs, ledger.Observation{Node: id, Seen: 0, Expected: expected})
			}
			if len(obs) == 0 {
				continue
			}
			sort.Slice(obs, func(i, j int) bool { return obs[i].Node < obs[j].Node })
			// The ledger takes one attestation per observer per ledger
			// epoch (height / epoch blocks), for the epoch it is in.
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			ledgerEpoch, err := a.ledgerEpoch(sctx)
			switch {
			case err != nil:
				log.Warn("uptime attestation: reading the ledger's epoch", "err", err)
			case attested && ledgerEpoch <= lastEpoch:
				// Already attested this epoch; these beats count toward the next.
			default:
				body := &ledger.AttestUptime{Epoch: ledgerEpoch, Observations: obs}
				if _, err := a.Wallet.Submit(sctx, body); err != nil && ctx.Err() == nil {
					log.Warn("uptime attestation refused", "epoch", ledgerEpoch, "err", err)
				} else if err == nil {
					attested, lastEpoch = true, ledgerEpoch
				}
			}
			cancel()
		}
	}
}

// ledgerEpoch is the ledger's uptime epoch for the next block.
func (a *App) ledgerEpoch(ctx context.Context) (uint64, error) {
	st, err := a.Chain.Status(ctx)
	if err != nil {
		return 0, err
	}
	p, err := a.Chain.Params(ctx)
	if err != nil {
		return 0, err
	}
	return uint64(st.Height+1) / uint64(max(p.EpochBlocks, 1)), nil
}
