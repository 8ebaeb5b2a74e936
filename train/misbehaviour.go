package train

import (
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
)

// This file turns what the authenticated round reveals into consequences:
// verdicts of the reducers' screens (judge), verified evidence (misbehaved,
// onEvidence), and the repair of a round in which a reducer equivocated.

// judge decides, from the results every participant applied (so every
// participant decides alike), who was rejected in ar: a worker dropped by
// the reducers of a majority of the distinct reducers that reduced parts.
func (c *Coordinator) judge(ar *allReduce) []Rejected {
	reducers := map[gridmind.NodeID]bool{}
	droppedBy := map[gridmind.NodeID]map[gridmind.NodeID]bool{}
	reasons := map[gridmind.NodeID]map[DropReason]int{}
	parts := map[gridmind.NodeID]int{}
	for _, r := range ar.results {
		reducers[r.header.Reducer] = true
		for i, p := range r.dropped {
			if droppedBy[p] == nil {
				droppedBy[p] = map[gridmind.NodeID]bool{}
				reasons[p] = map[DropReason]int{}
			}
			droppedBy[p][r.header.Reducer] = true
			reasons[p][r.reasons[i]]++
			parts[p]++
		}
	}
	var out []Rejected
	for _, p := range ar.participants {
		if 2*len(droppedBy[p]) <= len(reducers) {
			continue
		}
		var reason DropReason
		for r := DropNormHigh; r <= DropMismatch; r++ {
			if reasons[p][r] > reasons[p][reason] {
				reason = r
			}
		}
		c.strikes[p]++
		rej := Rejected{Round: ar.round, Worker: p, Reason: reason, Parts: parts[p], Of: len(ar.results)}
		if c.strikes[p] >= RejectStrikes && p != c.cfg.Self {
			if _, already := c.banned[p]; !already {
				c.banned[p] = fmt.Sprintf("rejected in %d rounds, last for %s", c.strikes[p], reason)
			}
			rej.Banned = true
		}
		out = append(out, rej)
	}
	return out
}

// misbehaved acts on verified evidence: the offender is excluded from the
// job, the driver hears of it (to log, count and file it), and a worker
// that found it itself tells the job, so that every honest worker excludes
// the offender and, for an equivocation, repairs the round alike.
func (c *Coordinator) misbehaved(now time.Time, e *Evidence, detected bool) {
	if e.Offender == c.cfg.Self {
		return
	}
	if _, already := c.banned[e.Offender]; already {
		return
	}
	c.banned[e.Offender] = fmt.Sprintf("%s in round %d", e.Kind, e.Round)
	c.out.Actions = append(c.out.Actions, Misbehaviour{Evidence: e, Detected: detected})
	if detected {
		if b, err := e.MarshalBinary(); err == nil {
			c.send(Message{Type: MsgEvidence, Round: e.Round, Payload: b})
		}
	}
	if e.Kind == EvidenceEquivocation {
		c.repair(now, e)
	}
}

func (c *Coordinator) onEvidence(now time.Time, m Message) error {
	if m.From == c.cfg.Self {
		return nil
	}
	e, err := UnmarshalEvidence(m.Payload)
	if err != nil {
		return err
	}
	if e.Job != c.cfg.Job || !c.allowed[e.Offender] {
		return fmt.Errorf("%w: evidence against %s in job %q", ErrNotEvidence, e.Offender.Short(), e.Job)
	}
	if err := e.Verify(); err != nil {
		return err
	}
	c.misbehaved(now, e, false)
	return nil
}

// compareHeaders checks a peer's "done" against the results this worker
// applied: the same reducer signing two results for one slot is an
// equivocation.
func (c *Coordinator) compareHeaders(now time.Time, m Message) {
	done := c.completed
	if done == nil || m.Round != done.round || m.Membership != done.membership {
		return
	}
	for _, h := range m.Headers {
		j := int(h.Part)
		if j >= len(done.results) {
			continue
		}
		mine := done.results[j].header
		if h.Reducer != mine.Reducer || h.Attempt != mine.Attempt || h.Result == mine.Result {
			continue
		}
		e := &Evidence{Kind: EvidenceEquivocation, Job: c.cfg.Job, Offender: h.Reducer, Round: done.round,
			Membership: done.membership, A: mine, B: h}
		if e.Verify() == nil {
			c.misbehaved(now, e, true)
		}
	}
}

// repair re-applies the round that e's reducer equivocated in, without
// that part's update: every honest worker holds one of the reducer's
// versions and learns of the evidence, so all of them arrive at the same
// state, and no honest worker is left out for holding the minority's
// version. It is possible only while the next round's all-reduce has not
// started; after that, the leader's majority decides as for any
// divergence.
func (c *Coordinator) repair(now time.Time, e *Evidence) {
	done := c.completed
	if done == nil || e.Round != done.round || e.Membership != done.membership {
		return
	}
	j := int(e.A.Part)
	if j >= len(done.results) || done.repaired[j] {
		return
	}
	if h := done.results[j].header; h.Reducer != e.Offender || h.Attempt != e.A.Attempt {
		return // this worker applied another reducer's result for the part
	}
	if c.state == nil || c.state.Round != done.round+1 || (c.phase != PhaseTraining && c.phase != PhaseReady) {
		return
	}
	done.repaired[j] = true
	combined := make([]float32, c.cfg.NumParams)
	contributors := make([][]gridmind.NodeID, len(done.results))
	for k, r := range done.results {
		if !done.repaired[k] {
			copy(combined[done.bounds[k]:done.bounds[k+1]], r.values)
			contributors[k] = r.contributors
		}
	}
	next := c.outerStep(done.prev, combined, done.participants)
	nextHash, thetaHash := next.Hash(), HashTheta(next.Theta)
	done.stateHash = nextHash
	c.out.Actions = append(c.out.Actions, RoundComplete{
		Round: done.round, State: next, StateHash: nextHash, ThetaHash: thetaHash,
		Leader: done.announcement.From, Attempt: done.announcement.Attempt, Participants: done.participants,
		Contributors: contributors, Repaired: true,
	})
	headers := make([]ReducedHeader, 0, len(done.results))
	for k, r := range done.results {
		if !done.repaired[k] {
			headers = append(headers, r.header)
		}
	}
	c.send(Message{Type: MsgDone, Round: done.round, StateHash: nextHash, ThetaHash: thetaHash, Membership: done.membership, Headers: headers})
	if c.phase == PhaseReady {
		c.feedback.Reset() // it already holds the error of a pseudo-gradient now discarded
	}
	c.adopt(now, next, nextHash)
}
