package train

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
)

// MsgType names what a Message is for.
type MsgType uint8

const (
	// MsgReady: worker → round leader. Its pseudo-gradient for Round is
	// ready and it started the round from the state with StateHash.
	MsgReady MsgType = iota + 1
	// MsgJoin: worker → job. It is fetching the state of Round (or was just
	// left out of Round-1 and will fetch it) and will be ready for it, so
	// that round's leader should wait for it. Lag, if set, is how much
	// longer its training of Round-1 still needed when that round went
	// ahead without it.
	MsgJoin
	// MsgAnnounce: leader → job. The participants of Round (sorted; part i
	// is reduced by Participants[i]) and the state they start from.
	MsgAnnounce
	// MsgPart: participant → reducer (bulk). Its encoded pseudo-gradient for
	// part Part, sent to reducer attempt ReducerAttempt.
	MsgPart
	// MsgReduced: reducer → participants (bulk). The combined part and who
	// contributed to it; receivers accept it as it is.
	MsgReduced
	// MsgDone: participant → job. The hashes of θ_{Round+1} (ThetaHash) and
	// of the whole state for round Round+1 (StateHash), and the signed
	// headers of the reduced parts it applied (Headers), so that a
	// reducer's equivocation comes to light.
	MsgDone
	// MsgEvidence: worker → job. Evidence (Payload) that a worker broke the
	// protocol; every receiver checks it and excludes the offender.
	MsgEvidence
)

var msgNames = [...]string{"", "ready", "join", "announce", "part", "reduced", "done", "evidence"}

func (t MsgType) String() string {
	if int(t) < len(msgNames) && t != 0 {
		return msgNames[t]
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Message is everything the Coordinator says to its peers; one flat struct
// as in raftpb, where each type uses some fields.
type Message struct {
	Type           MsgType
	From           gridmind.NodeID
	To             gridmind.NodeID // empty: broadcast to the job
	Round          uint64
	Attempt        uint32 // leader attempt (Ready, Join, Announce)
	Part           uint32 // Part, Reduced
	ReducerAttempt uint32 // Part, Reduced: 0 for the part's own reducer, a for Participants[(part+a) mod n]
	Membership     Hash   // Part, Reduced, Done: MembershipHash of the announcement being reduced
	StateHash      Hash   // Ready, Announce, Done
	ThetaHash      Hash   // Done
	Root           Hash   // Ready: the Merkle root of the sender's pseudo-gradient (see Commitment)
	Participants   []gridmind.NodeID
	Roots          []Hash   // Announce: each participant's committed root, in Participants order
	RootSigs       [][]byte // Announce: each participant's commitment signature
	Contributors   []gridmind.NodeID
	Dropped        []gridmind.NodeID // Reduced: contributions the reducer's screen left out
	DropReasons    []DropReason      // Reduced: why, one per Dropped
	Proof          []Hash            // Part: the range proof of the part against the sender's root
	Headers        []ReducedHeader   // Done: the reduced parts applied, in part order
	Sig            []byte            // Ready: commitment signature; Part: the sender's; Reduced: the reducer's
	Payload        []byte            // Part, Reduced: an encoded vector; Evidence: encoded Evidence
	// Audit is opaque to the protocol: what the sender commits to for
	// verification (diloco puts its signed verify.Commitment on its Done),
	// at most MaxAuditBytes.
	Audit []byte
	// Lag (Join): how much longer the sender's training of the round it
	// was left out of still needed; leaders widen their ready wait by it
	// (leader.go, noteLag). Sent in whole milliseconds, at most MaxLag.
	Lag time.Duration
	// Offsets (Announce, optional): when each participant's "ready"
	// reached the leader, in milliseconds after the first, in
	// Participants order. Advisory: a participant learns how long before
	// the last one it was ready (Coordinator.ReadyAhead), which a worker
	// with elastic steps trains on through; it is not in the membership
	// hash, and a leader that lies about it only makes workers train a
	// little more or less (within the job's step range).
	Offsets []uint32
}

// MaxLag bounds Message.Lag: no leader waits longer than its
// MaxReadyWait anyway, and a day is far beyond any.
const MaxLag = 24 * time.Hour

// MaxAuditBytes bounds Message.Audit (a verify.Commitment with the most
// checkpoints is under 9 KiB).
const MaxAuditBytes = 16 << 10

// Bulk reports whether m carries vector data (send it over a stream)
// rather than coordination (send it signed over the job's control channel).
func (m *Message) Bulk() bool { return m.Type == MsgPart || m.Type == MsgReduced }

// Broadcast reports whether m goes to every worker of the job.
func (m *Message) Broadcast() bool { return m.To == "" }

func (m Message) String() string {
	to := "all"
	if m.To != "" {
		to = m.To.Short()
	}
	s := fmt.Sprintf("%s r%d %s→%s", m.Type, m.Round, m.From.Short(), to)
	switch m.Type {
	case MsgReady, MsgJoin, MsgAnnounce:
		s += fmt.Sprintf(" attempt %d", m.Attempt)
	case MsgPart, MsgReduced:
		s += fmt.Sprintf(" part %d/%d %dB", m.Part, m.ReducerAttempt, len(m.Payload))
	}
	return s
}

// MembershipHash identifies one all-reduce: the round, the state everyone
// starts from, the participant list and the roots each committed to. Two
// announcements with the same membership (a takeover leader re-announcing
// what it already saw) are the same all-reduce, so nobody restarts it.
func MembershipHash(round uint64, state Hash, participants []gridmind.NodeID, roots []Hash) Hash {
	b := []byte("gridmind/train/membership/v2")
	b = binary.LittleEndian.AppendUint64(b, round)
	b = append(b, state[:]...)
	b = appendIDs(b, participants)
	for _, r := range roots {
		b = append(b, r[:]...)
	}
	return Hash(sha256.Sum256(b))
}

const (
	msgMagic   = "GMTM"
	msgVersion = 2

	flagMembership = 1 << iota
	flagState
	flagTheta
	flagRoot
	flagAudit
	flagLag

	flagOffsets = 1 // below the iota's first bit
)

// MarshalBinary encodes m:
//
//	"GMTM" | version 2 | type | flags | round uint64 | attempt, part, reducerAttempt uint32 |
//	from, to (len uint16 | id) | [membership] [stateHash] [thetaHash] [root] (present per flags) |
//	participants, contributors, dropped (count uint16 | ids) | reasons (count uint16 | bytes) |
//	roots, proof (count uint16 | 32-byte hashes) | rootSigs (count uint16 | sigs) |
//	headers (count uint16 | reducer id, part, attempt uint32, result hash, sig) | sig |
//	payload (len uint32 | bytes) | [audit (len uint16 | bytes)] [lag uint32 milliseconds, 1 or more]
//	[offsets (count uint16, the participants' | uint32 milliseconds each)] (the last three present per flags)
//
// where a sig is len uint8 | bytes (0 or 64).
func (m *Message) MarshalBinary() ([]byte, error) {
	if len(m.Participants) > MaxWorkers || len(m.Contributors) > MaxWorkers || len(m.Dropped) > MaxWorkers ||
		len(m.Roots) > MaxWorkers || len(m.RootSigs) > MaxWorkers || len(m.Headers) > MaxWorkers {
		return nil, fmt.Errorf("train: message lists more than %d workers", MaxWorkers)
	}
	if len(m.Proof) > MaxProofHashes || len(m.DropReasons) != len(m.Dropped) {
		return nil, fmt.Errorf("train: message with %d proof hashes, %d drop reasons for %d dropped", len(m.Proof), len(m.DropReasons), len(m.Dropped))
	}
	if len(m.Audit) > MaxAuditBytes {
		return nil, fmt.Errorf("train: audit of %d bytes (limit %d)", len(m.Audit), MaxAuditBytes)
	}
	if m.Lag < 0 || m.Lag > MaxLag {
		return nil, fmt.Errorf("train: lag %v (want 0 to %v)", m.Lag, MaxLag)
	}
	if len(m.Offsets) > 0 && len(m.Offsets) != len(m.Participants) {
		return nil, fmt.Errorf("train: %d ready offsets for %d participants", len(m.Offsets), len(m.Participants))
	}
	ids := append([]gridmind.NodeID{m.From, m.To}, m.Participants...)
	ids = append(append(ids, m.Contributors...), m.Dropped...)
	for _, h := range m.Headers {
		ids = append(ids, h.Reducer)
		if len(h.Sig) > 255 {
			return nil, errors.New("train: header signature too long")
		}
	}
	for _, id := range ids {
		if len(id) > MaxNodeIDLen {
			return nil, fmt.Errorf("train: node id of %d bytes (limit %d)", len(id), MaxNodeIDLen)
		}
	}
	for _, sig := range append([][]byte{m.Sig}, m.RootSigs...) {
		if len(sig) > 255 {
			return nil, errors.New("train: signature too long")
		}
	}
	var flags byte
	if !m.Membership.IsZero() {
		flags |= flagMembership
	}
	if !m.StateHash.IsZero() {
		flags |= flagState
	}
	if !m.ThetaHash.IsZero() {
		flags |= flagTheta
	}
	if !m.Root.IsZero() {
		flags |= flagRoot
	}
	if len(m.Audit) > 0 {
		flags |= flagAudit
	}
	if len(m.Offsets) > 0 {
		flags |= flagOffsets
	}
	lagMS := uint32(m.Lag.Milliseconds())
	if m.Lag > 0 {
		lagMS = max(lagMS, 1) // a lag under a millisecond still says "late"
		flags |= flagLag
	}
	b := make([]byte, 0, 256+len(m.Payload)+len(m.Audit)+54*len(ids)+32*(len(m.Roots)+len(m.Proof))+65*len(m.RootSigs)+170*len(m.Headers))
	b = append(b, msgMagic...)
	b = append(b, msgVersion, byte(m.Type), flags)
	b = binary.LittleEndian.AppendUint64(b, m.Round)
	b = binary.LittleEndian.AppendUint32(b, m.Attempt)
	b = binary.LittleEndian.AppendUint32(b, m.Part)
	b = binary.LittleEndian.AppendUint32(b, m.ReducerAttempt)
	b = appendID(b, m.From)
	b = appendID(b, m.To)
	for _, f := range []struct {
		bit byte
		h   Hash
	}{{flagMembership, m.Membership}, {flagState, m.StateHash}, {flagTheta, m.ThetaHash}, {flagRoot, m.Root}} {
		if flags&f.bit != 0 {
			b = append(b, f.h[:]...)
		}
	}
	b = appendIDs(b, m.Participants)
	b = appendIDs(b, m.Contributors)
	b = appendIDs(b, m.Dropped)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.DropReasons)))
	for _, r := range m.DropReasons {
		b = append(b, byte(r))
	}
	b = appendHashes(b, m.Roots)
	b = appendHashes(b, m.Proof)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.RootSigs)))
	for _, sig := range m.RootSigs {
		b = appendSig(b, sig)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Headers)))
	for _, h := range m.Headers {
		b = appendID(b, h.Reducer)
		b = binary.LittleEndian.AppendUint32(b, h.Part)
		b = binary.LittleEndian.AppendUint32(b, h.Attempt)
		b = append(b, h.Result[:]...)
		b = appendSig(b, h.Sig)
	}
	b = appendSig(b, m.Sig)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Payload)))
	b = append(b, m.Payload...)
	if flags&flagAudit != 0 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Audit)))
		b = append(b, m.Audit...)
	}
	if flags&flagLag != 0 {
		b = binary.LittleEndian.AppendUint32(b, lagMS)
	}
	if flags&flagOffsets != 0 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Offsets)))
		for _, o := range m.Offsets {
			b = binary.LittleEndian.AppendUint32(b, o)
		}
	}
	return b, nil
}

func appendHashes(b []byte, hs []Hash) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hs)))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

func appendSig(b, sig []byte) []byte {
	b = append(b, byte(len(sig)))
	return append(b, sig...)
}

func (r *reader) hashes(limit int) []Hash {
	n := int(r.u16())
	if r.err == nil && n > limit {
		r.err = fmt.Errorf("%d hashes (limit %d)", n, limit)
	}
	if r.err != nil || n == 0 {
		return nil
	}
	raw := r.bytes(32 * n)
	if raw == nil {
		return nil
	}
	out := make([]Hash, n)
	for i := range out {
		copy(out[i][:], raw[32*i:])
	}
	return out
}

func (r *reader) sig() []byte {
	n := int(r.u8())
	if r.err == nil && n != 0 && n != ed25519SigLen {
		r.err = fmt.Errorf("signature of %d bytes", n)
		return nil
	}
	if n == 0 {
		return nil
	}
	return r.bytes(n)
}

const ed25519SigLen = 64

// UnmarshalMessage decodes what MarshalBinary wrote. It never panics and
// refuses unknown types, oversized lists, malformed signatures and trailing
// bytes; every count is checked against the bytes left before anything is
// allocated for it. The payload aliases b.
func UnmarshalMessage(b []byte) (Message, error) {
	r := reader{b: b}
	if string(r.bytes(4)) != msgMagic || r.u8() != msgVersion {
		return Message{}, errors.New("train: not a training message (bad magic or version)")
	}
	m := Message{Type: MsgType(r.u8())}
	flags := r.u8()
	m.Round = r.u64()
	m.Attempt = r.u32()
	m.Part = r.u32()
	m.ReducerAttempt = r.u32()
	m.From = r.id()
	m.To = r.id()
	for _, f := range []struct {
		bit byte
		dst *Hash
	}{{flagMembership, &m.Membership}, {flagState, &m.StateHash}, {flagTheta, &m.ThetaHash}, {flagRoot, &m.Root}} {
		if flags&f.bit != 0 {
			copy(f.dst[:], r.bytes(len(f.dst)))
		}
	}
	m.Participants = r.ids()
	m.Contributors = r.ids()
	m.Dropped = r.ids()
	if n := int(r.u16()); r.err == nil {
		if n != len(m.Dropped) {
			return Message{}, fmt.Errorf("train: message: %d drop reasons for %d dropped", n, len(m.Dropped))
		}
		for _, c := range r.bytes(n) {
			m.DropReasons = append(m.DropReasons, DropReason(c))
			if !DropReason(c).valid() {
				return Message{}, fmt.Errorf("train: message: drop reason %d unknown", c)
			}
		}
	}
	m.Roots = r.hashes(MaxWorkers)
	m.Proof = r.hashes(MaxProofHashes)
	if n := int(r.u16()); r.err == nil {
		if n > MaxWorkers || n > len(r.b) {
			return Message{}, fmt.Errorf("train: message: %d signatures", n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			m.RootSigs = append(m.RootSigs, r.sig())
		}
	}
	if n := int(r.u16()); r.err == nil {
		if n > MaxWorkers || n > len(r.b)/42 {
			return Message{}, fmt.Errorf("train: message: %d headers", n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			h := ReducedHeader{Reducer: r.id(), Part: r.u32(), Attempt: r.u32()}
			copy(h.Result[:], r.bytes(32))
			h.Sig = r.sig()
			m.Headers = append(m.Headers, h)
		}
	}
	m.Sig = r.sig()
	m.Payload = r.bytes(int(r.u32()))
	if flags&flagAudit != 0 {
		n := int(r.u16())
		if r.err == nil && (n == 0 || n > MaxAuditBytes) {
			return Message{}, fmt.Errorf("train: message: audit of %d bytes (want 1 to %d)", n, MaxAuditBytes)
		}
		m.Audit = r.bytes(n)
	}
	if flags&flagLag != 0 {
		ms := r.u32()
		if r.err == nil && (ms == 0 || time.Duration(ms)*time.Millisecond > MaxLag) {
			return Message{}, fmt.Errorf("train: message: lag of %d ms (want 1 to %d)", ms, MaxLag.Milliseconds())
		}
		m.Lag = time.Duration(ms) * time.Millisecond
	}
	if flags&flagOffsets != 0 {
		n := int(r.u16())
		if r.err == nil && (n == 0 || n != len(m.Participants) || 4*n > len(r.b)) {
			return Message{}, fmt.Errorf("train: message: %d ready offsets for %d participants", n, len(m.Participants))
		}
		for i := 0; i < n && r.err == nil; i++ {
			m.Offsets = append(m.Offsets, r.u32())
		}
	}
	if r.err != nil {
		return Message{}, fmt.Errorf("train: message: %w", r.err)
	}
	if len(r.b) != 0 {
		return Message{}, fmt.Errorf("train: message: %d trailing bytes", len(r.b))
	}
	if m.Type < MsgReady || m.Type > MsgEvidence {
		return Message{}, fmt.Errorf("train: message type %d unknown", m.Type)
	}
	if flags&^(flagMembership|flagState|flagTheta|flagRoot|flagAudit|flagLag|flagOffsets) != 0 {
		return Message{}, fmt.Errorf("train: message flags %#x unknown", flags)
	}
	if m.From == "" {
		return Message{}, errors.New("train: message without a sender")
	}
	if len(m.Roots) != len(m.RootSigs) || (len(m.Roots) > 0 && len(m.Roots) != len(m.Participants)) {
		return Message{}, fmt.Errorf("train: message with %d roots and %d root signatures for %d participants", len(m.Roots), len(m.RootSigs), len(m.Participants))
	}
	return m, nil
}
