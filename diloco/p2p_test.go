package diloco

import (
	"context"
	"crypto/ed25519"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/train"
)

// p2pNode is one loopback libp2p host with the job's transport.
type p2pNode struct {
	host      *p2p.Host
	transport *P2PTransport
	closeOnce sync.Once
}

func (n *p2pNode) close() { n.closeOnce.Do(func() { _ = n.host.Close() }) }

func startP2PNode(t *testing.T, job string, key ed25519.PrivateKey, peers []*p2pNode) *p2pNode {
	t.Helper()
	h, err := p2p.New(context.Background(), p2p.Config{Key: key, LoopbackOnly: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	n := &p2pNode{host: h}
	t.Cleanup(n.close)
	for _, p := range peers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := h.Connect(ctx, p.host.Addrs()[0])
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if n.transport, err = NewP2PTransport(h, job, quietLogger()); err != nil {
		t.Fatal(err)
	}
	return n
}

// startP2PMesh starts hosts for keys, fully connected, and waits until
// every host sees the others on the job topic.
func startP2PMesh(t *testing.T, job string, keys []ed25519.PrivateKey) []*p2pNode {
	t.Helper()
	var nodes []*p2pNode
	for _, k := range keys {
		nodes = append(nodes, startP2PNode(t, job, k, nodes))
	}
	waitTopic(t, nodes, len(nodes)-1)
	return nodes
}

func waitTopic(t *testing.T, nodes []*p2pNode, peers int) {
	t.Helper()
	waitFor(t, 20*time.Second, func() bool {
		for _, n := range nodes {
			if len(n.transport.Topic().Peers()) < peers {
				return false
			}
		}
		return true
	})
}

// killSwitch wraps a transport and runs kill once, after the first
// all-reduce part of round ≥ from has gone out.
type killSwitch struct {
	Transport
	from uint64
	kill func(round uint64)
	once sync.Once
	sent atomic.Bool
}

func (k *killSwitch) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	m, err := train.UnmarshalMessage(data)
	if err == nil && m.Type == train.MsgPart && m.Round >= k.from {
		if k.sent.Swap(true) {
			k.once.Do(func() { k.kill(m.Round) })
			return context.Canceled
		}
	}
	return k.Transport.SendBulk(ctx, to, data)
}

func TestP2PToyWorkersAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four libp2p hosts")
	}
	const rounds = 5
	job := newToyJob(t, 4, 4, rounds)
	nodes := startP2PMesh(t, "toy-p2p", job.keys)
	job.mutate = func(c *Config) {
		for i, id := range job.ids {
			if c.Transport.Self() == id {
				c.Transport = nodes[i].transport
			}
		}
	}
	var rs []*running
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	waitDone(t, rs, 60*time.Second)
	for i, r := range rs {
		if r.err != nil || r.summary.StateHash != rs[0].summary.StateHash || r.summary.State.Round != rounds {
			t.Fatalf("worker %d: %v, round %d, %s", i, r.err, r.summary.State.Round, r.summary.StateHash.Short())
		}
	}
	job.progress.checkRounds(t, rounds)
}

func TestP2PToyChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five libp2p hosts")
	}
	const rounds = 20 // toy rounds take milliseconds: leave the joiner time to start a host
	job := newToyJob(t, 4, 5, rounds)
	nodes := startP2PMesh(t, "toy-churn", job.keys[:4])
	victim := 3
	killed := make(chan uint64, 1)
	var victimRun atomic.Pointer[running]
	var rs []*running
	job.mutate = func(c *Config) {
		for i, id := range job.ids[:4] {
			if c.Transport.Self() != id {
				continue
			}
			c.Transport = nodes[i].transport
			if i == victim {
				c.Transport = &killSwitch{Transport: nodes[i].transport, from: 2, kill: func(round uint64) {
					victimRun.Load().cancel()
					nodes[victim].close()
					killed <- round
				}}
			}
		}
	}
	for i := range 4 {
		rs = append(rs, job.start(context.Background(), i, false))
	}
	victimRun.Store(rs[victim])
	var killRound uint64
	select {
	case killRound = <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the victim was never killed")
	}
	waitFor(t, 30*time.Second, func() bool { r, ok := job.progress.maxRound(); return ok && r >= killRound+2 })
	joinedAfter, _ := job.progress.maxRound()
	joinerNode := startP2PNode(t, "toy-churn", job.keys[4], nodes[:3])
	waitTopic(t, []*p2pNode{joinerNode}, 3)
	job.mutate = func(c *Config) { c.Transport = joinerNode.transport }
	joiner := job.start(context.Background(), 4, true)
	alive := []*running{rs[0], rs[1], rs[2], joiner}
	waitDone(t, alive, 60*time.Second)
	for i, r := range alive {
		if r.err != nil || r.summary.StateHash != alive[0].summary.StateHash || r.summary.State.Round != rounds {
			t.Fatalf("worker %d: %v, round %d, %s", i, r.err, r.summary.State.Round, r.summary.StateHash.Short())
		}
	}
	job.progress.checkAgreement(t)
	if joiner.summary.Completed == 0 {
		t.Error("the joiner never took part in a round")
	}
	t.Logf("victim killed in round %d; joiner took part in %d rounds, excluded %d, started after round %d", killRound, joiner.summary.Completed, joiner.summary.Excluded, joinedAfter)
}

// checkRounds holds a job over libp2p to what the protocol guarantees on
// any machine, however loaded: every round was completed, every report of
// a round carries one state hash (checkAgreement), and only the round's
// members report it. It does not promise that every worker made every
// round: one that misses a round's deadline sits it out, fetches the
// state and rejoins (the callers check that all end with the same θ).
func (l *progressLog) checkRounds(t *testing.T, rounds uint64) {
	t.Helper()
	counts := l.checkAgreement(t)
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := uint64(0); r < rounds; r++ {
		if counts[r] == 0 {
			t.Errorf("round %d was reported by no worker", r)
		}
		if counts[r] < len(l.byNode) {
			t.Logf("round %d reported by %d of %d workers (the others sat it out)", r, counts[r], len(l.byNode))
		}
	}
	for node, reports := range l.byNode {
		for r, p := range reports {
			if !slices.Contains(p.Members, node) {
				t.Errorf("%s reported round %d without being among its members %v", node.Short(), r, p.Members)
			}
		}
	}
}
