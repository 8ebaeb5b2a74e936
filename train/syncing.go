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
// reported it, preferring the newest such round: more than half of the
// job's other members (banned ones left out), or, when the rounds
// announced while it syncs have fewer participants (members crashed or
// left), more than half of the largest announced membership. A liar can
// only make that membership larger (its quorum harder to reach), never
// smaller. When no state has a quorum, the worker waits syncFallback after
// the first report and then takes the state most members reported, the
// oldest round on a tie: one liar then ties at best with one honest
// member, and a forged round ahead loses to the job's real one.

// quorum is how many members must report a state before a syncing worker
// fetches it without waiting.
func (c *Coordinator) quorum() int {
	n := 0
	for w := range c.allowed {
		if w != c.cfg.Self && c.banned[w] == "" {
			n++
		}
	}
	if c.syncAnnounced > 0 && c.syncAnnounced < n {
		n = c.syncAnnounced
	}
	return n/2 + 1
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
			if p != c.cfg.Self && c.banned[p] == "" {
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
	q := c.quorum()
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
