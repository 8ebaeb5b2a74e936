package train

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math/rand"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

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
		{Type: MsgJoin, From: ids[1], Round: 12, Lag: 1500 * time.Millisecond},
		{Type: MsgAnnounce, From: ids[1], Round: 13, Participants: ids, StateHash: Hash{8}, Offsets: []uint32{0, 2500, 40}},
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
		{Type: MsgAnnounce, From: ids[0], Round: 1, Participants: ids, Roots: []Hash{{3}, {4}}, RootSigs: [][]byte{make([]byte, 64), make([]byte, 64)}},
		{Type: MsgReduced, From: ids[1], Contributors: ids[:1], Dropped: ids[1:], DropReasons: []DropReason{DropDirection}, Sig: make([]byte, 64), Payload: []byte{1}},
		{Type: MsgPart, From: ids[0], Proof: []Hash{{5}, {6}}, Sig: make([]byte, 64), Payload: []byte{2}},
		{Type: MsgDone, From: ids[0], Membership: Hash{7}, Headers: []ReducedHeader{{Reducer: ids[1], Part: 1, Attempt: 2, Result: Hash{8}, Sig: make([]byte, 64)}}},
		{Type: MsgReady, From: ids[0], Root: Hash{9}, Sig: make([]byte, 64)},
		{Type: MsgDone, From: ids[0], ThetaHash: Hash{10}, Audit: []byte("a signed commitment")},
		{Type: MsgJoin, From: ids[1], Round: 4, Lag: 2 * time.Second},
		{Type: MsgAnnounce, From: ids[0], Round: 5, Participants: ids, StateHash: Hash{11}, Offsets: []uint32{7, 0}},
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

// A lag is whole milliseconds, 1 ms to MaxLag: a lag under a millisecond
// still says "late", a negative or huge one does not encode, and a zero or
// huge one does not decode.
func TestMessageLagBounds(t *testing.T) {
	id := testIDs(11, 1)[0]
	m := Message{Type: MsgJoin, From: id, Round: 3, Lag: 300 * time.Microsecond}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnmarshalMessage(b); err != nil || got.Lag != time.Millisecond {
		t.Errorf("a 0.3 ms lag came back as %v (%v), want 1ms", got.Lag, err)
	}
	for _, lag := range []time.Duration{-time.Second, MaxLag + time.Millisecond} {
		if _, err := (&Message{Type: MsgJoin, From: id, Lag: lag}).MarshalBinary(); err == nil {
			t.Errorf("lag %v encoded", lag)
		}
	}
	for _, ms := range []uint32{0, uint32(MaxLag.Milliseconds()) + 1} {
		c := slices.Clone(b)
		binary.LittleEndian.PutUint32(c[len(c)-4:], ms)
		if _, err := UnmarshalMessage(c); err == nil {
			t.Errorf("a lag of %d ms decoded", ms)
		}
	}
}

// Ready offsets come one per participant: another count does not encode
// or decode.
func TestMessageOffsetsMatchParticipants(t *testing.T) {
	ids := testIDs(12, 3)
	m := Message{Type: MsgAnnounce, From: ids[0], Round: 2, Participants: ids, Offsets: []uint32{0, 1, 2}}
	if _, err := (&Message{Type: MsgAnnounce, From: ids[0], Participants: ids, Offsets: []uint32{1}}).MarshalBinary(); err == nil {
		t.Error("one offset for three participants encoded")
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := slices.Clone(b)
	binary.LittleEndian.PutUint16(c[len(c)-2-4*3:], 2) // the count: two, with three offsets' bytes after it
	if _, err := UnmarshalMessage(c); err == nil {
		t.Error("two offsets for three participants decoded")
	}
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

func TestMessageRoundTripWithEveryField(t *testing.T) {
	ids := testIDs(10, 3)
	m := Message{Type: MsgReduced, From: ids[0], To: ids[1], Round: 7, Attempt: 1, Part: 2, ReducerAttempt: 1,
		Membership: Hash{1}, StateHash: Hash{2}, ThetaHash: Hash{3}, Root: Hash{4},
		Participants: ids, Roots: []Hash{{5}, {6}, {7}}, RootSigs: [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64)},
		Contributors: ids[:2], Dropped: ids[2:], DropReasons: []DropReason{DropNormHigh}, Proof: []Hash{{8}},
		Headers: []ReducedHeader{{Reducer: ids[2], Part: 1, Attempt: 0, Result: Hash{9}, Sig: make([]byte, 64)}},
		Sig:     make([]byte, 64), Payload: []byte{1, 2, 3}, Audit: []byte{4, 5}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
	for _, bad := range []func(m *Message){
		func(m *Message) { m.DropReasons = nil },                      // reasons must match dropped
		func(m *Message) { m.Proof = make([]Hash, MaxProofHashes+1) }, // proof bound
	} {
		c := m
		bad(&c)
		if _, err := c.MarshalBinary(); err == nil {
			t.Error("a malformed message encoded")
		}
	}
	// A signature of the wrong length and an unknown drop reason are refused.
	for _, mutate := range []func(b []byte) []byte{
		func(b []byte) []byte { c := slices.Clone(b); c[len(c)-4-3-4-64-1] = 63; return c },        // the sig's length, before payload and audit
		func(b []byte) []byte { c := slices.Clone(b); c[len(c)-4] = 0; c[len(c)-3] = 0; return c }, // an empty audit is not canonical,
	} {
		if _, err := UnmarshalMessage(mutate(b)); err == nil {
			t.Error("a corrupted message decoded")
		}
	}
}

func FuzzUnmarshalEvidence(f *testing.F) {
	ids := testIDs(11, 2)
	for _, e := range []Evidence{
		{Kind: EvidenceEquivocation, Job: "j", Offender: ids[0], Round: 1, Membership: Hash{1},
			A: ReducedHeader{Reducer: ids[0], Result: Hash{2}, Sig: make([]byte, 64)}, B: ReducedHeader{Reducer: ids[0], Result: Hash{3}, Sig: make([]byte, 64)}},
		{Kind: EvidencePartMismatch, Job: "j", Offender: ids[1], Round: 2, Commitment: Commitment{Worker: ids[1], NumParams: 10, BlockSize: 4, Codec: CodecInt8, Sig: make([]byte, 64)},
			Participants: ids, Roots: []Hash{{4}, {5}}, Proof: []Hash{{6}}, PartSig: make([]byte, 64), Payload: []byte{1, 2}},
	} {
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := UnmarshalEvidence(b)
		if err != nil {
			return
		}
		_ = e.Verify() // must not panic, whatever it holds
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded evidence does not encode: %v", err)
		}
		if _, err := UnmarshalEvidence(again); err != nil {
			t.Fatalf("re-encoded evidence does not decode: %v", err)
		}
	})
}
