package ledger

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

// The wire format is a hand-written, canonical binary encoding: unsigned
// varints must be minimal, booleans are 0 or 1, strings are valid UTF-8 with
// a bounded length, lists are length-prefixed and bounded, and nothing may
// follow the last field. Every valid encoding therefore has exactly one
// byte form, so re-encoding a decoded transaction gives back the same bytes
// (and the same hash); the fuzz tests hold the decoder to that.

// errShort is returned when the input ends inside a field.
var errShort = errors.New("truncated")

type encoder struct{ buf []byte }

func (e *encoder) byte1(v byte) { e.buf = append(e.buf, v) }

func (e *encoder) uvarint(v uint64) {
	for v >= 0x80 {
		e.buf = append(e.buf, byte(v)|0x80)
		v >>= 7
	}
	e.buf = append(e.buf, byte(v))
}

// varint writes a signed integer zig-zag encoded.
func (e *encoder) varint(v int64) { e.uvarint(uint64(v<<1) ^ uint64(v>>63)) }

func (e *encoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) fixed(b []byte) { e.buf = append(e.buf, b...) }

// node writes a NodeID as its raw 32-byte ed25519 public key. The caller
// has validated the id; an invalid one is written as zeros, which no
// decoder accepts as a signer and which the validation of the body rejects.
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

func (d *decoder) byte1(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("%s: %w", what, errShort)
		return 0
	}
	v := d.buf[d.off]
	d.off++
	return v
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

func (d *decoder) varint(what string) int64 {
	u := d.uvarint(what)
	return int64(u>>1) ^ -int64(u&1)
}

// count reads a list length and checks it against max before anything is
// allocated, so a hostile length cannot make the decoder allocate.
func (d *decoder) count(what string, max int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.fail("%s: %d entries, at most %d", what, n, max)
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

func (d *decoder) bytes(what string, max int) []byte {
	n := d.count(what+" length", max)
	b := d.take(what, n)
	if d.err != nil || n == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// nested reads a length-prefixed field of at most max bytes holding
// another package's encoding and parses it; a parse error becomes d's
// error, named after the field. It also returns the raw bytes (for a
// canonical-form check).
func nested[T any](d *decoder, what string, max int, parse func([]byte) (T, error)) (T, []byte) {
	var zero T
	raw := d.bytes(what, max)
	if d.err != nil {
		return zero, nil
	}
	v, err := parse(raw)
	if err != nil {
		d.fail("%s: %v", what, err)
		return zero, nil
	}
	return v, raw
}

func (d *decoder) str(what string, max int) string {
	n := d.count(what+" length", max)
	b := d.take(what, n)
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		d.fail("%s: not valid UTF-8", what)
		return ""
	}
	return string(b)
}

func (d *decoder) amount(what string) gridmind.Amount { return gridmind.Amount(d.uvarint(what)) }

// integer reads a signed varint that must fit in an int on every platform
// the ledger runs on (int is 64 bits on all supported ones, but bounding
// it to 32 bits keeps the state identical on 32-bit builds too).
func (d *decoder) integer(what string) int {
	v := d.varint(what)
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("%s: %d out of range", what, v)
		return 0
	}
	return int(v)
}

func (d *decoder) node(what string) gridmind.NodeID {
	b := d.take(what, ed25519.PublicKeySize)
	if d.err != nil {
		return ""
	}
	return nodeIDOf(b)
}

func (d *decoder) hash(what string) Hash {
	var h Hash
	copy(h[:], d.take(what, len(h)))
	return h
}

func (d *decoder) jobID(what string) JobID {
	b := d.take(what, jobIDBytes)
	if d.err != nil {
		return ""
	}
	return jobIDFromBytes(b)
}
