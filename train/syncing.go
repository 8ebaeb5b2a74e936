package train

import (
	"slices"
	"time"

	"github.com/gridmind/gridmind"
)

// This file decides which state a worker without a usable one fetches.
//
// A "done" is one member's word for what a round produced, and a member
// may lie: name a forged state (and serve it when asked), or a round far
// ahead of the job, which would strand a joiner training a round nobody
// else will reach. So a syncing worker fetches a state only when a quorum
// of the job's live members reported it, preferring the newest such
// round: more than half of the members (banned ones left out) it heard
// from within liveWindow, less those behind (they sent a "join" and
// reported no round since). Crashed members drop out of the count, so a
// job reduced to a few workers can still be joined; members behind drop
// out too, so that when all but one fell behind they follow that one at
// once rather than wait syncFallback while it finishes the job alone. A
// liar counts as one live member like any other and can only make the
// quorum larger; one that claims to be behind no longer vouches for any
// state. A worker that has heard from a single member waits observeFirst
// before trusting it alone, so that a liar who speaks first is not the
// only voice. When no state has a quorum, the worker waits syncFallback
// after the first report and then takes the state most members reported,
// the oldest round on a tie: one liar then ties at best with one honest
// member, and a forged round ahead loses to the job's real one.

// heardFrom notes a message from peer (already checked as a member).
func (c *Coordinator) heardFrom(now time.Time, peer gridmind.NodeID) {
	if c.heard == nil {
		c.heard = map[gridmind.NodeID]time.Time{}
	}
	if c.firstHeard.IsZero() {
		c.firstHeard = now
	}
	c.heard[peer] = now
}

// liveWindow is how recently a member must have been heard from to count
// as live: a few rounds' worth of the protocol's longest waits.
func (c *Coordinator) liveWindow() time.Duration {
	t := c.cfg.Timing
	return 2*t.MaxReadyWait + t.LeaderGrace + 2*t.MaxExchangeWait
}

// voice reports whether peer counts for the quorum and may vouch for a
// state: another member, not banned, not distrusted and not behind.
func (c *Coordinator) voice(peer gridmind.NodeID) bool {
	return c.trusted(peer) && !c.joining[peer]
}

// trusted reports whether peer is another member, neither banned nor
// distrusted.
func (c *Coordinator) trusted(peer gridmind.NodeID) bool {
	return peer != c.cfg.Self && c.banned[peer] == "" && !c.distrusted[peer]
}

// Behind is how many members said they are fetching a state (a "join"
// and no "done" since) and were heard from within the live window at now,
// banned and distrusted ones left out: a worker that finished the job
// serves the final state until as many fetches reached it (or a bound).
// A liar that claims to be behind keeps the finishers at most that bound.
func (c *Coordinator) Behind(now time.Time) int {
	n := 0
	for p := range c.joining {
		if at, ok := c.heard[p]; ok && c.allowed[p] && c.trusted(p) && now.Sub(at) <= c.liveWindow() {
			n++
		}
	}
	return n
}

// observeFirst is how long a worker listens before it trusts one member
// alone.
func (c *Coordinator) observeFirst() time.Duration { return c.cfg.Timing.MinReadyWait }

// quorum is how many live members must report a state before a syncing
// worker fetches it without waiting, at now.
func (c *Coordinator) quorum(now time.Time) int {
	live := 0
	for p, at := range c.heard {
		if c.allowed[p] && c.voice(p) && now.Sub(at) <= c.liveWindow() {
			live++
		}
	}
	q := live/2 + 1
	if q == 1 && now.Sub(c.firstHeard) < c.observeFirst() {
		q = 2 // one voice so far: listen a little longer
	}
	return q
}

// syncFallback is how long a syncing worker waits for a quorum.
func (c *Coordinator) syncFallback() time.Duration { return c.cfg.Timing.MaxReadyWait }

type syncCandidate struct {
	round uint64 // the round whose "done" named the state (the state is of round+1)
	hash  Hash
	peers []gridmind.NodeID // reporters, sorted
}

// syncCandidates lists the states the dones name that would move this
// worker: a later round than its own, or its own round with another hash.
func (c *Coordinator) syncCandidates() []syncCandidate {
	var out []syncCandidate
	for r, byPeer := range c.dones {
		if c.state != nil && r+1 < c.state.Round {
			continue
		}
		byHash := map[Hash][]gridmind.NodeID{}
		for p, h := range byPeer {
			if c.voice(p) {
				byHash[h] = append(byHash[h], p)
			}
		}
		for h, peers := range byHash {
			if c.state != nil && r+1 == c.state.Round && h == c.stateHash {
				continue
			}
			slices.Sort(peers)
			out = append(out, syncCandidate{round: r, hash: h, peers: peers})
		}
	}
	return out
}

// chooseFetch starts (or redirects) the fetch of the state a quorum
// reported, or after syncFallback the best-supported one; it does nothing
// while neither exists.
func (c *Coordinator) chooseFetch(now time.Time) {
	cands := c.syncCandidates()
	if len(cands) == 0 {
		return
	}
	if c.syncSince.IsZero() {
		c.syncSince = now
	}
	q := c.quorum(now)
	var best *syncCandidate
	for i := range cands {
		k := &cands[i]
		if len(k.peers) < q {
			continue
		}
		if best == nil || k.round > best.round || (k.round == best.round && lessHash(k.hash, best.hash)) {
			best = k
		}
	}
	if best == nil {
		if now.Sub(c.syncSince) < c.syncFallback() {
			return
		}
		for i := range cands {
			k := &cands[i]
			switch {
			case best == nil,
				len(k.peers) > len(best.peers),
				len(k.peers) == len(best.peers) && k.round < best.round,
				len(k.peers) == len(best.peers) && k.round == best.round && lessHash(k.hash, best.hash):
				best = k
			}
		}
	}
	if f := c.fetch; c.phase == PhaseFetching && f != nil && f.round == best.round+1 && f.hash == best.hash {
		for _, p := range best.peers {
			if !slices.Contains(f.peers, p) {
				f.peers = append(f.peers, p)
			}
		}
		return
	}
	c.startFetch(best.round+1, best.hash, best.peers)
}

func lessHash(a, b Hash) bool { return slices.Compare(a[:], b[:]) < 0 }
