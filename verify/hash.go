package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/gridmind/gridmind"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 12 hex digits, for logs.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// IsZero reports whether h is all zeros (not set).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText prints the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("verify: hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// hasher builds a domain-separated SHA-256 over length-prefixed fields, so
// no two different field lists hash the same bytes.
type hasher struct{ buf []byte }

func newHasher(domain string) *hasher {
	h := &hasher{buf: make([]byte, 0, 128)}
	h.str(domain)
	return h
}

func (h *hasher) str(s string) *hasher {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
	return h
}

func (h *hasher) u64(v uint64) *hasher { h.buf = binary.BigEndian.AppendUint64(h.buf, v); return h }

func (h *hasher) hash(x Hash) *hasher { h.buf = append(h.buf, x[:]...); return h }

func (h *hasher) node(id gridmind.NodeID) *hasher { return h.str(string(id)) }

func (h *hasher) sum() Hash { return sha256.Sum256(h.buf) }

// ShardID names the data a worker trains on in a round. corpus/ deals the
// shard from (job, round, worker index, workers); the commitment carries
// this id so an auditor knows which shard to load, and Commitment.Check
// refuses a commitment whose shard is not the one the worker was dealt.
func ShardID(job string, round uint64, index, workers int) Hash {
	return newHasher("gridmind/verify/shard/v1").str(job).u64(round).u64(uint64(index)).u64(uint64(workers)).sum()
}

// HashBytes is the SHA-256 of b under a domain tag; use it to hash an
// optimizer state, a residual or a pseudo-gradient serialized in a
// canonical order (the trainer's flat parameter order, little-endian).
func HashBytes(domain string, b []byte) Hash {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(domain)))])
	h.Write([]byte(domain))
	h.Write(b)
	var out Hash
	h.Sum(out[:0])
	return out
}

// HashFloats hashes a float32 vector bit for bit (little-endian IEEE 754),
// so two vectors hash equal exactly when they are bitwise identical
// (including the sign of zero and NaN payloads).
func HashFloats(domain string, v []float32) Hash {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], mathFloat32bits(x))
	}
	return HashBytes(domain, b)
}
