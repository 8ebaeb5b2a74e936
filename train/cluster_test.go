package train

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

// This file is the in-memory scripted network the coordinator tests run
// on: a virtual clock, FIFO delivery, message drops, dead nodes, and a fake
// inner loop that moves each worker's weights halfway towards its own target.

var testTiming = Timing{
	ReadySlack:      0.25,
	MinReadyWait:    time.Second,
	MaxReadyWait:    3 * time.Second,
	LeaderGrace:     time.Second,
	ResendEvery:     500 * time.Millisecond,
	ExchangeSlack:   3,
	MinExchangeWait: time.Second,
	MaxExchangeWait: 4 * time.Second,
}

type simNode struct {
	id       gridmind.NodeID
	c        *Coordinator
	dead     bool
	target   []float32
	trainFor time.Duration
	// local overrides the fake inner loop (an attacker, a diverged worker).
	local func(theta []float32) []float32
	// tamper, if set, replaces each message this node sends with what it
	// returns (an adversary deviating in the protocol; it may re-sign with
	// testKey and address copies to single recipients).
	tamper func(m Message) []Message
	// serveState, if set, answers this node's state fetches instead of its
	// coordinator (an adversary serving a forged state).
	serveState func(f FetchState) *GlobalState

	rejected      []Rejected
	misbehaviours []Misbehaviour
	repairs       int

	training   *Train
	trainDone  time.Time
	completes  map[uint64]RoundComplete
	excluded   []Excluded
	mismatches []HashMismatch
	fetches    int
}

type cluster struct {
	t        *testing.T
	now      time.Time
	tick     time.Duration
	nodes    []*simNode
	byID     map[gridmind.NodeID]*simNode
	inflight []Message
	fetchQ   []fetchReq
	// drop, if set, decides whether a message (to one recipient) is lost.
	drop func(m Message, to gridmind.NodeID) bool
	// failFetch, if set, decides whether a state fetch fails.
	failFetch func(f FetchState) bool
	// late, if set, holds a message (to one recipient) back for the
	// duration it returns.
	late func(m Message, to gridmind.NodeID) time.Duration
	held []heldMsg
	// onSend, if set, sees every message as it is sent (to kill a node mid-round).
	onSend  func(m Message)
	sent    map[MsgType]int
	errors  []string
	workers []gridmind.NodeID
}

type heldMsg struct {
	m   Message
	to  *simNode
	due time.Time
}

type fetchReq struct {
	node *simNode
	a    FetchState
}

// newCluster makes n starting workers plus joiners more allowed ones that
// start without state (call start on them later).
func newCluster(t *testing.T, n, joiners int, mut func(*Config)) *cluster {
	t.Helper()
	ids := testIDs(100, n+joiners)
	rng := rand.New(rand.NewSource(200))
	theta0 := randomVector(rng, 1000, 1)
	initial, err := NewGlobalState(theta0, ids[:n])
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{t: t, now: time.Unix(1_700_000_000, 0), tick: 50 * time.Millisecond, byID: map[gridmind.NodeID]*simNode{}, sent: map[MsgType]int{}, workers: ids}
	for i, id := range ids {
		node := &simNode{id: id, target: randomVector(rng, 1000, 1), trainFor: 10 * time.Second, completes: map[uint64]RoundComplete{}}
		cfg := Config{Self: id, Key: testKey(id), Job: testJob, Workers: ids, NumParams: 1000, BlockSize: 64, Timing: testTiming}
		if i < n {
			cfg.Initial = initial
		}
		if mut != nil {
			mut(&cfg)
		}
		if node.c, err = NewCoordinator(cfg); err != nil {
			t.Fatal(err)
		}
		node.dead = i >= n // joiners are "not started" until start()
		cl.nodes = append(cl.nodes, node)
		cl.byID[id] = node
	}
	slices.SortFunc(cl.nodes, func(a, b *simNode) int { return strings.Compare(string(a.id), string(b.id)) })
	for _, node := range cl.nodes {
		cl.collect(node)
	}
	return cl
}

func (cl *cluster) start(id gridmind.NodeID) { cl.byID[id].dead = false }
func (cl *cluster) kill(id gridmind.NodeID)  { cl.byID[id].dead = true }

func (cl *cluster) alive() []*simNode {
	var out []*simNode
	for _, n := range cl.nodes {
		if !n.dead {
			out = append(out, n)
		}
	}
	return out
}

// collect takes a node's outputs: messages go in flight, actions are performed.
func (cl *cluster) collect(node *simNode) {
	out := node.c.Outputs()
	if node.dead {
		return
	}
	msgs := out.Messages
	if node.tamper != nil {
		var tampered []Message
		for _, m := range msgs {
			tampered = append(tampered, node.tamper(m)...)
		}
		msgs = tampered
	}
	for _, m := range msgs {
		cl.sent[m.Type]++
		if cl.onSend != nil {
			cl.onSend(m)
		}
		if node.dead { // onSend may have killed it: the rest is never sent
			return
		}
		cl.inflight = append(cl.inflight, m)
	}
	for _, a := range out.Actions {
		switch a := a.(type) {
		case Train:
			node.training = &a
			node.trainDone = cl.now.Add(node.trainFor)
		case FetchState:
			node.fetches++
			cl.fetchQ = append(cl.fetchQ, fetchReq{node, a})
		case RoundComplete:
			if a.Repaired {
				node.repairs++
			} else if _, dup := node.completes[a.Round]; dup {
				cl.t.Errorf("%s completed round %d twice", node.id.Short(), a.Round)
			}
			node.completes[a.Round] = a
		case Excluded:
			node.excluded = append(node.excluded, a)
			node.training = nil
		case HashMismatch:
			node.mismatches = append(node.mismatches, a)
		case Rejected:
			node.rejected = append(node.rejected, a)
		case Misbehaviour:
			node.misbehaviours = append(node.misbehaviours, a)
		}
	}
}

func (cl *cluster) recipients(m Message) []*simNode {
	if m.To != "" {
		if n := cl.byID[m.To]; n != nil {
			return []*simNode{n}
		}
		return nil
	}
	var out []*simNode
	for _, n := range cl.nodes {
		if n.id != m.From {
			out = append(out, n)
		}
	}
	return out
}

// deliver hands every message in flight to its recipients, and the
// messages that causes, until the network is quiet.
func (cl *cluster) deliver() {
	for round := 0; len(cl.inflight) > 0 || len(cl.fetchQ) > 0; round++ {
		if round > 10000 {
			cl.t.Fatal("the network never went quiet")
		}
		batch := cl.inflight
		cl.inflight = nil
		for _, m := range batch {
			// A message survives a trip through the wire format.
			b, err := m.MarshalBinary()
			if err != nil {
				cl.t.Fatal(err)
			}
			if m, err = UnmarshalMessage(b); err != nil {
				cl.t.Fatal(err)
			}
			for _, to := range cl.recipients(m) {
				if to.dead || (cl.drop != nil && cl.drop(m, to.id)) {
					continue
				}
				if cl.late != nil {
					if d := cl.late(m, to.id); d > 0 {
						cl.held = append(cl.held, heldMsg{m, to, cl.now.Add(d)})
						continue
					}
				}
				cl.stepNode(to, m)
			}
		}
		fetches := cl.fetchQ
		cl.fetchQ = nil
		for _, f := range fetches {
			if f.node.dead {
				continue
			}
			peer := cl.byID[f.a.Peer]
			var st *GlobalState
			if peer != nil && !peer.dead && (cl.failFetch == nil || !cl.failFetch(f.a)) {
				if peer.serveState != nil {
					st = peer.serveState(f.a)
				} else {
					st = peer.c.StateFor(f.a.Round, f.a.StateHash)
				}
			}
			if st == nil {
				f.node.c.FetchFailed(cl.now, f.a.Round, f.a.Peer)
			} else {
				b, _ := st.MarshalBinary() // the state travels in its wire form
				got, err := UnmarshalGlobalState(b, 1000)
				if err != nil {
					cl.t.Fatal(err)
				}
				if err := f.node.c.StateFetched(cl.now, got); err != nil {
					cl.t.Errorf("%s: %v", f.node.id.Short(), err)
				}
			}
			cl.collect(f.node)
		}
	}
}

// fakeLocal is the fake inner loop: halfway from θ to the worker's target.
func (n *simNode) fakeLocal(theta []float32) []float32 {
	if n.local != nil {
		return n.local(theta)
	}
	out := make([]float32, len(theta))
	for i := range theta {
		out[i] = theta[i] + 0.5*(n.target[i]-theta[i])
	}
	return out
}

// step advances the clock one tick: finished trainings report, every live
// node ticks, and the network delivers.
func (cl *cluster) stepNode(to *simNode, m Message) {
	if err := to.c.Step(cl.now, m); err != nil {
		cl.errors = append(cl.errors, fmt.Sprintf("%s at %s: %v", m, to.id.Short(), err))
	}
	cl.collect(to)
}

func (cl *cluster) step() {
	cl.now = cl.now.Add(cl.tick)
	held := cl.held
	cl.held = nil
	for _, h := range held {
		switch {
		case cl.now.Before(h.due):
			cl.held = append(cl.held, h)
		case !h.to.dead:
			cl.stepNode(h.to, h.m)
		}
	}
	for _, n := range cl.alive() {
		if n.training != nil && !cl.now.Before(n.trainDone) {
			tr := n.training
			n.training = nil
			if err := n.c.TrainingDone(cl.now, tr.Round, n.fakeLocal(tr.Theta)); err != nil {
				cl.errors = append(cl.errors, fmt.Sprintf("%s training done: %v", n.id.Short(), err))
			}
			cl.collect(n)
		}
	}
	for _, n := range cl.alive() {
		n.c.Tick(cl.now)
		cl.collect(n)
	}
	cl.deliver()
}

// runUntil steps until cond holds or limit of virtual time passes.
func (cl *cluster) runUntil(limit time.Duration, cond func() bool) bool {
	end := cl.now.Add(limit)
	for cl.now.Before(end) {
		if cond() {
			return true
		}
		cl.step()
	}
	return cond()
}

// allCompleted reports whether every live node finished round r.
func (cl *cluster) allCompleted(r uint64) func() bool {
	return func() bool {
		for _, n := range cl.alive() {
			if _, ok := n.completes[r]; !ok {
				return false
			}
		}
		return true
	}
}

// checkAgreement fails unless every node that finished round r reached the
// same state, and returns that completion.
func (cl *cluster) checkAgreement(r uint64) RoundComplete {
	cl.t.Helper()
	var first *RoundComplete
	for _, n := range cl.nodes {
		rc, ok := n.completes[r]
		if !ok {
			continue
		}
		if first == nil {
			first = &rc
			continue
		}
		if rc.StateHash != first.StateHash || rc.ThetaHash != first.ThetaHash {
			cl.t.Fatalf("round %d: %s reached %s, another %s", r, n.id.Short(), rc.ThetaHash.Short(), first.ThetaHash.Short())
		}
		if HashTheta(rc.State.Theta) != rc.ThetaHash {
			cl.t.Fatalf("round %d: reported θ hash does not match θ", r)
		}
	}
	if first == nil {
		cl.t.Fatalf("nobody finished round %d", r)
	}
	return *first
}

func (cl *cluster) dumpErrors() {
	for _, e := range cl.errors {
		cl.t.Log(e)
	}
}

func (cl *cluster) ids() []gridmind.NodeID {
	var out []gridmind.NodeID
	for _, n := range cl.nodes {
		out = append(out, n.id)
	}
	return out
}

// withCodec sets every worker's codec.
func withCodec(codec Codec) func(*Config) { return func(c *Config) { c.Codec = codec } }

// forEachCodec runs a scenario once with each quantizing codec and a
// top-k one: the protocol must behave alike whatever the bytes on the wire are.
func forEachCodec(t *testing.T, scenario func(t *testing.T, codec Codec)) {
	for _, codec := range append(slices.Clip(quantizingCodecs), protocolTopK) {
		t.Run(codec.String(), func(t *testing.T) { scenario(t, codec) })
	}
}
