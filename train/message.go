package train

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
)

// MsgType names what a Message is for.
type MsgType uint8

const (
	// MsgReady: worker → round leader. Its pseudo-gradient for Round is
	// ready and it started the round from the state with StateHash.
	MsgReady MsgType = iota + 1
	// MsgJoin: worker → job. It is fetching the state of Round and will be
	// ready for it, so that round's leader should wait for it.
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
	// of the whole state for round Round+1 (StateHash).
	MsgDone
)

var msgNames = [...]string{"", "ready", "join", "announce", "part", "reduced", "done"}

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
	Membership     Hash   // Part, Reduced: MembershipHash of the announcement being reduced
	StateHash      Hash   // Ready, Announce, Done
	ThetaHash      Hash   // Done
	Participants   []gridmind.NodeID
	Contributors   []gridmind.NodeID
	Payload        []byte // Part, Reduced: an encoded vector
}

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
// starts from and the participant list. Two announcements with the same
// membership (a takeover leader re-announcing what it already saw) are the
// same all-reduce, so nobody restarts it.
func MembershipHash(round uint64, state Hash, participants []gridmind.NodeID) Hash {
	b := []byte("gridmind/train/membership/v1")
	b = binary.LittleEndian.AppendUint64(b, round)
	b = append(b, state[:]...)
	b = appendIDs(b, participants)
	return Hash(sha256.Sum256(b))
}

const (
	msgMagic   = "GMTM"
	msgVersion = 1

	flagMembership = 1 << iota
	flagState
	flagTheta
)

// MarshalBinary encodes m:
//
//	"GMTM" | version 1 | type | flags | round uint64 | attempt, part, reducerAttempt uint32 |
//	from, to (len uint16 | id) | [membership] [stateHash] [thetaHash] (present per flags) |
//	participants, contributors (count uint16 | ids) | payload (len uint32 | bytes)
func (m *Message) MarshalBinary() ([]byte, error) {
	if len(m.Participants) > MaxWorkers || len(m.Contributors) > MaxWorkers {
		return nil, fmt.Errorf("train: message lists %d participants and %d contributors (limit %d)", len(m.Participants), len(m.Contributors), MaxWorkers)
	}
	for _, id := range append([]gridmind.NodeID{m.From, m.To}, append(m.Participants, m.Contributors...)...) {
		if len(id) > MaxNodeIDLen {
			return nil, fmt.Errorf("train: node id of %d bytes (limit %d)", len(id), MaxNodeIDLen)
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
	b := make([]byte, 0, 160+len(m.Payload)+54*(len(m.Participants)+len(m.Contributors)))
	b = append(b, msgMagic...)
	b = append(b, msgVersion, byte(m.Type), flags)
	b = binary.LittleEndian.AppendUint64(b, m.Round)
	b = binary.LittleEndian.AppendUint32(b, m.Attempt)
	b = binary.LittleEndian.AppendUint32(b, m.Part)
	b = binary.LittleEndian.AppendUint32(b, m.ReducerAttempt)
	b = appendID(b, m.From)
	b = appendID(b, m.To)
	if flags&flagMembership != 0 {
		b = append(b, m.Membership[:]...)
	}
	if flags&flagState != 0 {
		b = append(b, m.StateHash[:]...)
	}
	if flags&flagTheta != 0 {
		b = append(b, m.ThetaHash[:]...)
	}
	b = appendIDs(b, m.Participants)
	b = appendIDs(b, m.Contributors)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Payload)))
	return append(b, m.Payload...), nil
}

// UnmarshalMessage decodes what MarshalBinary wrote. It never panics and
// refuses unknown types, oversized lists and trailing bytes. The payload
// aliases b.
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
	}{{flagMembership, &m.Membership}, {flagState, &m.StateHash}, {flagTheta, &m.ThetaHash}} {
		if flags&f.bit != 0 {
			copy(f.dst[:], r.bytes(len(f.dst)))
		}
	}
	m.Participants = r.ids()
	m.Contributors = r.ids()
	m.Payload = r.bytes(int(r.u32()))
	if r.err != nil {
		return Message{}, fmt.Errorf("train: message: %w", r.err)
	}
	if len(r.b) != 0 {
		return Message{}, fmt.Errorf("train: message: %d trailing bytes", len(r.b))
	}
	if m.Type < MsgReady || m.Type > MsgDone {
		return Message{}, fmt.Errorf("train: message type %d unknown", m.Type)
	}
	if flags&^(flagMembership|flagState|flagTheta) != 0 {
		return Message{}, fmt.Errorf("train: message flags %#x unknown", flags)
	}
	if m.From == "" {
		return Message{}, errors.New("train: message without a sender")
	}
	return m, nil
}
