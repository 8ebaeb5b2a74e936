package verify

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

func mathFloat32bits(f float32) uint32 { return math.Float32bits(f) }

// The wire form of commitments and results is a canonical binary encoding
// like the ledger's: minimal varints, bounded lengths, node ids as their
// 32-byte public keys, nothing after the last field. Every valid value has
// exactly one encoding, so hashes of encodings identify values.

var errShort = errors.New("truncated")

type encoder struct{ buf []byte }

func (e *encoder) uvarint(v uint64) {
	for v >= 0x80 {
		e.buf = append(e.buf, byte(v)|0x80)
		v >>= 7
	}
	e.buf = append(e.buf, byte(v))
}

func (e *encoder) str(s string)   { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte) { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) hash(h Hash)    { e.buf = append(e.buf, h[:]...) }
func (e *encoder) byte1(b byte)   { e.buf = append(e.buf, b) }

// node writes the 32-byte key of id; an invalid id is written as zeros,
// which the decoder refuses.
func (e *encoder) node(id gridmind.NodeID) {
	pub, err := id.PublicKey()
	if err != nil {
		pub = make([]byte, ed25519.PublicKeySize)
	}
	e.buf = append(e.buf, pub...)
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < 10; i++ {
		if d.off >= len(d.buf) {
			d.fail("%s: %w", what, errShort)
			return 0
		}
		c := d.buf[d.off]
		d.off++
		if i == 9 && c > 1 {
			d.fail("%s: varint overflows 64 bits", what)
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				d.fail("%s: non-minimal varint", what)
				return 0
			}
			return v
		}
	}
	d.fail("%s: varint too long", what)
	return 0
}

func (d *decoder) count(what string, max int) int {
	n := d.uvarint(what)
	if d.err == nil && n > uint64(max) {
		d.fail("%s: %d, at most %d", what, n, max)
		return 0
	}
	return int(n)
}

func (d *decoder) take(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.buf)-d.off {
		d.fail("%s: %w", what, errShort)
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

func (d *decoder) byte1(what string) byte {
	b := d.take(what, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (d *decoder) str(what string, max int) string {
	b := d.take(what, d.count(what+" length", max))
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		d.fail("%s: not valid UTF-8", what)
		return ""
	}
	return string(b)
}

func (d *decoder) bytes(what string, max int) []byte {
	n := d.count(what+" length", max)
	b := d.take(what, n)
	if d.err != nil || n == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func (d *decoder) hash(what string) Hash {
	var h Hash
	copy(h[:], d.take(what, len(h)))
	return h
}

func (d *decoder) node(what string) gridmind.NodeID {
	b := d.take(what, ed25519.PublicKeySize)
	if d.err != nil {
		return ""
	}
	var zero [ed25519.PublicKeySize]byte
	if string(b) == string(zero[:]) {
		d.fail("%s: zero key", what)
		return ""
	}
	return gridmind.NodeIDFromPublicKey(ed25519.PublicKey(append([]byte(nil), b...)))
}

func (d *decoder) finish(what string) error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%s: %d unexpected bytes after the last field", what, len(d.buf)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("verify: decode %s: %w", what, d.err)
	}
	return nil
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

// signer checks that key belongs to id before signing with it.
func signer(key ed25519.PrivateKey, id gridmind.NodeID) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("verify: sign: not an ed25519 private key")
	}
	if got := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)); got != id {
		return fmt.Errorf("verify: sign: key belongs to %s, not %s", got.Short(), id.Short())
	}
	return nil
}
