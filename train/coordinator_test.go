package train

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// referenceStep computes what a round must produce with the float32 codec
// and the mean: the outer step on the mean pseudo-gradient, summed in
// participant order.
func referenceStep(t *testing.T, s *GlobalState, locals map[gridmind.NodeID][]float32, participants []gridmind.NodeID) *GlobalState {
	t.Helper()
	var deltas [][]float32
	for _, p := range participants {
		d, err := PseudoGradient(s.Theta, locals[p])
		if err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, d)
	}
	mean := make([]float32, len(s.Theta))
	if err := (Mean{}).Combine(mean, deltas); err != nil {
		t.Fatal(err)
	}
	next := s.Clone()
	if err := DefaultOuter().Step(next.Theta, next.Velocity, mean); err != nil {
		t.Fatal(err)
	}
	next.Round++
	next.Participants = participants
	return next
}

func TestRoundsAgreeAndMatchReference(t *testing.T) {
	cl := newCluster(t, 4, 0, func(c *Config) { c.Codec = CodecFloat32 })
	prev := cl.nodes[0].c.State()
	for r := uint64(0); r < 5; r++ {
		if !cl.runUntil(time.Minute, cl.allCompleted(r)) {
			cl.dumpErrors()
			t.Fatalf("round %d did not complete", r)
		}
		rc := cl.checkAgreement(r)
		locals := map[gridmind.NodeID][]float32{}
		for _, n := range cl.nodes {
			locals[n.id] = n.fakeLocal(prev.Theta)
		}
		want := referenceStep(t, prev, locals, cl.ids())
		if rc.StateHash != want.Hash() {
			t.Fatalf("round %d: state %s, reference %s", r, rc.StateHash.Short(), want.Hash().Short())
		}
		if !slices.Equal(rc.Participants, cl.ids()) || rc.Attempt != 0 {
			t.Errorf("round %d: participants %d, attempt %d", r, len(rc.Participants), rc.Attempt)
		}
		for j, c := range rc.Contributors {
			if len(c) != 4 {
				t.Errorf("round %d part %d: %d contributors", r, j, len(c))
			}
		}
		if want, got := LeaderOf(cl.ids(), r, 0), rc.Leader; got != want {
			t.Errorf("round %d led by %s, want %s", r, got.Short(), want.Short())
		}
		prev = rc.State
	}
	if len(cl.errors) > 0 {
		cl.dumpErrors()
		t.Error("unexpected errors in a clean run")
	}
}

func TestQuantizedRoundsConvergeTowardsMeanTarget(t *testing.T) {
	payloadBytes := map[Codec]int{}
	forEachCodec(t, func(t *testing.T, codec Codec) {
		if codec.IsTopK() {
			t.Skip("top-k converges to a noise floor instead: TestTopKRoundsConverge")
		}
		cl := newCluster(t, 4, 0, withCodec(codec))
		wrongCodec := 0
		cl.onSend = func(m Message) {
			if m.Bulk() && len(m.Payload) > 0 && Codec(m.Payload[0]) != codec {
				wrongCodec++
			}
			payloadBytes[codec] += len(m.Payload)
		}
		meanTarget := make([]float32, 1000)
		_ = Mean{}.Combine(meanTarget, [][]float32{cl.nodes[0].target, cl.nodes[1].target, cl.nodes[2].target, cl.nodes[3].target})
		dist := func(theta []float32) float64 {
			var s float64
			for i := range theta {
				d := float64(theta[i] - meanTarget[i])
				s += d * d
			}
			return math.Sqrt(s)
		}
		start := dist(cl.nodes[0].c.State().Theta)
		const rounds = 30
		if !cl.runUntil(10*time.Minute, cl.allCompleted(rounds-1)) {
			t.Fatal("rounds did not complete")
		}
		for r := uint64(0); r < rounds; r++ {
			cl.checkAgreement(r)
		}
		end := dist(cl.nodes[0].completes[rounds-1].State.Theta)
		if end > start/20 {
			t.Errorf("distance to the mean target went from %.3f to %.3f; want a 20× drop", start, end)
		}
		if wrongCodec > 0 {
			t.Errorf("%d parts or results travelled in another codec than %s", wrongCodec, codec)
		}
		// int8 sends about a quarter of float32's bytes: checked in the diloco tests.
	})
	// Same rounds, same messages: int4 parts and results are half the values'
	// bytes plus the same scales and headers (0.55 of int8 with blocks of 64).
	if int8, int4 := payloadBytes[CodecInt8], payloadBytes[CodecInt4]; int8 == 0 || float64(int4) > 0.56*float64(int8) {
		t.Errorf("bulk payloads: int4 %d bytes, int8 %d; want int4 ≤ 0.56 of int8", int4, int8)
	}
}

// TestInt4ReducerFeedbackTracksTheSum: every worker sends the same
// pseudo-gradient d_i each round (plain averaging, lr 1, no momentum), so
// after r rounds θ must be θ_0 − r·mean(d) exactly in float32 arithmetic.
// In each block one element is 1 and the others are small and differ
// between workers, so their mean falls between the points of the int4
// grid (1/7 apart) that the combined part is requantized to. The workers'
// and the reducers' error feedback keep the drift from the exact sum
// within a couple of steps however many rounds pass; requantizing the mean
// without the reducer's feedback would lose about half a step of mean(d)
// per element every round.
func TestInt4ReducerFeedbackTracksTheSum(t *testing.T) {
	const n, rounds, blockSize = 1000, 40, 64
	cl := newCluster(t, 4, 0, func(c *Config) {
		c.Codec, c.Outer = CodecInt4, Nesterov{LR: 1}
	})
	mean := make([]float64, n)
	for w, node := range cl.nodes {
		d := make([]float32, n)
		for i := range d {
			d[i] = 0.02 * float32(w+1) // the mean, 0.05, is 0.35 of an int4 step
			if i%blockSize == 0 {
				d[i] = 1
			}
			mean[i] += float64(d[i]) / 4
		}
		node.local = func(theta []float32) []float32 {
			out := slices.Clone(theta)
			for i := range out {
				out[i] -= d[i]
			}
			return out
		}
	}
	theta0 := slices.Clone(cl.nodes[0].c.State().Theta)
	if !cl.runUntil(30*time.Minute, cl.allCompleted(rounds-1)) {
		cl.dumpErrors()
		t.Fatal("rounds did not complete")
	}
	for _, r := range []uint64{4, rounds - 1} {
		theta := cl.checkAgreement(r).State.Theta
		var worst float64
		for i := range theta {
			moved := float64(theta0[i]) - float64(theta[i])
			worst = max(worst, math.Abs(moved-float64(r+1)*mean[i]))
		}
		t.Logf("after %d rounds: worst drift %.4f", r+1, worst)
		// Two int4 steps of a block whose largest element is 1, with room
		// for the float32 rounding of θ over the rounds.
		if limit := 2.0/7 + 1e-3; worst > limit {
			t.Errorf("after %d rounds θ is up to %.4f away from θ_0 − r·mean(d), want ≤ %.4f", r+1, worst, limit)
		}
	}
}

// TestStepByStep drives two workers by hand and checks every message.
func TestStepByStep(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		ids := testIDs(300, 2)
		slices.Sort(ids)
		a, b := ids[0], ids[1] // a leads round 0
		st, _ := NewGlobalState(make([]float32, 8), ids)
		now := time.Unix(100, 0)
		mk := func(self gridmind.NodeID) *Coordinator {
			c, err := NewCoordinator(Config{Self: self, Key: testKey(self), Job: testJob, Workers: ids, Initial: st, NumParams: 8, BlockSize: 4, Codec: codec, Timing: testTiming})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		ca, cb := mk(a), mk(b)
		expect := func(c *Coordinator, want ...string) []Message {
			t.Helper()
			out := c.Outputs()
			var got []string
			for _, m := range out.Messages {
				to := "all"
				if m.To == a {
					to = "a"
				} else if m.To == b {
					to = "b"
				}
				got = append(got, m.Type.String()+"→"+to)
			}
			for _, act := range out.Actions {
				switch act.(type) {
				case Train:
					got = append(got, "Train")
				case RoundComplete:
					got = append(got, "RoundComplete")
				default:
					got = append(got, "other action")
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s outputs %v, want %v", c.Self().Short(), got, want)
			}
			return out.Messages
		}
		deliver := func(to *Coordinator, msgs []Message) {
			t.Helper()
			for _, m := range msgs {
				if err := to.Step(now, m); err != nil {
					t.Fatal(err)
				}
			}
		}
		expect(ca, "Train")
		expect(cb, "Train")
		local := []float32{-1, -1, -1, -1, 1, 1, 1, 1}

		// a is leader: its "ready" stays inside; it waits for b.
		if err := ca.TrainingDone(now, 0, local); err != nil {
			t.Fatal(err)
		}
		expect(ca)
		if ca.Phase() != PhaseReady {
			t.Fatalf("a is %s, want ready", ca.Phase())
		}
		if err := cb.TrainingDone(now, 0, local); err != nil {
			t.Fatal(err)
		}
		ready := expect(cb, "ready→a")
		// With every expected worker ready, a announces and sends b its part.
		deliver(ca, ready)
		fromA := expect(ca, "announce→all", "part→b")
		if ann := fromA[0]; !slices.Equal(ann.Participants, ids) || ann.StateHash != st.Hash() {
			t.Fatalf("announcement %+v", ann)
		}
		deliver(cb, fromA[:1])
		partForA := expect(cb, "part→a")
		deliver(cb, fromA[1:])
		reducedForA := expect(cb, "reduced→a")
		if got := reducedForA[0].Contributors; !slices.Equal(got, ids) {
			t.Fatalf("contributors %v", got)
		}
		deliver(ca, partForA)
		reducedForB := expect(ca, "reduced→b")
		deliver(ca, reducedForA)
		doneA := expect(ca, "done→all", "RoundComplete", "Train")
		deliver(cb, reducedForB)
		doneB := expect(cb, "done→all", "RoundComplete", "Train")
		if doneA[0].StateHash != doneB[0].StateHash || doneA[0].ThetaHash != doneB[0].ThetaHash {
			t.Fatal("the two workers disagree")
		}
		if ca.Round() != 1 || cb.Round() != 1 || ca.Phase() != PhaseTraining {
			t.Fatalf("after round 0: a at %d (%s), b at %d", ca.Round(), ca.Phase(), cb.Round())
		}
		// θ moved against the pseudo-gradient (θ − local = [1,1,1,1,-1,-1,-1,-1]).
		th := ca.State().Theta
		if !(th[0] < 0 && th[7] > 0) {
			t.Errorf("θ after one round: %v", th)
		}
		deliver(cb, doneA)
		deliver(ca, doneB)
		expect(ca)
		expect(cb)
	})
}

func TestLostAnnouncementIsRecovered(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		victim := cl.nodes[2].id
		lost := 0
		cl.drop = func(m Message, to gridmind.NodeID) bool {
			if m.Type == MsgAnnounce && m.Round == 1 && to == victim && lost == 0 {
				lost++
				return true
			}
			return false
		}
		if !cl.runUntil(2*time.Minute, cl.allCompleted(2)) {
			cl.dumpErrors()
			t.Fatal("rounds did not complete")
		}
		rc := cl.checkAgreement(1)
		if lost != 1 || len(rc.Participants) != 4 || len(cl.byID[victim].excluded) != 0 {
			t.Errorf("lost %d announcements; round 1 had %d participants; victim excluded %d times", lost, len(rc.Participants), len(cl.byID[victim].excluded))
		}
	})
}

func TestLostPartsAndResultsAreRecovered(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		// Round 1: one part to its reducer and one combined part to a
		// participant are lost.
		var droppedPart, droppedResult bool
		cl.drop = func(m Message, to gridmind.NodeID) bool {
			if m.Round != 1 {
				return false
			}
			if m.Type == MsgPart && !droppedPart {
				droppedPart = true
				return true
			}
			if m.Type == MsgReduced && !droppedResult {
				droppedResult = true
				return true
			}
			return false
		}
		if !cl.runUntil(2*time.Minute, cl.allCompleted(3)) {
			cl.dumpErrors()
			t.Fatal("rounds did not complete")
		}
		for r := uint64(0); r <= 3; r++ {
			rc := cl.checkAgreement(r)
			if len(rc.Participants) != 4 {
				t.Errorf("round %d: %d participants", r, len(rc.Participants))
			}
		}
		rc := cl.checkAgreement(1)
		short := 0
		for _, c := range rc.Contributors {
			if len(c) < 4 {
				short++
			}
		}
		if !droppedPart || !droppedResult || short != 1 {
			t.Errorf("dropped part %v result %v; %d parts short of a contributor, want 1", droppedPart, droppedResult, short)
		}
	})
}

func TestKilledMidRoundPartIsTakenOver(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		victim := cl.nodes[3]
		// In round 2 the victim delivers its part to the first reducer only, then dies.
		cl.onSend = func(m Message) {
			if m.From == victim.id && m.Type == MsgPart && m.Round == 2 {
				if m.To != cl.nodes[0].id {
					cl.kill(victim.id)
				}
			}
		}
		if !cl.runUntil(time.Minute, cl.allCompleted(2)) {
			cl.dumpErrors()
			t.Fatal("round 2 did not complete without the victim")
		}
		rc := cl.checkAgreement(2)
		if len(rc.Participants) != 4 {
			t.Fatalf("round 2 announced %d participants, want 4 (the victim died after)", len(rc.Participants))
		}
		// Part 0 got the victim's contribution; the victim's own part (3) was
		// reduced by the next participant without it.
		if got := len(rc.Contributors[0]); got != 4 {
			t.Errorf("part 0 has %d contributors, want 4", got)
		}
		for j := 1; j < 4; j++ {
			if slices.Contains(rc.Contributors[j], victim.id) {
				t.Errorf("part %d credits the dead victim", j)
			}
		}
		// The next round leaves the victim out and the job goes on.
		if !cl.runUntil(time.Minute, cl.allCompleted(4)) {
			t.Fatal("rounds after the death did not complete")
		}
		if rc := cl.checkAgreement(3); len(rc.Participants) != 3 {
			t.Errorf("round 3 has %d participants, want 3", len(rc.Participants))
		}
	})
}

func TestSilentLeaderIsTakenOver(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		if !cl.runUntil(time.Minute, cl.allCompleted(0)) {
			t.Fatal("round 0 did not complete")
		}
		leader := LeaderOf(cl.ids(), 1, 0)
		cl.kill(leader)
		if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
			cl.dumpErrors()
			t.Fatal("round 1 did not complete after its leader died")
		}
		rc := cl.checkAgreement(1)
		if rc.Attempt != 1 || rc.Leader != LeaderOf(cl.ids(), 1, 1) || len(rc.Participants) != 3 || slices.Contains(rc.Participants, leader) {
			t.Errorf("round 1: attempt %d, leader %s, %d participants", rc.Attempt, rc.Leader.Short(), len(rc.Participants))
		}
	})
}

func TestJoinerCatchesUpByHash(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 3, 1, withCodec(codec))
		joiner := cl.nodes[slices.IndexFunc(cl.nodes, func(n *simNode) bool { return n.dead })]
		if !cl.runUntil(time.Minute, cl.allCompleted(1)) {
			t.Fatal("rounds 0-1 did not complete")
		}
		cl.start(joiner.id)
		if !cl.runUntil(2*time.Minute, cl.allCompleted(5)) {
			cl.dumpErrors()
			t.Fatalf("the joiner did not finish round 5 (phase %s, round %d)", joiner.c.Phase(), joiner.c.Round())
		}
		if joiner.fetches == 0 {
			t.Error("the joiner never fetched the state")
		}
		first := uint64(math.MaxUint64)
		for r := range joiner.completes {
			first = min(first, r)
		}
		for r := first; r <= 5; r++ {
			rc := cl.checkAgreement(r)
			if !slices.Contains(rc.Participants, joiner.id) {
				t.Errorf("round %d leaves out the joiner", r)
			}
		}
		if first > 3 {
			t.Errorf("the joiner first took part in round %d; it started after round 1", first)
		}
	})
}

func TestStragglerIsLeftOutAndRejoins(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		slow := cl.nodes[1]
		if !cl.runUntil(time.Minute, cl.allCompleted(0)) {
			t.Fatal("round 0 did not complete")
		}
		slow.trainDone = slow.trainDone.Add(20 * time.Second) // far past any ready deadline
		others := func() bool {
			for _, n := range cl.nodes {
				if _, ok := n.completes[1]; n != slow && !ok {
					return false
				}
			}
			return true
		}
		if !cl.runUntil(25*time.Second, others) {
			cl.dumpErrors()
			t.Fatal("round 1 waited for the straggler")
		}
		if rc := cl.checkAgreement(1); len(rc.Participants) != 3 || len(slow.excluded) == 0 {
			t.Errorf("round 1: %d participants, straggler excluded %d times", len(rc.Participants), len(slow.excluded))
		}
		if !cl.runUntil(3*time.Minute, func() bool { _, ok := slow.completes[4]; return ok && cl.allCompleted(4)() }) {
			t.Fatalf("the straggler did not rejoin (phase %s round %d)", slow.c.Phase(), slow.c.Round())
		}
		cl.checkAgreement(4)
	})
}

func TestDivergedWorkerIsOutvotedAndResyncs(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 4, 0, withCodec(codec))
		odd := cl.nodes[2]
		// The odd worker starts from other weights: its ready carries another hash.
		other, _ := NewGlobalState(make([]float32, 1000), cl.ids())
		var err error
		odd.c, err = NewCoordinator(Config{Self: odd.id, Key: testKey(odd.id), Job: testJob, Workers: cl.ids(), Initial: other, NumParams: 1000, BlockSize: 64, Codec: codec, Timing: testTiming})
		if err != nil {
			t.Fatal(err)
		}
		odd.completes = map[uint64]RoundComplete{}
		odd.training = nil
		cl.collect(odd)
		if !cl.runUntil(2*time.Minute, cl.allCompleted(3)) {
			cl.dumpErrors()
			t.Fatal("rounds did not complete")
		}
		if rc := cl.checkAgreement(0); len(rc.Participants) != 3 || slices.Contains(rc.Participants, odd.id) {
			t.Errorf("round 0 admitted the diverged worker")
		}
		if len(odd.excluded) == 0 || odd.fetches == 0 {
			t.Errorf("diverged worker: excluded %d, fetched %d", len(odd.excluded), odd.fetches)
		}
		if rc := cl.checkAgreement(3); len(rc.Participants) != 4 {
			t.Errorf("round 3 has %d participants; the resynced worker should be back", len(rc.Participants))
		}
	})
}

func TestAttackerAgainstCombineRules(t *testing.T) {
	norm := func(x []float32) float64 {
		var m float64
		for _, v := range x {
			m = max(m, math.Abs(float64(v)))
		}
		return m
	}
	tests := []struct {
		combiner Combiner
		bounded  bool
	}{
		{Mean{}, false},
		{Median{}, true},
		{TrimmedMean{Fraction: 0.2}, true},
	}
	for _, tt := range tests {
		forEachCodec(t, func(t *testing.T, codec Codec) {
			t.Run(tt.combiner.String(), func(t *testing.T) {
				cl := newCluster(t, 5, 0, func(c *Config) { c.Combiner, c.Codec = tt.combiner, codec })
				// The attacker reports weights 1e6 away: a pseudo-gradient of -1e6.
				cl.nodes[4].local = func(theta []float32) []float32 {
					out := slices.Clone(theta)
					for i := range out {
						out[i] += 1e6
					}
					return out
				}
				if !cl.runUntil(time.Minute, cl.allCompleted(2)) {
					cl.dumpErrors()
					t.Fatal("rounds did not complete")
				}
				got := norm(cl.checkAgreement(2).State.Theta)
				if bounded := got < 10; bounded != tt.bounded {
					t.Errorf("max |θ| after 3 rounds under attack = %g; bounded %v, want %v", got, bounded, tt.bounded)
				}
			})
		})
	}
}

func TestStepRefusesStrangers(t *testing.T) {
	cl := newCluster(t, 2, 0, nil)
	c := cl.nodes[0].c
	stranger := testIDs(999, 1)[0]
	if err := c.Step(cl.now, Message{Type: MsgReady, From: stranger, To: c.Self()}); err == nil {
		t.Error("a message from outside the job was accepted")
	}
	if err := c.Step(cl.now, Message{Type: MsgReady, From: c.Self(), To: c.Self()}); err == nil {
		t.Error("a message claiming to be from self was accepted")
	}
	if err := c.TrainingDone(cl.now, 7, make([]float32, 1000)); err == nil {
		t.Error("training of a round not started was accepted")
	}
}

func TestNewCoordinatorValidates(t *testing.T) {
	ids := testIDs(400, 2)
	st, _ := NewGlobalState(make([]float32, 4), ids)
	k0, k1 := testKey(ids[0]), testKey(ids[1])
	if _, err := NewCoordinator(Config{Self: ids[0], Key: k0, Workers: ids, NumParams: 4}); err != nil {
		t.Fatalf("a valid config is refused: %v", err)
	}
	tests := []Config{
		{Workers: ids, NumParams: 4, Key: k0},
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 0},
		{Self: ids[0], Key: k0, Workers: ids[1:], NumParams: 4},
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 5, Initial: st},
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 4, Codec: 9},
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 4, Outer: Nesterov{LR: -1}},
		{Self: ids[0], Workers: ids, NumParams: 4},          // no key
		{Self: ids[0], Key: k1, Workers: ids, NumParams: 4}, // another worker's key
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 4, Screen: Screen{MaxNormRatio: 0.5}},
		{Self: ids[0], Key: k0, Workers: ids, NumParams: 4, Job: strings.Repeat("j", MaxJobLen+1)},
	}
	for i, cfg := range tests {
		if _, err := NewCoordinator(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

func TestLaggingLeaderWaitsForItsRound(t *testing.T) {
	// Training is quick, and the leader of round 1 is late finishing round 0
	// (it lost a combined part and recovers it after a timeout). Readies for
	// round 1 reach it while it is still in round 0: it must not announce a
	// partial list before it knows whom to expect.
	cl := newCluster(t, 4, 0, nil)
	for _, n := range cl.nodes {
		n.trainFor = 100 * time.Millisecond
		if n.training != nil {
			n.trainDone = cl.now.Add(n.trainFor)
		}
	}
	lagging := LeaderOf(cl.ids(), 1, 0)
	dropped := false
	cl.drop = func(m Message, to gridmind.NodeID) bool {
		if m.Type == MsgReduced && m.Round == 0 && to == lagging && !dropped {
			dropped = true
			return true
		}
		return false
	}
	if !cl.runUntil(time.Minute, cl.allCompleted(2)) {
		cl.dumpErrors()
		t.Fatal("rounds did not complete")
	}
	if rc := cl.checkAgreement(1); !dropped || len(rc.Participants) != 4 {
		t.Errorf("dropped %v; round 1 has %d participants, want 4", dropped, len(rc.Participants))
	}
}

// TestReducersReuseContributionBuffers runs the same rounds with
// reducers decoding into the buffers of finished reductions and into new
// ones: the same states, round by round, for every codec (sparse top-k
// parts leave most of a reused buffer to be cleared), and the buffers
// are really reused.
func TestReducersReuseContributionBuffers(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		// sameCombined counts, over nodes, rounds r whose combined vector
		// is round r+2's (the coordinator keeps two and alternates).
		run := func(reuse bool) (hashes []Hash, pooled, sameCombined int) {
			reuseParts = reuse
			defer func() { reuseParts = true }()
			cl := newCluster(t, 4, 0, withCodec(codec))
			combined := make([]map[uint64]*float32, len(cl.nodes))
			for r := uint64(0); r < 4; r++ {
				if !cl.runUntil(time.Minute, cl.allCompleted(r)) {
					cl.dumpErrors()
					t.Fatalf("round %d did not complete", r)
				}
				hashes = append(hashes, cl.checkAgreement(r).StateHash)
				for i, n := range cl.nodes {
					if combined[i] == nil {
						combined[i] = map[uint64]*float32{}
					}
					if done := n.c.completed; done != nil && len(done.combined) > 0 {
						combined[i][done.round] = &done.combined[0]
					}
				}
			}
			for i, n := range cl.nodes {
				pooled += len(n.c.partBufs)
				if n.c.reducerCodec.values != nil { // the reducer's values kept for its next part
					pooled++
				}
				for r, p := range combined[i] {
					if q, ok := combined[i][r+2]; ok && p == q {
						sameCombined++
					}
				}
			}
			return hashes, pooled, sameCombined
		}
		reused, pooled, sameCombined := run(true)
		fresh, _, _ := run(false) // (new vectors may land where freed ones were)
		if !slices.Equal(reused, fresh) {
			t.Fatalf("states with reused buffers %v, with new ones %v", reused, fresh)
		}
		if pooled == 0 {
			t.Fatal("no reducer kept a contribution's buffer")
		}
		if sameCombined == 0 {
			t.Fatal("no node decoded a round's parts into the combined vector of the round two before")
		}
	})
}
