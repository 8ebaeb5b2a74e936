package gridmind

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// NodeID names a node everywhere: it is the libp2p peer ID of the node's
// ed25519 key (base58 of an identity multihash over the protobuf-encoded
// public key), its ledger account address and the signer of its messages.
// It is computed here with the standard library so pure packages can derive
// and check it without importing libp2p; p2p/ tests that both agree.
type NodeID string

// libp2p encodes an ed25519 public key as protobuf {Type: Ed25519(1), Data: key}
// and, because that is short (36 bytes), wraps it in an identity multihash.
var peerIDPrefix = []byte{
	0x00, 0x24, // multihash: identity, 36 bytes
	0x08, 0x01, // field 1 (KeyType) = Ed25519
	0x12, 0x20, // field 2 (Data), 32 bytes
}

// NodeIDFromPublicKey returns the NodeID of an ed25519 public key.
func NodeIDFromPublicKey(pub ed25519.PublicKey) NodeID {
	raw := make([]byte, 0, len(peerIDPrefix)+ed25519.PublicKeySize)
	raw = append(raw, peerIDPrefix...)
	raw = append(raw, pub...)
	return NodeID(base58Encode(raw))
}

// PublicKey recovers the ed25519 public key embedded in an ed25519 NodeID.
func (id NodeID) PublicKey() (ed25519.PublicKey, error) {
	raw, err := base58Decode(string(id))
	if err != nil {
		return nil, fmt.Errorf("node id %q: %w", shorten(string(id)), err)
	}
	if len(raw) != len(peerIDPrefix)+ed25519.PublicKeySize || string(raw[:len(peerIDPrefix)]) != string(peerIDPrefix) {
		return nil, fmt.Errorf("node id %q: not an ed25519 peer id", shorten(string(id)))
	}
	return ed25519.PublicKey(raw[len(peerIDPrefix):]), nil
}

// Validate reports whether id is a well-formed ed25519 NodeID.
func (id NodeID) Validate() error {
	_, err := id.PublicKey()
	return err
}

// Short is a human-sized form for logs and tables.
func (id NodeID) Short() string {
	s := string(id)
	if len(s) <= 10 {
		return s
	}
	return "…" + s[len(s)-8:]
}

func (id NodeID) String() string { return string(id) }

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() [256]int8 {
	var idx [256]int8
	for i := range idx {
		idx[i] = -1
	}
	for i, c := range base58Alphabet {
		idx[c] = int8(i)
	}
	return idx
}()

var errBase58 = errors.New("invalid base58")

func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	n := new(big.Int).SetBytes(b)
	radix := big.NewInt(58)
	mod := new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for i := 0; i < zeros; i++ {
		out = append(out, base58Alphabet[0])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Decode(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > 128 {
		return nil, errBase58
	}
	// Without math/big: a ledger turns the node ids of every transaction
	// it encodes back into keys, and the big.Int version allocated per
	// digit. The number is kept in 32-bit limbs, most significant first,
	// and the digits go in five at a time (58^5 < 2^32); 128 digits are
	// under 95 bytes, so 24 limbs hold any input.
	var limbs [24]uint32
	zeros := 0
	for zeros < len(s) && s[zeros] == base58Alphabet[0] {
		zeros++
	}
	for i := 0; i < len(s); {
		mul, add := uint64(1), uint64(0)
		for end := min(i+5, len(s)); i < end; i++ {
			v := base58Index[s[i]]
			if v < 0 {
				return nil, errBase58
			}
			mul *= 58
			add = add*58 + uint64(v)
		}
		carry := add
		for k := len(limbs) - 1; k >= 0; k-- {
			cur := uint64(limbs[k])*mul + carry
			limbs[k] = uint32(cur)
			carry = cur >> 32
		}
	}
	var raw [4 * len(limbs)]byte
	for k, l := range limbs {
		binary.BigEndian.PutUint32(raw[4*k:], l)
	}
	body := raw[:]
	for len(body) > 0 && body[0] == 0 {
		body = body[1:]
	}
	out := make([]byte, zeros+len(body))
	copy(out[zeros:], body)
	return out, nil
}
