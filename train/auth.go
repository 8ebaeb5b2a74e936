package train

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
)

// This file makes the round attributable. Every statement a worker makes
// about vector data is signed with its node key over bytes that name the
// job, the round and the slot the statement fills, so a third party (a
// peer, later the ledger) can check who said what:
//
//   - a commitment: "my pseudo-gradient for round r, trained from state S,
//     has block Merkle root R" — sent in "ready", relayed by the leader in
//     the announcement, so every participant holds every root;
//   - a part: "this is part j of my pseudo-gradient, for reducer attempt a
//     of membership M" — its reducer checks it against the root;
//   - a reduced part: "I, reducer of part j at attempt a of membership M,
//     combined these contributors, dropped these, and the result is P" —
//     accepted only when signed by the reducer that the attempt names.
//
// Two signed statements that cannot both be honest are Evidence.

const sigDomain = "gridmind/train/v2/"

// MaxJobLen bounds the job name that signatures cover.
const MaxJobLen = 128

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// commitBytes is what a worker signs to commit to its pseudo-gradient.
func commitBytes(job string, worker gridmind.NodeID, round uint64, start, root Hash, numParams, blockSize int, codec Codec) []byte {
	b := append([]byte(sigDomain), "commit"...)
	b = appendString(b, job)
	b = appendID(b, worker)
	b = binary.LittleEndian.AppendUint64(b, round)
	b = append(b, start[:]...)
	b = append(b, root[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(numParams))
	b = binary.LittleEndian.AppendUint32(b, uint32(blockSize))
	return append(b, byte(codec))
}

// partBytes is what a contributor signs over one part it sends.
func partBytes(job string, sender gridmind.NodeID, round uint64, membership Hash, part, attempt uint32, payload []byte) []byte {
	b := append([]byte(sigDomain), "part"...)
	b = appendString(b, job)
	b = appendID(b, sender)
	b = binary.LittleEndian.AppendUint64(b, round)
	b = append(b, membership[:]...)
	b = binary.LittleEndian.AppendUint32(b, part)
	b = binary.LittleEndian.AppendUint32(b, attempt)
	sum := sha256.Sum256(payload)
	return append(b, sum[:]...)
}

// ResultHash binds everything a reduced part says: who was combined, who
// was dropped and why, and the combined bytes.
func ResultHash(contributors, dropped []gridmind.NodeID, reasons []DropReason, payload []byte) Hash {
	b := []byte(sigDomain + "result")
	b = appendIDs(b, contributors)
	b = appendIDs(b, dropped)
	for _, r := range reasons {
		b = append(b, byte(r))
	}
	sum := sha256.Sum256(payload)
	b = append(b, sum[:]...)
	return Hash(sha256.Sum256(b))
}

// ReducedHeader is a reducer's signed claim about one reduced part,
// without the vector: small enough to go in every "done", so that two
// workers who were sent different results for the same slot find out.
type ReducedHeader struct {
	Reducer gridmind.NodeID
	Part    uint32
	Attempt uint32
	Result  Hash // ResultHash of the reduced part
	Sig     []byte
}

func reducedBytes(job string, round uint64, membership Hash, h ReducedHeader) []byte {
	b := append([]byte(sigDomain), "reduced"...)
	b = appendString(b, job)
	b = appendID(b, h.Reducer)
	b = binary.LittleEndian.AppendUint64(b, round)
	b = append(b, membership[:]...)
	b = binary.LittleEndian.AppendUint32(b, h.Part)
	b = binary.LittleEndian.AppendUint32(b, h.Attempt)
	return append(b, h.Result[:]...)
}

// verifySig checks sig by id's key over msg.
func verifySig(id gridmind.NodeID, msg, sig []byte) error {
	pub, err := id.PublicKey()
	if err != nil {
		return fmt.Errorf("%w: %s has no ed25519 key: %v", ErrBadSignature, id.Short(), err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w by %s", ErrBadSignature, id.Short())
	}
	return nil
}

// ErrBadSignature: a signed statement of the round does not verify.
var ErrBadSignature = errors.New("train: bad signature")

// Commitment is a worker's signed promise about its pseudo-gradient of a
// round; a participant's parts must add up to its Root.
type Commitment struct {
	Worker    gridmind.NodeID
	Round     uint64
	Start     Hash // the state it trained from
	Root      Hash // Merkle root over the blocks of its decoded pseudo-gradient
	NumParams int
	BlockSize int
	Codec     Codec
	Sig       []byte
}

// Verify checks the signature.
func (c Commitment) Verify(job string) error {
	return verifySig(c.Worker, commitBytes(job, c.Worker, c.Round, c.Start, c.Root, c.NumParams, c.BlockSize, c.Codec), c.Sig)
}

// SignCommitment fills c.Sig with key (whose node id must be c.Worker).
func SignCommitment(key ed25519.PrivateKey, job string, c Commitment) Commitment {
	c.Sig = ed25519.Sign(key, commitBytes(job, c.Worker, c.Round, c.Start, c.Root, c.NumParams, c.BlockSize, c.Codec))
	return c
}

// SignPart fills m.Sig: m is a part from m.From.
func SignPart(key ed25519.PrivateKey, job string, m *Message) {
	m.Sig = ed25519.Sign(key, partBytes(job, m.From, m.Round, m.Membership, m.Part, m.ReducerAttempt, m.Payload))
}

// SignReduced fills m.Sig and returns the header: m is a reduced part
// whose reducer is the key's owner (m.From may be a relay later).
func SignReduced(key ed25519.PrivateKey, job string, reducer gridmind.NodeID, m *Message) ReducedHeader {
	h := ReducedHeader{Reducer: reducer, Part: m.Part, Attempt: m.ReducerAttempt,
		Result: ResultHash(m.Contributors, m.Dropped, m.DropReasons, m.Payload)}
	h.Sig = ed25519.Sign(key, reducedBytes(job, m.Round, m.Membership, h))
	m.Sig = h.Sig
	return h
}

// Verify checks a header's signature for round and membership.
func (h ReducedHeader) Verify(job string, round uint64, membership Hash) error {
	return verifySig(h.Reducer, reducedBytes(job, round, membership, h), h.Sig)
}
