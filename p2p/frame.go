package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame codecs of gridmind's stream protocols: a 4-byte length, then that
// many bytes. The job and inference protocols use big-endian lengths
// (FrameBE), the training protocols little-endian (FrameLE); see
// docs/PROTOCOL.md. One implementation serves both, so every protocol
// checks a length against its bound before it allocates anything.
var (
	FrameBE = FrameCodec{Order: binary.BigEndian}
	FrameLE = FrameCodec{Order: binary.LittleEndian}
)

// ErrFrameTooLarge is returned for a declared length above the bound.
var ErrFrameTooLarge = errors.New("p2p: frame exceeds its bound")

// FrameCodec reads and writes length-prefixed frames in one byte order.
type FrameCodec struct {
	Order binary.ByteOrder
}

// Write writes one frame.
func (c FrameCodec) Write(w io.Writer, data []byte) error {
	if uint64(len(data)) > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(data))
	}
	hdr := make([]byte, 4, 4+len(data))
	c.Order.PutUint32(hdr, uint32(len(data)))
	_, err := w.Write(append(hdr, data...))
	return err
}

// Read reads one frame of 1 to max bytes. The length is checked before
// the buffer is allocated, and the buffer grows only as bytes arrive, so
// a peer that declares a large frame and sends little costs little.
func (c FrameCodec) Read(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := int64(c.Order.Uint32(hdr[:]))
	if size == 0 || size > int64(max) {
		return nil, fmt.Errorf("%w: %d bytes, bound %d", ErrFrameTooLarge, size, max)
	}
	const step = 64 << 10
	buf := make([]byte, 0, min(size, step))
	for int64(len(buf)) < size {
		chunk := min(size-int64(len(buf)), step)
		if int64(cap(buf)-len(buf)) < chunk {
			buf = append(buf, make([]byte, chunk)...)[:len(buf)]
		}
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+int(chunk)])
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
