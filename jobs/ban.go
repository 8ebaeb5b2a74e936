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
// runs this code then leaves at the round's end (watchJob), but a
// cheater need not run this code. So every honest worker of the job also
// watches the ledger and bans the excluded peer in its own worker
// (diloco.Worker.Ban): no honest leader admits it to a round again and no
// round it leads goes ahead, so once every honest worker has read the
// exclusion its contributions count in no round, whatever it keeps sending.

// jobWorker is what a running worker offers its job's watcher
// (diloco.Worker).
type jobWorker interface {
	Ban(peer gridmind.NodeID, reason string)
	Leave() // at the next round boundary
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

// watchJob reads job from the ledger every LeaseCheckEvery while self
// works on it, and acts on what the record shows: once the job ended or
// self's lease is gone it makes the worker leave at the round's end and
// then stops it (cancel), since nobody pays for rounds after that and
// training on would only burn energy; while the job runs, it bans in the
// worker each peer the ledger excluded (excludedFrom). One reader of the
// record for both, so they always act on the same height. It returns when
// ctx ends.
func (p *Provider) watchJob(ctx context.Context, cancel context.CancelFunc, job ledger.JobID, self gridmind.NodeID) {
	every := p.LeaseCheckEvery
	if every <= 0 {
		every = 5 * time.Second
	}
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
			continue // the ledger unreachable is no evidence of anything
		}
		leased := false
		for _, l := range j.Leases {
			leased = leased || (l.Provider == self && l.Active())
		}
		if (!j.Open() || !leased) && !p.isStubborn() {
			p.log.Info("job ended on the ledger; stopping its worker", "job", job, "state", j.State, "leased", leased)
			p.leave(ctx, job) // at the round's end (audit.go)
			cancel()
			return
		}
		w := p.workerOf(job)
		if w == nil {
			continue // not started yet: bans wait for the next read
		}
		for peer, height := range excludedFrom(j, self) {
			if !banned[peer] {
				banned[peer] = true
				w.Ban(peer, fmt.Sprintf("excluded from job %s on the ledger at height %d (proven fraud)", job, height))
			}
		}
	}
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
