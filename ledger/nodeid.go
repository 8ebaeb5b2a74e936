package ledger

import (
	"crypto/ed25519"
	"encoding/binary"

	"github.com/gridmind/gridmind"
)

// nodeIDOf computes gridmind.NodeIDFromPublicKey(pub) without math/big:
// the base58 digits of the 38-byte peer id come out five at a time by
// dividing 32-bit limbs by 58^5. Decoding a transaction computes one or two
// of these, and the big.Int version was a tenth of the cost of a
// transfer. TestNodeIDOfMatchesRoot holds it to the root package's answer.
func nodeIDOf(pub []byte) gridmind.NodeID {
	if len(pub) != ed25519.PublicKeySize {
		return gridmind.NodeIDFromPublicKey(pub)
	}
	// 0x00 0x24 (identity multihash, 36 bytes) 0x08 0x01 0x12 0x20
	// (protobuf: key type ed25519, 32 bytes of data), then the key. Two
	// bytes of zero padding in front make ten 32-bit limbs.
	var buf [40]byte
	copy(buf[2:], []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20})
	copy(buf[8:], pub)
	var limbs [10]uint32
	for i := range limbs {
		limbs[i] = binary.BigEndian.Uint32(buf[4*i:])
	}
	const chunk = 58 * 58 * 58 * 58 * 58 // 656,356,768 < 2^32
	var out [64]byte
	n := len(out)
	start := 0
	for start < len(limbs) {
		var rem uint64
		for i := start; i < len(limbs); i++ {
			cur := rem<<32 | uint64(limbs[i])
			limbs[i] = uint32(cur / chunk)
			rem = cur % chunk
		}
		for start < len(limbs) && limbs[start] == 0 {
			start++
		}
		for j := 0; j < 5; j++ {
			n--
			out[n] = base58Alphabet[rem%58]
			rem /= 58
		}
	}
	// Drop the zero digits of the last (most significant) chunk, then
	// write one '1' for the one leading zero byte, as base58 does.
	for n < len(out) && out[n] == base58Alphabet[0] {
		n++
	}
	n--
	out[n] = base58Alphabet[0]
	return gridmind.NodeID(out[n:])
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
