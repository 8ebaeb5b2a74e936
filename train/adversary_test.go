package train

import (
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// These tests replace one worker by an adversary that deviates somewhere
// in the protocol, and check what the honest workers end up with.

const attackRounds = 4

// runAttack runs 5 workers for attackRounds rounds; the last node (in
// sorted order) is the adversary, set up by arm. It returns the cluster.
func runAttack(t *testing.T, mut func(*Config), arm func(cl *cluster, adv *simNode)) *cluster {
	t.Helper()
	cl := newCluster(t, 5, 0, mut)
	cl.shareTargets(0.3)
	if arm != nil {
		arm(cl, cl.nodes[4])
	}
	ok := cl.runUntil(2*time.Minute, func() bool {
		for _, n := range cl.honest() {
			if _, done := n.completes[attackRounds-1]; !done {
				return false
			}
		}
		return true
	})
	if !ok {
		cl.dumpErrors()
		t.Fatal("the honest workers did not finish")
	}
	return cl
}

// shareTargets gives the workers' data a common direction, as real shards
// of one corpus have: each target becomes a shared one plus spread times
// the worker's own, so honest pseudo-gradients agree in direction while θ
// is far from the goal.
func (cl *cluster) shareTargets(spread float32) {
	rng := rand.New(rand.NewSource(99))
	common := randomVector(rng, len(cl.nodes[0].target), 1)
	for _, n := range cl.nodes {
		for i := range n.target {
			n.target[i] = common[i] + spread*n.target[i]
		}
	}
}

// honest is every node but the adversary (the last).
func (cl *cluster) honest() []*simNode { return cl.nodes[:len(cl.nodes)-1] }

// finalTheta checks that the honest workers agree after the last round
// and returns their θ; no honest worker may have been excluded or
// rejected on the way.
func (cl *cluster) honestOutcome() []float32 {
	cl.t.Helper()
	var theta []float32
	var hash Hash
	for _, n := range cl.honest() {
		rc := n.completes[attackRounds-1]
		if theta == nil {
			theta, hash = rc.State.Theta, rc.ThetaHash
		} else if rc.ThetaHash != hash {
			cl.t.Fatalf("honest workers disagree after round %d", attackRounds-1)
		}
		if len(n.excluded) > 0 {
			cl.t.Errorf("honest %s was excluded: %+v", n.id.Short(), n.excluded)
		}
		for _, r := range n.rejected {
			if r.Worker != cl.nodes[4].id {
				cl.t.Errorf("honest %s saw honest %s rejected: %+v", n.id.Short(), r.Worker.Short(), r)
			}
		}
	}
	return theta
}

// participatedAfter reports whether id took part in a round after round.
func (cl *cluster) participatedAfter(id gridmind.NodeID, round uint64) bool {
	for _, rc := range cl.nodes[0].completes {
		if rc.Round > round && slices.Contains(rc.Participants, id) {
			return true
		}
	}
	return false
}

func TestForgedReducedPartsAreRefused(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		mut := func(c *Config) { c.Codec, c.Combiner = codec, Median{} }
		forged := 0
		cl := runAttack(t, mut, func(cl *cluster, adv *simNode) {
			key := testKey(adv.id)
			adv.tamper = func(m Message) []Message {
				out := []Message{m}
				if m.Type != MsgPart || m.Payload == nil {
					return out
				}
				// For every part it does not reduce, the adversary sends its own
				// pseudo-gradient as the "combined" result, signed with its key,
				// to everyone, ahead of the real reducer.
				fake := Message{Type: MsgReduced, From: adv.id, Round: m.Round, Part: m.Part, Membership: m.Membership,
					Contributors: []gridmind.NodeID{adv.id}, Payload: m.Payload}
				SignReduced(key, testJob, adv.id, &fake)
				for _, n := range cl.nodes {
					if n.id != adv.id && n.id != m.To {
						f := fake
						f.To = n.id
						out = append([]Message{f}, out...)
						forged++
					}
				}
				return out
			}
		})
		cl.honestOutcome()
		if forged == 0 {
			t.Fatal("the adversary forged nothing")
		}
		// Every result applied came from its reducer, which combined the
		// honest workers' parts, never the forger's "result".
		for _, n := range cl.honest() {
			for r, rc := range n.completes {
				for j, contributors := range rc.Contributors {
					if len(contributors) < 3 {
						t.Errorf("%s applied part %d of round %d combined from %d contributors", n.id.Short(), j, r, len(contributors))
					}
				}
			}
		}
		refused := 0
		for _, e := range cl.errors {
			if strings.Contains(e, "is not its reducer's") {
				refused++
			}
		}
		if refused == 0 {
			t.Errorf("no forged part was refused for its signature; errors: %v", cl.errors)
		}
		adv := cl.nodes[4].id
		for _, n := range cl.honest() {
			if len(n.misbehaviours) == 0 || n.misbehaviours[0].Evidence.Kind != EvidenceImpersonation || n.misbehaviours[0].Evidence.Offender != adv {
				t.Fatalf("%s holds no impersonation evidence: %+v", n.id.Short(), n.misbehaviours)
			}
			if err := n.misbehaviours[0].Evidence.Verify(); err != nil {
				t.Errorf("evidence does not verify: %v", err)
			}
		}
		if cl.participatedAfter(adv, 1) {
			t.Error("the forger still takes part")
		}
	})
}

func TestReducerEquivocationIsProvedAndRepaired(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := runAttack(t, func(c *Config) { c.Codec = codec }, func(cl *cluster, adv *simNode) {
			key := testKey(adv.id)
			adv.tamper = func(m Message) []Message {
				// In round 0, half of the workers get a different result for the
				// adversary's part.
				if m.Type != MsgReduced || m.Round != 0 || m.To == "" || m.To > cl.nodes[1].id {
					return []Message{m}
				}
				n := len(m.Payload)
				other := m
				other.Payload = slices.Clone(m.Payload)
				other.Payload[n-1] ^= 0x01 // still a valid vector, other values
				SignReduced(key, testJob, adv.id, &other)
				return []Message{other}
			}
		})
		got := cl.honestOutcome()
		if !(maxAbs(got) < 10) {
			t.Errorf("θ unbounded: %g", maxAbs(got))
		}
		adv := cl.nodes[4].id
		for _, n := range cl.honest() {
			if len(n.misbehaviours) == 0 || n.misbehaviours[0].Evidence.Offender != adv || n.misbehaviours[0].Evidence.Kind != EvidenceEquivocation {
				t.Fatalf("%s holds no equivocation evidence against the adversary: %+v", n.id.Short(), n.misbehaviours)
			}
			if err := n.misbehaviours[0].Evidence.Verify(); err != nil {
				t.Errorf("evidence does not verify: %v", err)
			}
		}
		repaired := 0
		for _, n := range cl.honest() {
			repaired += n.repairs
		}
		if repaired == 0 {
			t.Error("no honest worker repaired round 0")
		}
		if cl.participatedAfter(adv, 1) {
			t.Error("the equivocating reducer still takes part")
		}
	})
}

func TestPartAgainstCommitmentIsEvidence(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := runAttack(t, func(c *Config) { c.Codec = codec }, func(cl *cluster, adv *simNode) {
			key := testKey(adv.id)
			adv.tamper = func(m Message) []Message {
				// After committing, the adversary sends its reducers a part
				// that is not the one it committed to.
				if m.Type != MsgPart || m.Payload == nil || m.To == adv.id {
					return []Message{m}
				}
				m.Payload = slices.Clone(m.Payload)
				m.Payload[len(m.Payload)-1] ^= 0x02
				SignPart(key, testJob, &m)
				return []Message{m}
			}
		})
		cl.honestOutcome()
		adv := cl.nodes[4].id
		var ev *Evidence
		for _, n := range cl.honest() {
			for _, mb := range n.misbehaviours {
				if mb.Evidence.Offender == adv && mb.Evidence.Kind == EvidencePartMismatch {
					ev = mb.Evidence
				}
			}
			if len(n.misbehaviours) == 0 {
				t.Errorf("%s did not learn of the adversary's breach", n.id.Short())
			}
		}
		if ev == nil {
			t.Fatal("no part-mismatch evidence")
		}
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalEvidence(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Verify(); err != nil {
			t.Errorf("evidence does not verify after a round trip: %v", err)
		}
		// Evidence cannot be made against an honest worker: the same
		// statement with its original, committed payload is not proof.
		honestPart := *back
		honestPart.Payload = slices.Clone(back.Payload)
		honestPart.Payload[len(honestPart.Payload)-1] ^= 0x02
		if honestPart.Verify() == nil {
			t.Error("a re-signed original part was accepted as evidence")
		}
		if cl.participatedAfter(adv, 1) {
			t.Error("the adversary still takes part")
		}
	})
}

// attacks on the pseudo-gradient itself, through the inner loop.
var gradientAttacks = []struct {
	name  string
	local func(n *simNode, rng *rand.Rand) func(theta []float32) []float32
}{
	{"sign-flip", func(n *simNode, _ *rand.Rand) func([]float32) []float32 { return scaledStep(n, -1) }},
	{"sign-flip-x10", func(n *simNode, _ *rand.Rand) func([]float32) []float32 { return scaledStep(n, -10) }},
	{"noise", func(n *simNode, rng *rand.Rand) func([]float32) []float32 {
		return func(theta []float32) []float32 {
			out := slices.Clone(theta)
			for i := range out {
				out[i] += float32(5 * rng.NormFloat64())
			}
			return out
		}
	}},
	{"free-rider", func(*simNode, *rand.Rand) func([]float32) []float32 { return slices.Clone[[]float32] }},
}

// scaledStep is the honest fake step scaled by s.
func scaledStep(n *simNode, s float32) func(theta []float32) []float32 {
	return func(theta []float32) []float32 {
		out := make([]float32, len(theta))
		for i := range theta {
			out[i] = theta[i] + s*0.5*(n.target[i]-theta[i])
		}
		return out
	}
}

func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// distance is how far θ is from the honest workers' mean target, where
// honest training leads.
func (cl *cluster) distance(theta []float32) float64 {
	var d float64
	honest := cl.honest()
	for i := range theta {
		var mean float64
		for _, n := range honest {
			mean += float64(n.target[i])
		}
		mean /= float64(len(honest))
		d += (float64(theta[i]) - mean) * (float64(theta[i]) - mean)
	}
	return math.Sqrt(d)
}

func TestScreenRejectsCrudeAttackers(t *testing.T) {
	for _, combiner := range []Combiner{Mean{}, CenteredClip{}} {
		for _, attack := range gradientAttacks {
			t.Run(combiner.String()+"/"+attack.name, func(t *testing.T) {
				mut := func(c *Config) { c.Screen, c.Combiner = DefaultScreen(), combiner }
				// The clean run: the same five workers, all honest, and the
				// distance from the four honest ones' goal.
				clean := runAttack(t, mut, nil)
				cleanDist := clean.distance(clean.honestOutcome())
				cl := runAttack(t, mut, func(cl *cluster, adv *simNode) {
					adv.local = attack.local(adv, rand.New(rand.NewSource(7)))
				})
				dist := cl.distance(cl.honestOutcome())
				adv := cl.nodes[4].id
				for _, n := range cl.honest() {
					if len(n.rejected) == 0 || n.rejected[0].Worker != adv || n.rejected[0].Round != 0 {
						t.Fatalf("%s: the adversary was not rejected in round 0: %+v", n.id.Short(), n.rejected)
					}
				}
				if cl.participatedAfter(adv, 1) {
					t.Error("a rejected adversary took part again")
				}
				t.Logf("distance to the honest goal: %.4f under attack, %.4f clean", dist, cleanDist)
				if dist > 1.05*cleanDist {
					t.Errorf("distance %.4f under attack, %.4f clean: more than 5%% worse", dist, cleanDist)
				}
			})
		}
	}
}

func TestScreenNeverRejectsHonestWorkers(t *testing.T) {
	forEachCodec(t, func(t *testing.T, codec Codec) {
		cl := newCluster(t, 6, 0, func(c *Config) { c.Codec, c.Screen = codec, DefaultScreen() })
		if !cl.runUntil(2*time.Minute, cl.allCompleted(9)) {
			cl.dumpErrors()
			t.Fatal("rounds did not complete")
		}
		cl.checkAgreement(9)
		for _, n := range cl.nodes {
			if len(n.rejected) > 0 || len(n.excluded) > 0 {
				t.Errorf("%s: rejected %+v excluded %+v", n.id.Short(), n.rejected, n.excluded)
			}
		}
	})
}
