package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/gridmind/gridmind"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 12 hex digits, for logs and tables.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is unset.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("train: hash %q is not 64 hex digits", shorten(s))
	}
	copy(h[:], b)
	return h, nil
}

// HashTheta is the canonical hash of a weight vector: SHA-256 over its
// float32 values as little-endian bytes, in the Trainer's canonical order.
// Equal hashes mean bitwise-identical weights.
func HashTheta(theta []float32) Hash {
	h := sha256.New()
	buf := make([]byte, 0, 4096)
	for i := 0; i < len(theta); i += 1024 {
		buf = appendFloats(buf[:0], theta[i:min(i+1024, len(theta))])
		h.Write(buf)
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// GlobalState is what every worker holds identically at the start of a
// round: the weights θ_r, the outer optimizer's momentum, and the
// participants of the round that produced it (the next leader is chosen
// among them). Values handed out by a Coordinator are never modified by it
// afterwards, and must not be modified by the receiver.
type GlobalState struct {
	Round        uint64
	Theta        []float32
	Velocity     []float32
	Participants []gridmind.NodeID // sorted
}

// NewGlobalState starts a job: round 0, zero momentum, the given starting
// workers (sorted and de-duplicated into the participant list).
func NewGlobalState(theta []float32, workers []gridmind.NodeID) (*GlobalState, error) {
	if len(theta) == 0 {
		return nil, errors.New("train: empty parameter vector")
	}
	for i, v := range theta {
		if !finite32(v) {
			return nil, fmt.Errorf("%w in the initial weights at element %d", ErrNonFinite, i)
		}
	}
	p := sortedUnique(workers)
	if len(p) == 0 {
		return nil, errors.New("train: a job needs at least one worker")
	}
	return &GlobalState{Theta: slices.Clone(theta), Velocity: make([]float32, len(theta)), Participants: p}, nil
}

func sortedUnique(ids []gridmind.NodeID) []gridmind.NodeID {
	p := slices.Clone(ids)
	slices.Sort(p)
	return slices.Compact(p)
}

// Hash covers every field, so a fetched state that matches it is exactly
// the state its announcer held (momentum and participants included).
func (s *GlobalState) Hash() Hash {
	h := sha256.New()
	h.Write([]byte(stateDomain))
	if len(s.Velocity) == len(s.Theta) { // else MarshalBinary fails and only the domain is hashed
		// The bytes of MarshalBinary, streamed: no copy of a large state.
		b := make([]byte, 0, 4096)
		b = append(b, stateMagic...)
		b = append(b, stateVersion)
		b = binary.LittleEndian.AppendUint64(b, s.Round)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Theta)))
		h.Write(b)
		for _, x := range [][]float32{s.Theta, s.Velocity} {
			for i := 0; i < len(x); i += 1024 {
				b = appendFloats(b[:0], x[i:min(i+1024, len(x))])
				h.Write(b)
			}
		}
		h.Write(appendIDs(b[:0], s.Participants))
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// ThetaHash is HashTheta(s.Theta).
func (s *GlobalState) ThetaHash() Hash { return HashTheta(s.Theta) }

// Clone returns a deep copy.
func (s *GlobalState) Clone() *GlobalState {
	return &GlobalState{Round: s.Round, Theta: slices.Clone(s.Theta), Velocity: slices.Clone(s.Velocity), Participants: slices.Clone(s.Participants)}
}

const (
	stateDomain  = "gridmind/train/state/v1"
	stateMagic   = "GMST"
	stateVersion = 1
	// MaxNodeIDLen bounds a node id on the wire (ed25519 peer ids are 52 characters).
	MaxNodeIDLen = 128
	// MaxWorkers bounds a participant list on the wire.
	MaxWorkers = 4096
)

// MarshalBinary encodes the state:
//
//	"GMST" | version 1 | round uint64 | n uint32 | θ [n]float32 | velocity [n]float32 |
//	count uint16 | count × (len uint16 | id)
func (s *GlobalState) MarshalBinary() ([]byte, error) {
	if len(s.Velocity) != len(s.Theta) {
		return nil, fmt.Errorf("train: state has %d weights and %d momentum values", len(s.Theta), len(s.Velocity))
	}
	b := make([]byte, 0, 4+1+8+4+8*len(s.Theta)+2+54*len(s.Participants))
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, s.Round)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Theta)))
	b = appendFloats(b, s.Theta)
	b = appendFloats(b, s.Velocity)
	return appendIDs(b, s.Participants), nil
}

// UnmarshalGlobalState decodes a state of at most maxParams weights. It
// never panics and refuses non-finite values and trailing bytes.
func UnmarshalGlobalState(b []byte, maxParams int) (*GlobalState, error) {
	r := reader{b: b}
	if string(r.bytes(4)) != stateMagic || r.u8() != stateVersion {
		return nil, errors.New("train: not a global state (bad magic or version)")
	}
	s := &GlobalState{Round: r.u64()}
	n := int(r.u32())
	if r.err == nil && (n <= 0 || n > maxParams || 8*n > len(r.b)) {
		return nil, fmt.Errorf("train: state of %d parameters (limit %d, %d bytes left)", n, maxParams, len(r.b))
	}
	s.Theta = r.floats(n)
	s.Velocity = r.floats(n)
	s.Participants = r.ids()
	if r.err != nil {
		return nil, fmt.Errorf("train: global state: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("train: global state: %d trailing bytes", len(r.b))
	}
	if len(s.Participants) == 0 || !slices.IsSorted(s.Participants) {
		return nil, errors.New("train: global state: participants missing or not sorted")
	}
	for i := range s.Theta {
		if !finite32(s.Theta[i]) || !finite32(s.Velocity[i]) {
			return nil, fmt.Errorf("%w in the global state at element %d", ErrNonFinite, i)
		}
	}
	return s, nil
}

func appendIDs(b []byte, ids []gridmind.NodeID) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(ids)))
	for _, id := range ids {
		b = appendID(b, id)
	}
	return b
}

func appendID(b []byte, id gridmind.NodeID) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(id)))
	return append(b, id...)
}

// reader decodes little-endian fields, remembering the first error so
// callers check once at the end.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = errShort
		}
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) floats(n int) []float32 {
	b := r.bytes(4 * n)
	if b == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func (r *reader) id() gridmind.NodeID {
	n := int(r.u16())
	if r.err == nil && n > MaxNodeIDLen {
		r.err = fmt.Errorf("node id of %d bytes", n)
		return ""
	}
	return gridmind.NodeID(r.bytes(n))
}

func (r *reader) ids() []gridmind.NodeID {
	n := int(r.u16())
	if r.err == nil && n > MaxWorkers {
		r.err = fmt.Errorf("%d node ids (limit %d)", n, MaxWorkers)
	}
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]gridmind.NodeID, 0, min(n, len(r.b)/2))
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.id())
	}
	return out
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
