package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// Bans on ledger evidence. A fraud proof on the ledger ends the offender's
// lease and excludes it from the job (ledger.FraudProof); an offender that
// runs this code then leaves at the round's end (watchLease), but a
// cheater need not run this code. So every honest worker of the job also
// watches the ledger and bans the excluded peer in its own worker
// (diloco.Worker.Ban): no honest leader admits it to a round again and no
// round it leads goes ahead, so once every honest worker has read the
// exclusion its contributions count in no round, whatever it keeps sending.

// banner is what a running worker offers for this (diloco.Worker).
type banner interface {
	Ban(peer gridmind.NodeID, reason string)
}

// excludedFrom lists the providers j's ledger record shows excluded: the
// ledger ends one provider's lease on an open job only when a fraud proof
// excludes it (ledger/fraud_state.go exclude; closing the job ends all
// leases at once, and an excluded provider is never leased on the job
// again), so an ended lease, with no active one, on an open job is that
// evidence. The height is the one the lease ended at.
func excludedFrom(j ledger.Job, self gridmind.NodeID) map[gridmind.NodeID]int64 {
	if !j.Open() {
		return nil
	}
	active := map[gridmind.NodeID]bool{}
	for _, l := range j.Leases {
		if l.Active() {
			active[l.Provider] = true
		}
	}
	out := map[gridmind.NodeID]int64{}
	for _, l := range j.Leases {
		if !l.Active() && !active[l.Provider] && l.Provider != self {
			out[l.Provider] = l.EndHeight
		}
	}
	return out
}

// banExcluded bans in w (self's worker), every LeaseCheckEvery, the peers
// the ledger excluded from job, until ctx ends or the returned stop is
// called (stop waits for the watcher to end).
func (p *Provider) banExcluded(ctx context.Context, job ledger.JobID, self gridmind.NodeID, w banner) (stop func()) {
	every := p.LeaseCheckEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		banned := map[gridmind.NodeID]bool{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			j, err := p.Ledger.Job(ctx, job)
			if err != nil {
				continue // the ledger unreachable is no evidence
			}
			for peer, height := range excludedFrom(j, self) {
				if banned[peer] {
					continue
				}
				banned[peer] = true
				w.Ban(peer, fmt.Sprintf("excluded from job %s on the ledger at height %d (proven fraud)", job, height))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// SetStubborn makes this provider's workers ignore the end of their lease:
// excluded by a fraud proof, they keep training and sending to the job, as
// a cheater that does not run this code would. It is the adversary the
// honest workers' bans (banExcluded) are for; tests use it.
func (p *Provider) SetStubborn(on bool) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	p.audits.stubborn = on
}

func (p *Provider) isStubborn() bool {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	return p.audits.stubborn
}
