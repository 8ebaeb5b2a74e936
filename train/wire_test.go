package train

import (
	"bytes"
	"crypto/ed25519"
	"math/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/gridmind/gridmind"
)

// testIDs returns n real ed25519 node ids from a seeded source.
// testKeyOf holds the key of every id testIDs made, so tests can sign as
// any worker (an adversary re-signs what it tampered with).
var (
	testKeysMu sync.Mutex
	testKeyOf  = map[gridmind.NodeID]ed25519.PrivateKey{}
)

func testIDs(seed int64, n int) []gridmind.NodeID {
	rng := rand.New(rand.NewSource(seed))
	out := make([]gridmind.NodeID, n)
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	for i := range out {
		pub, priv, err := ed25519.GenerateKey(rng)
		if err != nil {
			panic(err)
		}
		out[i] = gridmind.NodeIDFromPublicKey(pub)
		testKeyOf[out[i]] = priv
	}
	return out
}

func testKey(id gridmind.NodeID) ed25519.PrivateKey {
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	return testKeyOf[id]
}

const testJob = "job-under-test"

func TestGlobalStateRoundTrip(t *testing.T) {
	ids := testIDs(1, 3)
	s, err := NewGlobalState(randomVector(rand.New(rand.NewSource(2)), 1000, 1), ids)
	if err != nil {
		t.Fatal(err)
	}
	s.Round = 42
	s.Velocity[7] = 0.5
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalGlobalState(b, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) || back.Hash() != s.Hash() {
		t.Fatal("state changed in a round trip")
	}
	if _, err := UnmarshalGlobalState(b, 999); err == nil {
		t.Error("a state over the size limit was accepted")
	}
	mutated := back.Clone()
	mutated.Velocity[7] = 0.25
	if mutated.Hash() == s.Hash() {
		t.Error("the state hash ignores the momentum")
	}
	if mutated.ThetaHash() != s.ThetaHash() {
		t.Error("the θ hash depends on the momentum")
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte("XXXX"), b[4:]...)} {
		if _, err := UnmarshalGlobalState(bad, 1000); err == nil {
			t.Errorf("bad state of %d bytes accepted", len(bad))
		}
	}
}

func TestNewGlobalStateSortsWorkers(t *testing.T) {
	ids := testIDs(5, 4)
	s, err := NewGlobalState([]float32{1}, []gridmind.NodeID{ids[3], ids[1], ids[3], ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Participants) != 3 {
		t.Errorf("participants %v, want 3 unique", s.Participants)
	}
	if _, err := NewGlobalState(nil, ids); err == nil {
		t.Error("empty θ accepted")
	}
	if _, err := NewGlobalState([]float32{1}, nil); err == nil {
		t.Error("no workers accepted")
	}
}

func TestMessageRoundTrip(t *testing.T) {
	ids := testIDs(7, 3)
	msgs := []Message{
		{Type: MsgReady, From: ids[0], To: ids[1], Round: 9, Attempt: 2, StateHash: Hash{1, 2}},
		{Type: MsgAnnounce, From: ids[1], Round: 9, Participants: ids, StateHash: Hash{3}},
		{Type: MsgPart, From: ids[2], To: ids[0], Round: 9, Part: 2, ReducerAttempt: 1, Membership: Hash{4}, Payload: []byte{1, 2, 3}},
		{Type: MsgReduced, From: ids[2], To: ids[0], Round: 9, Part: 1, Membership: Hash{5}, Contributors: ids[:2], Payload: []byte{9}},
		{Type: MsgDone, From: ids[0], Round: 10, StateHash: Hash{6}, ThetaHash: Hash{7}},
		{Type: MsgJoin, From: ids[0], To: ids[2], Round: 11},
	}
	for _, m := range msgs {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if len(back.Payload) == 0 {
			back.Payload = nil
		}
		if !reflect.DeepEqual(m, back) {
			t.Errorf("round trip changed %+v into %+v", m, back)
		}
	}
}

func TestUnmarshalMessageRefusesBadInput(t *testing.T) {
	good, _ := (&Message{Type: MsgDone, From: "x", Round: 1}).MarshalBinary()
	noSender, _ := (&Message{Type: MsgDone, Round: 1}).MarshalBinary()
	badType := bytes.Clone(good)
	badType[5] = 99
	for name, b := range map[string][]byte{
		"empty": nil, "truncated": good[:len(good)-1], "trailing": append(bytes.Clone(good), 1),
		"no sender": noSender, "bad type": badType,
	} {
		if _, err := UnmarshalMessage(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	ids := testIDs(8, 2)
	for _, m := range []Message{
		{Type: MsgAnnounce, From: ids[0], Round: 3, Participants: ids, StateHash: Hash{1}},
		{Type: MsgReduced, From: ids[1], To: ids[0], Contributors: ids, Membership: Hash{2}, Payload: []byte{1, 2}},
	} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("a decoded message does not encode: %v", err)
		}
		if _, err := UnmarshalMessage(again); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}

func FuzzUnmarshalGlobalState(f *testing.F) {
	s, _ := NewGlobalState([]float32{1, 2, 3}, testIDs(9, 2))
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalGlobalState(b, 1<<16)
		if err == nil && (len(s.Theta) != len(s.Velocity) || len(s.Participants) == 0) {
			t.Fatalf("inconsistent state accepted: %d/%d/%d", len(s.Theta), len(s.Velocity), len(s.Participants))
		}
	})
}
