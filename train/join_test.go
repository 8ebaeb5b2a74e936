package train

import (
	"slices"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// TestJoinMidRoundAfterDeath replays the whole-network incident: three
// workers on the default (internet) timing train short rounds, one of them
// dies around round 1, and a standby worker without state starts in the
// middle of round 2. Round 2 must not wait for the joiner, which cannot be
// ready for it, nor long for the dead worker, and the joiner must take part
// in round 3.
func TestJoinMidRoundAfterDeath(t *testing.T) {
	const trainFor = time.Second
	timing := DefaultTiming()
	// The longest round 2 may take: training, then at most the adaptive
	// ready wait (its floor, as rounds are short) or, for a dead leader, the
	// adaptive leader timeout, then the exchange.
	readyBound := trainFor + timing.MinReadyWait + time.Second
	leaderBound := trainFor + 2*timing.MinReadyWait + timing.LeaderGrace + time.Second
	tests := []struct {
		name string
		// victim indexes the sorted participants (0 leads round 0, 2 leads
		// round 2); -1 kills nobody.
		victim int
		// afterReady kills the victim as it sends its first part of round 1
		// (it was announced, but delivers nothing); otherwise it dies as it
		// finishes round 1 (its "done" is never sent).
		afterReady bool
		bound      time.Duration
	}{
		{"nobody dies", -1, false, readyBound},
		{"participant dies in round 1 after ready", 0, true, trainFor + time.Second},
		// A worker that dies between completing round 1 and saying "done"
		// also holds the others' "ready" once, for at most the exchange
		// wait: they wait for every done to see whether a reducer equivocated.
		{"participant dies after round 1", 0, false, readyBound + timing.MinExchangeWait},
		{"round 2 leader dies after round 1", 2, false, leaderBound + timing.MinExchangeWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, 3, 1, func(c *Config) { c.Timing = timing })
			for _, n := range cl.nodes {
				n.trainFor = trainFor
				if n.training != nil {
					n.trainDone = cl.now.Add(trainFor)
				}
			}
			joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
			parts := joiner.c.cfg.Workers
			parts = slices.DeleteFunc(slices.Clone(parts), func(id gridmind.NodeID) bool { return id == joiner.id })
			var victim gridmind.NodeID
			if tt.victim >= 0 {
				victim = parts[tt.victim]
				if got := LeaderOf(parts, 2, 0); (tt.victim == 2) != (got == victim) {
					t.Fatalf("test setup: round 2 is led by %s", got.Short())
				}
			}
			cl.onSend = func(m Message) {
				if m.From != victim || m.Round != 1 {
					return
				}
				if (tt.afterReady && m.Type == MsgPart) || (!tt.afterReady && m.Type == MsgDone) {
					cl.kill(victim)
				}
			}
			survivors := func(r uint64) func() bool {
				return func() bool {
					for _, n := range cl.nodes {
						if _, ok := n.completes[r]; !ok && n != joiner && n.id != victim {
							return false
						}
					}
					return true
				}
			}
			if !cl.runUntil(time.Minute, survivors(1)) {
				cl.dumpErrors()
				t.Fatal("round 1 did not complete")
			}
			if rc := cl.checkAgreement(1); tt.afterReady && !slices.Contains(rc.Participants, victim) {
				t.Fatalf("test setup: the victim was not announced in round 1 (%d participants)", len(rc.Participants))
			}
			round2 := cl.now
			// The joiner starts while the others train round 2.
			cl.runUntil(trainFor/2, func() bool { return false })
			cl.start(joiner.id)
			if !cl.runUntil(time.Minute, survivors(2)) {
				cl.dumpErrors()
				for _, n := range cl.nodes {
					t.Logf("%s dead %v phase %s round %d", n.id.Short(), n.dead, n.c.Phase(), n.c.Round())
				}
				t.Fatal("round 2 did not complete")
			}
			took := cl.now.Sub(round2)
			if took > tt.bound {
				t.Errorf("round 2 took %s of simulated time, want at most %s", took, tt.bound)
			}
			t.Logf("round 2 took %s of simulated time (bound %s)", took, tt.bound)
			rc := cl.checkAgreement(2)
			if slices.Contains(rc.Participants, joiner.id) || (victim != "" && slices.Contains(rc.Participants, victim)) {
				t.Errorf("round 2 participants %v include the joiner or the dead worker", rc.Participants)
			}
			joined := func() bool { _, ok := joiner.completes[3]; return ok && survivors(3)() }
			if !cl.runUntil(time.Minute, joined) {
				cl.dumpErrors()
				t.Fatalf("the joiner did not complete round 3 (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
			}
			if rc := cl.checkAgreement(3); !slices.Contains(rc.Participants, joiner.id) {
				t.Errorf("round 3 leaves out the joiner: %v", rc.Participants)
			}
			if len(joiner.excluded) > 0 {
				t.Errorf("the joiner was left out: %+v", joiner.excluded)
			}
		})
	}
}

// TestJoinerWhoseFetchFails: a joiner says it joins round 3 before it
// fetches θ_3 (so that the leader waits for it, as it is behind by the
// fetch); when that fetch fails, round 3 waits for it no longer than the
// ready wait, and the joiner joins round 4 instead.
func TestJoinerWhoseFetchFails(t *testing.T) {
	const trainFor = time.Second
	cl := newCluster(t, 3, 1, func(c *Config) { c.Timing = DefaultTiming() })
	for _, n := range cl.nodes {
		n.trainFor = trainFor
		if n.training != nil {
			n.trainDone = cl.now.Add(trainFor)
		}
	}
	joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
	failed := 0
	cl.failFetch = func(f FetchState) bool {
		if f.Round == 3 {
			failed++
			return true
		}
		return false
	}
	others := func(r uint64) func() bool {
		return func() bool {
			for _, n := range cl.nodes {
				if _, ok := n.completes[r]; !ok && n != joiner {
					return false
				}
			}
			return true
		}
	}
	if !cl.runUntil(time.Minute, others(1)) {
		t.Fatal("round 1 did not complete")
	}
	cl.runUntil(trainFor/2, func() bool { return false })
	cl.start(joiner.id)
	if !cl.runUntil(time.Minute, others(2)) {
		t.Fatal("round 2 did not complete")
	}
	round3 := cl.now
	if !cl.runUntil(time.Minute, others(3)) {
		t.Fatal("round 3 did not complete")
	}
	if took, bound := cl.now.Sub(round3), trainFor+DefaultTiming().MinReadyWait+time.Second; took > bound || failed == 0 {
		t.Errorf("round 3 took %s of simulated time, want at most %s (%d fetches failed)", took, bound, failed)
	}
	if rc := cl.checkAgreement(3); slices.Contains(rc.Participants, joiner.id) {
		t.Errorf("round 3 admitted the joiner, which has no state")
	}
	if !cl.runUntil(time.Minute, func() bool { _, ok := joiner.completes[4]; return ok && others(4)() }) {
		cl.dumpErrors()
		t.Fatalf("the joiner did not complete round 4 (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
	}
	if rc := cl.checkAgreement(4); !slices.Contains(rc.Participants, joiner.id) {
		t.Errorf("round 4 leaves out the joiner: %v", rc.Participants)
	}
}

// TestLateJoinStillLetsTheJoinerIn: when a joiner's "join" reaches the
// leader only after the announcement (training shorter than the hops
// "done" → joiner → leader, as with toy models on libp2p), the joiner
// misses that round; the next leader must then wait for it rather than let
// it lose the same race every round.
func TestLateJoinStillLetsTheJoinerIn(t *testing.T) {
	const trainFor = time.Second
	cl := newCluster(t, 3, 1, func(c *Config) { c.Timing = DefaultTiming() })
	for _, n := range cl.nodes {
		n.trainFor = trainFor
		if n.training != nil {
			n.trainDone = cl.now.Add(trainFor)
		}
	}
	joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
	joiner.trainFor = trainFor + 200*time.Millisecond // behind by its fetch
	// Every join arrives half a second after the others are ready.
	cl.late = func(m Message, to gridmind.NodeID) time.Duration {
		if m.Type == MsgJoin {
			return trainFor + 500*time.Millisecond
		}
		return 0
	}
	if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
		t.Fatal("round 1 did not complete")
	}
	cl.runUntil(trainFor/2, func() bool { return false })
	cl.start(joiner.id)
	// It starts in round 2, misses round 3 (its join comes late), and
	// must be in round 4.
	if !cl.runUntil(time.Minute, cl.allCompleted(4)) {
		cl.dumpErrors()
		t.Fatalf("the joiner did not complete round 4 (phase %s, round %d, left out %d times)", joiner.c.Phase(), joiner.c.Round(), len(joiner.excluded))
	}
	if rc := cl.checkAgreement(4); !slices.Contains(rc.Participants, joiner.id) {
		t.Errorf("round 4 leaves out the joiner: %v", rc.Participants)
	}
	if rc := cl.checkAgreement(3); slices.Contains(rc.Participants, joiner.id) || len(joiner.excluded) != 1 {
		t.Errorf("test setup: the joiner was in round 3 (%v) or left out %d times, want once", rc.Participants, len(joiner.excluded))
	}
}
