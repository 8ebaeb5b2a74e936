package diloco

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// recorder is a Handler that keeps what it receives and serves one state.
type recorder struct {
	mu      sync.Mutex
	control []string
	bulk    []string
	hash    train.Hash
	state   []byte
}

func (r *recorder) Control(from gridmind.NodeID, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.control = append(r.control, from.Short()+":"+string(data))
}

func (r *recorder) Bulk(from gridmind.NodeID, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bulk = append(r.bulk, from.Short()+":"+string(data))
}

func (r *recorder) State(_ context.Context, round uint64, hash train.Hash) ([]byte, error) {
	if round != 7 || hash != r.hash {
		return nil, errors.New("not held")
	}
	return r.state, nil
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.control), len(r.bulk)
}

func TestP2PTransportDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts libp2p hosts")
	}
	keys, _ := testKeys(77, 3)
	a := startP2PNode(t, "job-a", keys[0], nil)
	b := startP2PNode(t, "job-a", keys[1], []*p2pNode{a})
	c := startP2PNode(t, "job-other", keys[2], []*p2pNode{a, b})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rb := &recorder{hash: train.Hash{9}, state: bytes.Repeat([]byte{5}, 3<<20)}
	for _, n := range []*p2pNode{a, c} {
		if err := n.transport.Serve(ctx, &recorder{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.transport.Serve(ctx, rb); err != nil {
		t.Fatal(err)
	}
	call, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	if err := a.transport.Send(call, b.host.ID(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := a.transport.SendBulk(call, b.host.ID(), []byte("part")); err != nil {
		t.Fatal(err)
	}
	rb.mu.Lock()
	control, bulk := append([]string(nil), rb.control...), append([]string(nil), rb.bulk...)
	rb.mu.Unlock()
	if want := a.host.ID().Short() + ":hello"; len(control) != 1 || control[0] != want {
		t.Errorf("control %v, want [%s]", control, want)
	}
	if len(bulk) != 1 || bulk[0] != a.host.ID().Short()+":part" {
		t.Errorf("bulk %v", bulk)
	}
	state, err := a.transport.FetchState(call, b.host.ID(), 7, train.Hash{9})
	if err != nil || !bytes.Equal(state, rb.state) {
		t.Fatalf("fetch: %d bytes, %v", len(state), err)
	}
	if _, err := a.transport.FetchState(call, b.host.ID(), 7, train.Hash{8}); gridmind.KindOf(err) != gridmind.KindNotFound {
		t.Errorf("fetch of a state not held: %v", err)
	}
	// A host serving another job refuses the stream.
	if err := a.transport.SendBulk(call, c.host.ID(), []byte("part")); err == nil {
		t.Error("a stream for another job was accepted")
	}
	if ctl, bulk := rb.counts(); ctl != 1 || bulk != 1 {
		t.Errorf("b received %d control and %d bulk messages, want 1 and 1", ctl, bulk)
	}
}

// gated is a recorder that admits only some peers, with a frame bound.
type gated struct {
	recorder
	members map[gridmind.NodeID]bool
	limit   int
}

func (g *gated) Admit(from gridmind.NodeID, _ string) (int, bool) { return g.limit, g.members[from] }

func TestP2PTransportGatesStreamsBeforeReading(t *testing.T) {
	if testing.Short() {
		t.Skip("starts libp2p hosts")
	}
	keys, _ := testKeys(78, 3)
	member := startP2PNode(t, "job-g", keys[0], nil)
	stranger := startP2PNode(t, "job-g", keys[1], []*p2pNode{member})
	server := startP2PNode(t, "job-g", keys[2], []*p2pNode{member, stranger})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &gated{recorder: recorder{hash: train.Hash{9}, state: []byte("model")}, members: map[gridmind.NodeID]bool{member.host.ID(): true}, limit: 64}
	if err := server.transport.Serve(ctx, g); err != nil {
		t.Fatal(err)
	}
	call, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	if err := member.transport.SendBulk(call, server.host.ID(), []byte("part")); err != nil {
		t.Fatalf("a member's small part: %v", err)
	}
	// A member may not send more than the bound; a stranger nothing at all,
	// and it cannot fetch the model.
	if err := member.transport.SendBulk(call, server.host.ID(), bytes.Repeat([]byte{1}, 65)); err == nil {
		t.Error("a frame over the bound was accepted")
	}
	if err := stranger.transport.SendBulk(call, server.host.ID(), []byte("part")); err == nil {
		t.Error("a stranger's stream was accepted")
	}
	if _, err := stranger.transport.FetchState(call, server.host.ID(), 7, train.Hash{9}); err == nil {
		t.Error("a stranger fetched the state")
	}
	if state, err := member.transport.FetchState(call, server.host.ID(), 7, train.Hash{9}); err != nil || string(state) != "model" {
		t.Errorf("a member's fetch: %q %v", state, err)
	}
	if _, bulk := g.counts(); bulk != 1 {
		t.Errorf("%d bulk messages delivered, want the member's one", bulk)
	}
}
