package train

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A member that lies to a joiner about the job's state — a "done" naming a
// forged state as the round's result, sent before the round has even
// finished, and that forged state served when asked — must not put the
// joiner on it: the joiner ends on the honest workers' θ and takes part in
// their rounds.
func TestJoinerIsNotLedOntoAForgedState(t *testing.T) {
	for _, ahead := range []uint64{0, 10} {
		t.Run(fmt.Sprintf("ahead %d", ahead), func(t *testing.T) { joinerFacesForgedStates(t, ahead) })
	}
}

func joinerFacesForgedStates(t *testing.T, ahead uint64) {
	cl := newCluster(t, 4, 1, nil)
	joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
	var adv *simNode
	for _, n := range cl.nodes {
		if n != joiner {
			adv = n // the last starting worker in sorted order
		}
	}
	forged := map[Hash]*GlobalState{}
	lies := 0
	adv.tamper = func(m Message) []Message {
		out := []Message{m}
		if m.Type != MsgReady || adv.c.State() == nil {
			return out
		}
		// As soon as it is ready for round r, it tells the joiner that
		// round r is done and produced a state with θ = 0.
		st := adv.c.State().Clone()
		clear(st.Theta)
		st.Round = m.Round + 1 + ahead
		h := st.Hash()
		forged[h] = st
		lies++
		return append(out, Message{Type: MsgDone, From: adv.id, To: joiner.id, Round: st.Round - 1, StateHash: h, ThetaHash: HashTheta(st.Theta)})
	}
	adv.serveState = func(f FetchState) *GlobalState {
		if st := forged[f.StateHash]; st != nil {
			return st.Clone()
		}
		return adv.c.StateFor(f.Round, f.StateHash)
	}
	if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
		t.Fatal("rounds 0-1 did not complete")
	}
	cl.start(joiner.id)
	if !cl.runUntil(3*time.Minute, cl.allCompleted(6)) {
		cl.dumpErrors()
		t.Fatalf("the joiner did not finish round 6 (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
	}
	t.Logf("lies %d, joiner fetches %d, errors %v", lies, joiner.fetches, cl.errors)
	if lies == 0 {
		t.Fatal("the adversary told no lie")
	}
	for r := uint64(4); r <= 6; r++ {
		rc := cl.checkAgreement(r) // every live worker, the joiner included, holds one θ
		if !slices.Contains(rc.Participants, joiner.id) {
			t.Errorf("round %d leaves out the joiner", r)
		}
	}
	if _, ok := forged[joiner.c.StateHash()]; ok {
		t.Error("the joiner holds the forged state")
	}
}

// With half the job's members gone the quorum counts the live ones: the
// joiner still joins.
func TestJoinerJoinsWhenNoQuorumIsLeft(t *testing.T) {
	cl := newCluster(t, 4, 1, nil)
	joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
	if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
		t.Fatal("rounds 0-1 did not complete")
	}
	var gone []*simNode
	for _, n := range cl.nodes {
		if n != joiner && len(gone) < 2 {
			gone = append(gone, n)
			cl.kill(n.id)
		}
	}
	cl.start(joiner.id)
	if !cl.runUntil(3*time.Minute, func() bool { return len(joiner.completes) >= 2 }) {
		cl.dumpErrors()
		for _, n := range cl.nodes {
			t.Logf("%s dead %v round %d phase %s completes %d fetches %d excluded %+v", n.id.Short(), n.dead, n.c.Round(), n.c.Phase(), len(n.completes), n.fetches, n.excluded)
		}
		t.Fatalf("the joiner did not take part in 2 rounds (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
	}
	if q := joiner.c.quorum(cl.now); q != 2 {
		t.Errorf("quorum %d, want both live members of the joiner's 4 fellows", q)
	}
	for r := range joiner.completes {
		rc := cl.checkAgreement(r)
		if !slices.Contains(rc.Participants, joiner.id) {
			t.Errorf("round %d leaves out the joiner", r)
		}
	}
}

// A job down to one live worker (the others crashed or were excluded) is
// still joined: one voice is trusted after the joiner has listened for
// observeFirst.
func TestJoinerJoinsTheLastWorker(t *testing.T) {
	cl := newCluster(t, 3, 1, nil)
	joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
	if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
		t.Fatal("rounds 0-1 did not complete")
	}
	killed := 0
	for _, n := range cl.nodes {
		if n != joiner && killed < 2 {
			cl.kill(n.id)
			killed++
		}
	}
	cl.start(joiner.id)
	if !cl.runUntil(3*time.Minute, func() bool { return len(joiner.completes) >= 2 }) {
		cl.dumpErrors()
		t.Fatalf("the joiner did not take part in 2 rounds (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
	}
	for r := range joiner.completes {
		rc := cl.checkAgreement(r)
		if !slices.Contains(rc.Participants, joiner.id) {
			t.Errorf("round %d leaves out the joiner", r)
		}
	}
}

// A peer banned on outside evidence (Distrust) counts neither as a live
// member nor as a voice for a state.
func TestDistrustedPeerCountsForNoQuorum(t *testing.T) {
	cl := runningCluster(t, 3)
	w, other := cl.nodes[0], cl.nodes[1]
	if q := w.c.quorum(cl.now); q != 2 {
		t.Fatalf("quorum %d with two live fellows, want 2", q)
	}
	w.c.Distrust(other.id)
	if q := w.c.quorum(cl.now); q != 1 {
		t.Errorf("quorum %d after distrusting one of two fellows, want 1", q)
	}
	for _, k := range w.c.syncCandidates() {
		if slices.Contains(k.peers, other.id) {
			t.Errorf("the distrusted peer still vouches for round %d's state", k.round)
		}
	}
}
