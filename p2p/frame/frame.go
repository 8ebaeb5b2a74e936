// Package frame is the length-prefixed framing of gridmind's stream
// protocols: a 4-byte length in either byte order, then that many bytes,
// read with the bound checked before anything is allocated. It imports
// only the standard library, so packages that speak a protocol without
// libp2p (serve's wire format, tests) use it directly; p2p re-exports it.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The codecs of gridmind's stream protocols. The job, audit and inference
// protocols use big-endian lengths (BE), the training protocols
// little-endian (LE); see docs/PROTOCOL.md. One implementation serves
// both, so every protocol checks a length against its bound before it
// allocates anything.
var (
	BE = Codec{Order: binary.BigEndian}
	LE = Codec{Order: binary.LittleEndian}
)

// ErrTooLarge is returned for a declared length of zero or above the
// bound (and by Write for data that no 4-byte length can describe).
var ErrTooLarge = errors.New("frame: length out of bounds")

// Codec reads and writes length-prefixed frames in one byte order.
type Codec struct {
	Order binary.ByteOrder
}

// Write writes one frame: a small one in a single Write, a large one as
// the length then the data (copying it would double its memory).
func (c Codec) Write(w io.Writer, data []byte) error {
	if uint64(len(data)) > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	const small = 64 << 10
	if len(data) <= small {
		frame := make([]byte, 4, 4+len(data))
		c.Order.PutUint32(frame, uint32(len(data)))
		_, err := w.Write(append(frame, data...))
		return err
	}
	var hdr [4]byte
	c.Order.PutUint32(hdr[:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// Read reads one frame of 1 to max bytes. The length is checked before
// the buffer is allocated, and the buffer grows only as bytes arrive
// (doubling, never beyond the declared length), so a peer that declares
// a large frame and sends little costs little, and no frame costs more
// than its bound.
func (c Codec) Read(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := int(c.Order.Uint32(hdr[:]))
	if size == 0 || size > max {
		return nil, fmt.Errorf("%w: %d bytes, bound %d", ErrTooLarge, size, max)
	}
	return ReadN(r, size)
}

// ReadN reads exactly size bytes, for a length the caller has already
// checked against its bound: the buffer starts small and doubles as bytes
// arrive, never past size, so a sender that announces much and sends
// little costs little. A short read is io.ErrUnexpectedEOF.
func ReadN(r io.Reader, size int) ([]byte, error) {
	if size <= 0 {
		return nil, nil
	}
	const step = 64 << 10
	buf := make([]byte, 0, min(size, step))
	for len(buf) < size {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(size, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}
