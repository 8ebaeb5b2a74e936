package ledger

import (
	"fmt"
	"math/bits"
	"slices"

	"github.com/gridmind/gridmind"
)

// Ending a job (CancelJob, CloseJob) must not cut short the dispute window
// of a round already receipted, or a cheater whose round was receipted
// just before the end would be paid before evidence against it could be
// filed (and a deadline would become a way to skip audits). So a job ends
// at once (leases end, no more receipts, the unreceipted escrow goes
// back), but the pots of rounds still inside their window stay in escrow,
// held. Each held round settles when its window closes: anyone may send
// SettleRound, and BeginBlock settles whatever is left at the height the
// last window closes, so a held pot never waits on anyone. Evidence filed
// before then withholds and slashes as on a running job. When the last
// held round is settled the rest of the escrow goes back to the requester.

const prefixHeld = "held/"

func heldKey(height int64) string { return heightKey(prefixHeld, height) }

// heldQueue lists the ended jobs whose held rounds BeginBlock settles at
// one height, in the order they ended.
type heldQueue struct {
	Jobs []JobID `json:"jobs"`
}

func (q heldQueue) clone() heldQueue {
	q.Jobs = slices.Clone(q.Jobs)
	return q
}

func selHeld(s *State) table[heldQueue]  { return s.held }
func refHeld(s *State) *table[heldQueue] { return &s.held }

// Held is what an ended job keeps in escrow for its rounds that are still
// in their dispute window: one round's pot each, at most the escrow.
func (j *Job) Held() gridmind.Amount {
	if j.Open() || len(j.Pending) == 0 {
		return 0
	}
	return j.heldFor()
}

// heldFor is what the pending rounds of j would hold if it ended now.
func (j *Job) heldFor() gridmind.Amount {
	hi, lo := bits.Mul64(uint64(j.pot()), uint64(len(j.Pending)))
	if hi != 0 || gridmind.Amount(lo) > j.Escrow {
		return j.Escrow
	}
	return gridmind.Amount(lo)
}

// HeldUntil is the height from which the held rounds of an ended job
// settle by themselves (the end of the last one's dispute window), or 0
// when it holds none.
func (s *State) HeldUntil(j *Job) int64 {
	if j.Open() || len(j.Pending) == 0 {
		return 0
	}
	r, ok := s.receipt(j.ID, j.Pending[len(j.Pending)-1])
	if !ok {
		return 0
	}
	return s.settleFrom(&r)
}

// queueHeld schedules the held rounds of j, which just ended, to settle
// when the last one's dispute window closes.
func (s *State) queueHeld(j *Job) {
	at := s.HeldUntil(j)
	if at == 0 {
		return
	}
	// Never a height already begun (endJob settles the rounds whose
	// window has closed, so this only guards against a caller that did
	// not): a queue entry there would never be read.
	at = max(at, s.height()+1)
	var queue heldQueue
	if q, ok := get(s, selHeld, heldKey(at)); ok {
		queue = q.clone()
	}
	queue.Jobs = append(queue.Jobs, j.ID)
	put(s, refHeld, heldKey(at), queue)
}

// settleHeld settles the held rounds of the jobs queued at height (rounds
// someone already settled are gone from Pending). BeginBlockAt calls it
// once the block's height is set. An error means the state is broken.
func (s *State) settleHeld(height int64) ([]Event, error) {
	key := heldKey(height)
	q, ok := get(s, selHeld, key)
	if !ok {
		return nil, nil
	}
	var events []Event
	for _, id := range q.Jobs {
		j, ok := s.job(id)
		if !ok {
			return nil, fmt.Errorf("ledger: held rounds of job %s, which does not exist", id)
		}
		for len(j.Pending) > 0 {
			r, ok := s.receipt(j.ID, j.Pending[0])
			if !ok {
				return nil, fmt.Errorf("ledger: job %s holds round %d without a receipt", j.ID, j.Pending[0])
			}
			if at := s.settleFrom(&r); height < at {
				return nil, fmt.Errorf("ledger: job %s: held round %d queued at height %d settles from %d", j.ID, r.Round, height, at)
			}
			ev, err := s.settle(&j, &r)
			if err != nil {
				return nil, fmt.Errorf("ledger: settling held round %d of job %s: %w", r.Round, j.ID, err)
			}
			events = append(events, ev...)
		}
		s.setJob(j)
	}
	remove(s, refHeld, key)
	return events, nil
}
