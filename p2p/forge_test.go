package p2p

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"

	"github.com/gridmind/gridmind"
)

// signAs signs m the way pubsub does, with key, whatever m.From claims.
func signAs(t *testing.T, key crypto.PrivKey, m *pb.Message) {
	t.Helper()
	raw, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(append([]byte(pubsub.SignPrefix), raw...))
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = sig
}

// An attacker speaking raw GossipSub must not get a message accepted under
// someone else's name (StrictSign), nor crash the receiver with garbage.
func TestForgedGossipRejected(t *testing.T) {
	const topic = "test/forge"
	a := newTestHost(t, 1, nil) // the honest author being impersonated
	b := newTestHost(t, 2, nil) // the receiver
	m := newTestHost(t, 3, nil) // the attacker
	ta, err := a.Join(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	var accepted []string
	tb, err := b.Join(topic, func(_ context.Context, _ gridmind.NodeID, data []byte) error {
		accepted = append(accepted, string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := tb.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	// a and m subscribe too, so b lists them as topic peers once their
	// gossip streams are up.
	tm, err := m.Join(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []*Topic{ta, tm} {
		if _, err := tp.Subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, a, b)
	connect(t, m, b)
	waitFor(t, 10*time.Second, "b to see a and m on the topic", func() bool { return len(tb.Peers()) == 2 })

	mKey, err := crypto.UnmarshalEd25519PrivateKey(testKey(3))
	if err != nil {
		t.Fatal(err)
	}
	tp := topic
	// forgeries builds one RPC with three forged messages; attempt makes
	// their IDs fresh.
	forgeries := func(attempt byte) []byte {
		seq := func(n byte) []byte { return []byte{0, 0, 0, 0, 0, 0x42, attempt, n} }
		forgedName := &pb.Message{From: []byte(a.self), Data: []byte("forged: signed by m, claims a"), Seqno: seq(1), Topic: &tp}
		signAs(t, mKey, forgedName)
		unsigned := &pb.Message{From: []byte(a.self), Data: []byte("forged: no signature"), Seqno: seq(2), Topic: &tp}
		tampered := &pb.Message{From: []byte(m.self), Data: []byte("original"), Seqno: seq(3), Topic: &tp}
		signAs(t, mKey, tampered)
		tampered.Data = []byte("tampered after signing")
		rpc, err := proto.Marshal(&pb.RPC{Publish: []*pb.Message{forgedName, unsigned, tampered}})
		if err != nil {
			t.Fatal(err)
		}
		return append(binary.AppendUvarint(nil, uint64(len(rpc))), rpc...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Our raw stream replaces m's real gossip stream at b; if m's pubsub
	// reopens its own stream first, b drops ours unread. So retry on a new
	// stream until b has processed one RPC (it handles an RPC as a whole).
	var s network.Stream
	for attempt := byte(1); ; attempt++ {
		if attempt > 5 {
			t.Fatalf("b never processed the forged RPC: stats %+v", b.Stats())
		}
		s, err = m.host.NewStream(ctx, b.self, pubsub.GossipSubID_v11)
		if err != nil {
			t.Fatalf("raw gossipsub stream: %v", err)
		}
		if _, err := s.Write(forgeries(attempt)); err != nil {
			s.Reset()
			continue
		}
		if pollUntil(ctx, 2*time.Second, func() bool { return b.Stats().Rejected > 0 }) == nil {
			break
		}
		s.Reset()
	}
	// Signatures are checked by validation workers, after the RPC loop.
	waitFor(t, 10*time.Second, "all three forgeries to be counted", func() bool { return b.Stats().Rejected >= 3 })
	st := b.Stats()
	if st.Rejected != 3 || st.RejectedByReason[pubsub.RejectInvalidSignature] != 2 || st.RejectedByReason[pubsub.RejectMissingSignature] != 1 {
		t.Fatalf("Rejected = %d, by reason %v; want 3: 2 %q and 1 %q", st.Rejected, st.RejectedByReason, pubsub.RejectInvalidSignature, pubsub.RejectMissingSignature)
	}
	// Garbage on the wire: b resets the stream and carries on.
	s.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	s.Close()

	if err := ta.Publish(ctx, []byte("real")); err != nil {
		t.Fatal(err)
	}
	msg := next(t, sb)
	if string(msg.Data) != "real" || msg.From != a.ID() {
		t.Fatalf("b delivered %q from %s, want \"real\" from a", msg.Data, msg.From.Short())
	}
	if len(accepted) != 1 {
		t.Fatalf("b's validator saw %q; forgeries must be refused before it", accepted)
	}
}
