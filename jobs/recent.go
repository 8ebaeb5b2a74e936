package jobs

import (
	"context"
	"time"

	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/train"
)

// A worker stopped before its job's last round (the job cancelled or
// expired on the ledger, its lease gone) has trained a few rounds past
// the job's last receipt by the time it stops: the ledger notices late
// and the worker finishes its round before leaving. Those rounds nobody
// receipted or paid for, and the job's model is the one its last receipt
// names, which `jobs show` and `models` point users to. So the provider
// keeps the θ of the last rounds its worker reached and serves that one.

// The θ kept per job: at most recentKeepStates rounds and recentKeepBytes.
// A round of minutes puts the last receipt a round or two behind; toy
// rounds of milliseconds put it tens of rounds behind.
const (
	recentKeepStates = 256
	recentKeepBytes  = 32 << 20
)

// recentStates keeps, by θ hash, the θ of the last few rounds a worker
// reached (states are never modified once reached, so no copy is made).
type recentStates struct {
	keep  int
	order []ledger.Hash
	theta map[ledger.Hash][]float32
}

func newRecentStates(params int) *recentStates {
	keep := recentKeepStates
	if params > 0 {
		keep = min(keep, max(2, recentKeepBytes/(4*params)))
	}
	return &recentStates{keep: keep, theta: map[ledger.Hash][]float32{}}
}

func (r *recentStates) add(s *train.GlobalState) {
	h := ledger.Hash(s.ThetaHash())
	if _, ok := r.theta[h]; ok {
		return
	}
	r.order = append(r.order, h)
	r.theta[h] = s.Theta
	for len(r.order) > r.keep {
		delete(r.theta, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentStates) get(h ledger.Hash) ([]float32, bool) {
	t, ok := r.theta[h]
	return t, ok
}

// lastReceipted returns the round and model hash of job's latest receipt
// (settled or in its dispute window); false when there is none or the
// ledger cannot say.
func (p *Provider) lastReceipted(job ledger.JobID) (uint64, ledger.Hash, bool) {
	lr, ok := p.Ledger.(auditLedger)
	if !ok {
		return 0, ledger.Hash{}, false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	receipts, err := lr.Receipts(ctx, job)
	if err != nil {
		p.log.Warn("reading the job's receipts", "job", job, "err", err)
		return 0, ledger.Hash{}, false
	}
	var last *ledger.Receipt
	for i := range receipts {
		if last == nil || receipts[i].Round > last.Round {
			last = &receipts[i]
		}
	}
	if last == nil {
		return 0, ledger.Hash{}, false
	}
	return last.Round, last.ModelHash, true
}

// receiptedModel waits, until the ledger holds a receipt of round or for
// at most wait, and returns the θ of the model the job's last receipt
// names if this worker reached it. The ledger, not the worker's own
// count of who confirmed its state, says which model is the job's.
func (p *Provider) receiptedModel(job ledger.JobID, round uint64, wait time.Duration, recent *recentStates) (ledger.Hash, []float32, bool) {
	deadline := time.Now().Add(wait)
	for {
		r, want, ok := p.lastReceipted(job)
		if ok && r >= round || !time.Now().Before(deadline) {
			if !ok {
				return ledger.Hash{}, nil, false
			}
			theta, found := recent.get(want)
			return want, theta, found
		}
		select {
		case <-p.ctx.Done():
			return ledger.Hash{}, nil, false
		case <-time.After(500 * time.Millisecond):
		}
	}
}
