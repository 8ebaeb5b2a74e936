package p2p

import "github.com/gridmind/gridmind/p2p/frame"

// The frame codecs of gridmind's stream protocols (package frame, which
// needs no libp2p): FrameBE for the job, audit and inference protocols,
// FrameLE for the training protocols.
var (
	FrameBE = frame.BE
	FrameLE = frame.LE
)

// FrameCodec reads and writes length-prefixed frames in one byte order.
type FrameCodec = frame.Codec

// ErrFrameTooLarge is returned for a declared length out of the bound.
var ErrFrameTooLarge = frame.ErrTooLarge
