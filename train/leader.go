package train

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
)

// This file holds membership: the leader's side (collect "ready", announce)
// and the worker's side (send "ready", take over from a silent leader,
// accept an announcement).

type leadKey struct {
	round   uint64
	attempt uint32
}

type leadRound struct {
	readies   map[gridmind.NodeID]Commitment
	readyAt   map[gridmind.NodeID]time.Time // when each ready (its latest commitment) arrived
	firstAt   time.Time
	lastAt    time.Time
	announced *Message
}

// maxLeads bounds the rounds a leader tracks at once.
const maxLeads = 64

func (c *Coordinator) onReady(now time.Time, m Message) error {
	key := leadKey{m.Round, m.Attempt}
	l := c.leads[key]
	if l == nil {
		if len(c.leads) >= maxLeads {
			c.pruneLeads(m.Round)
			if len(c.leads) >= maxLeads {
				return fmt.Errorf("%w: too many rounds in flight", ErrStale)
			}
		}
		l = &leadRound{readies: map[gridmind.NodeID]Commitment{}, readyAt: map[gridmind.NodeID]time.Time{}}
		c.leads[key] = l
		c.pruneLeads(m.Round)
		// A leader taking over a round whose membership it already knows
		// repeats that membership under its own attempt instead of starting a
		// competing all-reduce; the membership hash is the same, so nobody
		// restarts.
		if known, ok := c.knownMembership(m.Round); ok {
			a := known
			a.Attempt = m.Attempt
			l.announced = &a
		}
	}
	if l.announced != nil {
		// A late or repeated "ready": answer with the announcement, which may
		// have been lost, or tells the sender it was left out.
		a := *l.announced
		a.To = m.From
		c.send(a)
		return nil
	}
	// A worker that re-trained the round (a repaired previous round gave it
	// a new start) commits anew; the latest commitment stands.
	if prev, seen := l.readies[m.From]; !seen || prev.Start != m.StateHash || prev.Root != m.Root {
		// The commitment travels on in the announcement; a leader that
		// relayed a bad one would have its announcement refused by everyone.
		commit := Commitment{Worker: m.From, Round: m.Round, Start: m.StateHash, Root: m.Root,
			NumParams: c.cfg.NumParams, BlockSize: c.cfg.BlockSize, Codec: c.cfg.Codec, Sig: m.Sig}
		if err := commit.Verify(c.cfg.Job); err != nil {
			return fmt.Errorf("ready from %s: commitment: %w", m.From.Short(), err)
		}
		if len(l.readies) == 0 {
			l.firstAt = now
		}
		l.lastAt = now
		l.readies[m.From] = commit
		l.readyAt[m.From] = now
	}
	c.maybeAnnounce(now, key, l)
	return nil
}

func (c *Coordinator) onJoin(m Message) error {
	if m.From == c.cfg.Self {
		return nil
	}
	// A join for the round just gone still counts: its sender missed that
	// round and is joining this one (see expected).
	if c.state != nil && (m.Round+1 < c.state.Round || m.Round > c.state.Round+2) {
		return fmt.Errorf("%w: join for round %d at round %d", ErrStale, m.Round, c.state.Round)
	}
	j := c.joins[m.Round]
	if j == nil {
		j = map[gridmind.NodeID]bool{}
		c.joins[m.Round] = j
		for r := range c.joins {
			if r+3 < m.Round {
				delete(c.joins, r)
			}
		}
	}
	j[m.From] = true
	c.joining[m.From] = true
	if m.Lag > 0 {
		c.noteLag(m.Lag)
	}
	return nil
}

// noteLag widens this worker's ready wait, as a leader, for a member that
// was left out of a round lag before its training would have ended: that
// member's "ready" would have come lag after the wait ran out, so the
// spread of readies is taken to be at least the wait plus lag (readyWait
// waits twice the spread). A spread past this worker's own training time
// counts as that much: a member more than about twice as slow would hold
// every round to its pace, and is better left out. A liar's lag costs no
// more than its own late "ready" could: the wait is still bounded by
// MaxReadyWait, and it is waited out only while an expected member is
// missing.
func (c *Coordinator) noteLag(lag time.Duration) {
	limit := c.cfg.Timing.MaxReadyWait
	if c.trainTime.n > 0 {
		limit = time.Duration(c.trainTime.value)
	}
	c.spread.atLeast(min(c.readyWait()+lag, limit))
}

// ReadyAhead is how long before the round's last participant this
// worker's "ready" reached the leader, by the leader's announcement of
// round (Message.Offsets); false when this worker is not in that round's
// all-reduce (any more) or the announcement carries no offsets. It is
// the time a worker with elastic steps could have trained on, measured
// at the leader, so the announcement's trip back does not count.
func (c *Coordinator) ReadyAhead(round uint64) (time.Duration, bool) {
	a, ok := c.knownMembership(round)
	if !ok || len(a.Offsets) != len(a.Participants) {
		return 0, false
	}
	i := slices.Index(a.Participants, c.cfg.Self)
	if i < 0 {
		return 0, false
	}
	return time.Duration(slices.Max(a.Offsets)-a.Offsets[i]) * time.Millisecond, true
}

// knownMembership returns the announcement of round's all-reduce if this
// worker took part in it.
func (c *Coordinator) knownMembership(round uint64) (Message, bool) {
	if c.ar != nil && c.ar.round == round {
		return c.ar.announcement, true
	}
	if c.completed != nil && c.completed.round == round {
		return c.completed.announcement, true
	}
	return Message{}, false
}

func (c *Coordinator) pruneLeads(newest uint64) {
	for k := range c.leads {
		if k.round+3 < newest {
			delete(c.leads, k)
		}
	}
}

// expected is who the leader of key waits for: the previous round's
// participants, less those presumed dead (the leaders of earlier attempts,
// and the suspects of the previous round's all-reduce), plus workers that
// said they are joining this round. A worker that is not expected is still
// admitted if its "ready" comes in time.
func (c *Coordinator) expected(key leadKey) []gridmind.NodeID {
	var out []gridmind.NodeID
	if c.state != nil && c.state.Round == key.round {
		skip := map[gridmind.NodeID]bool{}
		for a := uint32(0); a < key.attempt && int(a) < len(c.state.Participants); a++ {
			skip[leaderOf(c.state.Participants, key.round, a)] = true
		}
		if done := c.completed; done != nil && done.round+1 == key.round && done.stateHash == c.stateHash {
			for _, p := range done.suspects {
				skip[p] = true
			}
		}
		for p := range c.banned {
			skip[p] = true
		}
		for _, p := range c.state.Participants {
			if !skip[p] {
				out = append(out, p)
			}
		}
	}
	// A joiner that asked for the previous round and missed it (its "join"
	// came after that round's announcement, as happens when training is
	// shorter than the two hops "done" → joiner → leader) is fetching this
	// round's state now: wait for it too, so that it does not lose that race
	// round after round. A joiner that died costs two rounds a ready wait.
	joining := []uint64{key.round}
	if key.round > 0 {
		joining = append(joining, key.round-1)
	}
	for _, r := range joining {
		for p := range c.joins[r] {
			if c.allowed[p] && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func (c *Coordinator) readyWait() time.Duration {
	t := c.cfg.Timing
	w := t.MinReadyWait
	if c.trainTime.n > 0 {
		w = max(w, time.Duration(t.ReadySlack*c.trainTime.value))
	}
	if c.spread.n > 0 {
		w = max(w, time.Duration(2*c.spread.value))
	}
	return clampDuration(w, t.MinReadyWait, t.MaxReadyWait)
}

// trainingLeft estimates how much longer this worker's training of the
// current round needs: the driver's word (Config.TrainingLeft) or, without
// it, the rest of its usual training time.
func (c *Coordinator) trainingLeft(now time.Time) time.Duration {
	if f := c.cfg.TrainingLeft; f != nil && c.state != nil {
		if d := f(c.state.Round); d > 0 {
			return d
		}
	}
	if c.trainTime.n > 0 && !c.trainStart.IsZero() {
		return max(0, c.trainStart.Add(time.Duration(c.trainTime.value)).Sub(now))
	}
	return 0
}

// leaderTimeout is how long a worker waits for the leader's announcement
// before trying the next leader. A live leader announces at most its
// readyWait after the first "ready" it got (or after it reached the round,
// if it got there later); this worker's estimate of that wait comes from
// its own observations, so twice it plus a grace covers a live leader and a
// dead one costs seconds, not MaxReadyWait. A leader whose wait is much
// longer (it trains much slower, or saw a spread this worker did not) may
// be overtaken; that is safe, only wasteful: its announcement is still
// accepted, and a later leader's membership wins.
func (c *Coordinator) leaderTimeout() time.Duration {
	t := c.cfg.Timing
	return min(t.MaxReadyWait, 2*c.readyWait()) + t.LeaderGrace
}

func (c *Coordinator) maybeAnnounce(now time.Time, key leadKey, l *leadRound) {
	if l.announced != nil || len(l.readies) == 0 {
		return
	}
	// A leader that is not yet at this round (it is still finishing the
	// previous one, or re-synchronizing) does not know whom to expect and
	// cannot take part itself, so it does not announce a partial list; if
	// it never gets there, the others turn to the next leader.
	if c.state == nil || c.state.Round < key.round {
		return
	}
	start, all := l.firstAt, false
	if c.state.Round == key.round {
		// A leader that reached the round after the first "ready" (it was
		// recovering a lost part of the previous one) counts the wait from
		// its arrival, so that its own "ready" can still make it.
		if c.trainStart.After(start) {
			start = c.trainStart
		}
		all = true
		for _, p := range c.expected(key) {
			if _, ok := l.readies[p]; !ok {
				all = false
				break
			}
		}
	}
	if !all && now.Before(start.Add(c.readyWait())) {
		return
	}
	if all {
		c.spread.observe(l.lastAt.Sub(start)) // a deadline-cut round says nothing about the spread
	}
	// Admit the workers that hold the state most of them hold; a worker
	// with another state diverged and re-synchronizes. Workers excluded
	// from the job are not admitted; one rejected once is (the screen
	// drops its contribution again if it deserves it, and a second
	// rejection excludes it), so that one false verdict costs an honest
	// worker one round's pay, not the job.
	starts := map[gridmind.NodeID]Hash{}
	for p, commit := range l.readies {
		if _, banned := c.banned[p]; !banned {
			starts[p] = commit.Start
		}
	}
	if len(starts) == 0 {
		return
	}
	state, participants := majorityHash(starts)
	a := Message{Type: MsgAnnounce, Round: key.round, Attempt: key.attempt, Participants: participants, StateHash: state}
	for _, p := range participants {
		a.Roots = append(a.Roots, l.readies[p].Root)
		a.RootSigs = append(a.RootSigs, l.readies[p].Sig)
		a.Offsets = append(a.Offsets, uint32(min(max(l.readyAt[p].Sub(l.firstAt), 0), MaxLag).Milliseconds()))
	}
	l.announced = &a
	c.send(a)
}

func (c *Coordinator) tickLeader(now time.Time) {
	keys := make([]leadKey, 0, len(c.leads))
	for k, l := range c.leads {
		if l.announced == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b leadKey) int {
		return cmp.Or(cmp.Compare(a.round, b.round), cmp.Compare(a.attempt, b.attempt))
	})
	for _, k := range keys {
		c.maybeAnnounce(now, k, c.leads[k])
	}
}

// sendReady tells the leader of the current attempt that this worker's
// pseudo-gradient is ready.
func (c *Coordinator) sendReady(now time.Time) {
	leader := leaderOf(c.state.Participants, c.state.Round, c.readyAttempt)
	c.send(Message{Type: MsgReady, To: leader, Round: c.state.Round, Attempt: c.readyAttempt, StateHash: c.stateHash,
		Root: c.commitment.Root, Sig: c.commitment.Sig})
	c.lastReadySent = now
}

func (c *Coordinator) tickReady(now time.Time) {
	t := c.cfg.Timing
	if c.holdReady {
		c.maybeReleaseReady(now)
		return
	}
	switch {
	case now.Sub(c.attemptStart) >= c.leaderTimeout():
		c.readyAttempt++
		if int(c.readyAttempt) >= 2*len(c.state.Participants) {
			c.exclude(now, c.state.Round, "no leader answered")
			return
		}
		c.attemptStart = now
		c.sendReady(now)
	case now.Sub(c.lastReadySent) >= t.ResendEvery:
		c.sendReady(now)
	}
}

func (c *Coordinator) onAnnounce(now time.Time, m Message) error {
	if c.state == nil || c.phase == PhaseSyncing || c.phase == PhaseFetching {
		return nil // a worker without a usable state learns what to fetch from "done"
	}
	r := c.state.Round
	if m.Round < r {
		return fmt.Errorf("%w: announcement for round %d at round %d", ErrStale, m.Round, r)
	}
	if m.Round > r {
		c.exclude(now, r, fmt.Sprintf("round %d was announced while this worker is at round %d", m.Round, r))
		return nil
	}
	if want := leaderOf(c.state.Participants, m.Round, m.Attempt); m.From != want {
		return fmt.Errorf("train: announcement for round %d attempt %d from %s, whose leader is %s", m.Round, m.Attempt, m.From.Short(), want.Short())
	}
	if len(m.Participants) == 0 || !slices.IsSorted(m.Participants) || len(slices.Compact(slices.Clone(m.Participants))) != len(m.Participants) {
		return fmt.Errorf("train: announcement for round %d has an empty or unsorted participant list", m.Round)
	}
	for _, p := range m.Participants {
		if !c.allowed[p] {
			return fmt.Errorf("%w: announced participant %s", ErrUnknownSender, p.Short())
		}
	}
	if len(m.Roots) != len(m.Participants) {
		return fmt.Errorf("train: announcement for round %d carries %d commitments for %d participants", m.Round, len(m.Roots), len(m.Participants))
	}
	for i, p := range m.Participants {
		commit := Commitment{Worker: p, Round: m.Round, Start: m.StateHash, Root: m.Roots[i],
			NumParams: c.cfg.NumParams, BlockSize: c.cfg.BlockSize, Codec: c.cfg.Codec, Sig: m.RootSigs[i]}
		if err := commit.Verify(c.cfg.Job); err != nil {
			return fmt.Errorf("train: announcement for round %d from %s: commitment of %s: %w", m.Round, m.From.Short(), p.Short(), err)
		}
	}
	membership := MembershipHash(m.Round, m.StateHash, m.Participants, m.Roots)
	admitted := slices.Contains(m.Participants, c.cfg.Self)
	switch c.phase {
	case PhaseTraining:
		c.excludeLate(now, r, "the round went ahead while this worker was still training", c.trainingLeft(now))
	case PhaseReady:
		switch {
		case m.StateHash != c.stateHash:
			c.exclude(now, r, "this worker's state differs from the majority's")
		case !admitted:
			c.exclude(now, r, "the leader did not admit this worker")
		case m.Roots[slices.Index(m.Participants, c.cfg.Self)] != c.commitment.Root:
			c.exclude(now, r, "the announcement carries an older commitment of this worker")
		default:
			c.startAllReduce(now, m, membership)
		}
	case PhaseReducing:
		if membership == c.ar.membership || m.Attempt <= c.ar.attempt {
			return nil
		}
		// A later leader's membership wins over an earlier one's.
		if m.StateHash != c.stateHash || !admitted || m.Roots[slices.Index(m.Participants, c.cfg.Self)] != c.commitment.Root {
			c.exclude(now, r, "a takeover leader left this worker out")
			return nil
		}
		c.startAllReduce(now, m, membership)
	}
	return nil
}
