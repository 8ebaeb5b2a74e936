package train

import (
	"slices"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// Two members whose rounds take 1.6× as long as the others' are left out
// of the first round (nobody knows yet how slow they are), tell the job
// how much longer they needed, and are waited for from then on instead of
// being left out of every round and re-fetching the state each time.
func TestSteadilySlowerMembersAreWaitedFor(t *testing.T) {
	var cl *cluster
	timing := testTiming
	timing.MaxReadyWait = 30 * time.Second
	timing.MaxExchangeWait = 30 * time.Second
	cl = newCluster(t, 4, 0, func(c *Config) {
		c.Timing = timing
		self := c.Self
		c.TrainingLeft = func(round uint64) time.Duration {
			n := cl.byID[self]
			if n.training == nil || n.training.Round != round {
				return 0
			}
			return n.trainDone.Sub(cl.now)
		}
	})
	slow := cl.nodes[2:]
	for _, n := range slow {
		n.trainFor = 16 * time.Second
	}
	const rounds = 8
	if !cl.runUntil(20*time.Minute, cl.allCompleted(rounds-1)) {
		cl.dumpErrors()
		t.Fatalf("%d rounds did not complete", rounds)
	}
	withAll := 0
	for r := uint64(0); r < rounds; r++ {
		if len(cl.checkAgreement(r).Participants) == len(cl.nodes) {
			withAll++
		}
	}
	for _, n := range slow {
		t.Logf("%s left out %d times, fetched %d states", n.id.Short(), len(n.excluded), n.fetches)
	}
	if withAll < rounds-2 {
		t.Errorf("%d of %d rounds had every member; the slower pair was left out of the rest", withAll, rounds)
	}
	// The leaders' announcements say how long before the slower pair the
	// fast pair was ready (what elastic steps fill): about the 6 s their
	// training differs by, and nothing for the slowest.
	fast, r := cl.nodes[0], uint64(rounds-1)
	if ahead, ok := fast.c.ReadyAhead(r); !ok || ahead < 5*time.Second || ahead > 7*time.Second {
		t.Errorf("a fast member was ready %v (%v) before the last in round %d, want about 6 s", ahead, ok, r)
	}
	if ahead, ok := slow[0].c.ReadyAhead(r); !ok || ahead > time.Second {
		t.Errorf("a slow member was ready %v (%v) before the last, want about 0", ahead, ok)
	}
}

// runningCluster is a cluster of n workers that completed rounds 0 and 1.
func runningCluster(t *testing.T, n int) *cluster {
	t.Helper()
	cl := newCluster(t, n, 0, nil)
	if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
		t.Fatal("rounds 0-1 did not complete")
	}
	return cl
}

// A member that said it is fetching a state ("join") and has reported no
// round since is behind: it counts neither as a live member for the
// quorum nor as a voice for a state, so that a job whose other members
// all fell behind follows its one member still reporting rounds at once,
// instead of waiting out the sync fallback while that member goes on
// alone, and so that a liar claiming to be behind cannot shrink the
// quorum and still vote.
func TestMembersBehindNeitherCountNorVouch(t *testing.T) {
	cl := runningCluster(t, 4)
	w := cl.nodes[0]
	others := []gridmind.NodeID{cl.nodes[1].id, cl.nodes[2].id, cl.nodes[3].id}
	if q := w.c.quorum(cl.now); q != 2 {
		t.Fatalf("quorum %d with three live fellows, want 2", q)
	}
	now := cl.now.Add(time.Second)
	for _, id := range others[:2] {
		if err := w.c.Step(now, Message{Type: MsgJoin, From: id, Round: w.c.Round()}); err != nil {
			t.Fatal(err)
		}
	}
	if q := w.c.quorum(now); q != 1 {
		t.Errorf("quorum %d with two of three fellows behind, want 1 (the one still reporting)", q)
	}
	if b := w.c.Behind(now); b != 2 {
		t.Errorf("Behind %d with two fellows behind, want 2", b)
	}
	for _, k := range w.c.syncCandidates() {
		for _, id := range others[:2] {
			if slices.Contains(k.peers, id) {
				t.Errorf("%s, behind, still vouches for round %d's state", id.Short(), k.round)
			}
		}
	}
	// A round reported again makes a member count again.
	r := w.c.Round() - 1
	if err := w.c.Step(now, Message{Type: MsgDone, From: others[0], Round: r, StateHash: w.c.StateHash()}); err != nil {
		t.Fatal(err)
	}
	if q := w.c.quorum(now); q != 2 {
		t.Errorf("quorum %d after a member behind reported a round, want 2", q)
	}
	// Behind counts those still behind, for a finisher's linger: not the
	// one that reported again, not one distrusted, not one long silent.
	if b := w.c.Behind(now); b != 1 {
		t.Errorf("Behind %d with one member still behind, want 1", b)
	}
	if b := w.c.Behind(now.Add(w.c.liveWindow() + time.Second)); b != 0 {
		t.Errorf("Behind %d once the member behind was silent past the live window, want 0", b)
	}
	w.c.Distrust(others[1])
	if b := w.c.Behind(now); b != 0 {
		t.Errorf("Behind %d with the member behind distrusted, want 0", b)
	}
}

// A lag in a join widens the leader's ready wait, up to its own training
// time as the spread; a join without one does not.
func TestLagWidensTheReadyWait(t *testing.T) {
	cl := runningCluster(t, 3)
	w, other := cl.nodes[0], cl.nodes[1]
	before := w.c.readyWait()
	if err := w.c.Step(cl.now, Message{Type: MsgJoin, From: other.id, Round: w.c.Round()}); err != nil {
		t.Fatal(err)
	}
	if got := w.c.readyWait(); got != before {
		t.Errorf("a join without a lag moved the ready wait from %v to %v", before, got)
	}
	if err := w.c.Step(cl.now, Message{Type: MsgJoin, From: other.id, Round: w.c.Round(), Lag: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, want := w.c.readyWait(), 2*(before+4*time.Second); got != min(want, 2*time.Duration(w.c.trainTime.value), testTiming.MaxReadyWait) {
		t.Errorf("after a 4 s lag the ready wait is %v (was %v)", got, before)
	} else if got <= before {
		t.Errorf("a 4 s lag left the ready wait at %v", got)
	}
	if err := w.c.Step(cl.now, Message{Type: MsgJoin, From: other.id, Round: w.c.Round(), Lag: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := w.c.readyWait(); got > testTiming.MaxReadyWait {
		t.Errorf("an hour's lag made the ready wait %v, past MaxReadyWait %v", got, testTiming.MaxReadyWait)
	}
}

// A liar claims an hour's lag every round and never sends its "ready":
// every leader then waits for it as long as the lag lets it, but no longer
// than MaxReadyWait, honest rounds go on, and no honest worker is left
// out. The lag buys the liar nothing its silence did not: an expected
// member that never comes already costs each round the leader's wait.
func TestLiarsLagCostsAtMostTheReadyWait(t *testing.T) {
	cl := newCluster(t, 4, 0, nil)
	adv := cl.nodes[3]
	adv.tamper = func(m Message) []Message {
		switch m.Type {
		case MsgReady:
			return nil
		case MsgJoin:
			m.Lag = MaxLag
		}
		return []Message{m, {Type: MsgJoin, From: adv.id, Round: m.Round + 1, Lag: MaxLag}}
	}
	honest := cl.nodes[:3]
	const rounds = 6
	var at []time.Time
	for r := uint64(0); r < rounds; r++ {
		if !cl.runUntil(5*time.Minute, func() bool {
			for _, n := range honest {
				if _, ok := n.completes[r]; !ok {
					return false
				}
			}
			return true
		}) {
			cl.dumpErrors()
			t.Fatalf("round %d did not complete for the honest workers", r)
		}
		at = append(at, cl.now)
	}
	bound := honest[0].trainFor + testTiming.MaxReadyWait + testTiming.LeaderGrace + 2*testTiming.MaxExchangeWait
	for r := 1; r < rounds; r++ {
		if d := at[r].Sub(at[r-1]); d > bound {
			t.Errorf("round %d took %v, past %v (training, the longest ready wait, a leader's grace and two exchanges)", r, d, bound)
		}
	}
	for _, n := range honest {
		if len(n.excluded) > 0 {
			t.Errorf("%s, honest, was left out: %+v", n.id.Short(), n.excluded)
		}
		if w := n.c.readyWait(); w > testTiming.MaxReadyWait {
			t.Errorf("%s waits %v for readies, past MaxReadyWait %v", n.id.Short(), w, testTiming.MaxReadyWait)
		}
	}
	t.Logf("rounds ended at %v", at)
}
