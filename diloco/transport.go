package diloco

import (
	"context"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// Protocol IDs of the libp2p transport (other transports may ignore them).
const (
	ProtocolControl   = "/gridmind/train/control/1.0.0"
	ProtocolAllReduce = "/gridmind/allreduce/1.0.0"
	ProtocolState     = "/gridmind/state/1.0.0"
)

// Transport carries one worker's traffic within one job. Control messages
// are small signed envelopes; bulk messages are all-reduce payloads (parts
// and combined parts) whose sender the transport itself authenticates (a
// libp2p stream is bound to the peer's key). Every method may block; the
// worker calls them from its own goroutines.
type Transport interface {
	// Self is the local node.
	Self() gridmind.NodeID
	// Send delivers a control message to one worker.
	Send(ctx context.Context, to gridmind.NodeID, data []byte) error
	// Broadcast delivers a control message to every worker of the job.
	Broadcast(ctx context.Context, data []byte) error
	// SendBulk delivers an all-reduce payload to one worker.
	SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error
	// FetchState asks a worker for the encoded global state of round whose
	// state hash is hash.
	FetchState(ctx context.Context, from gridmind.NodeID, round uint64, hash train.Hash) ([]byte, error)
	// Serve delivers inbound traffic to h until ctx ends, then stops
	// delivering; it returns once the handlers are installed.
	Serve(ctx context.Context, h Handler) error
}

// Handler receives what a Transport delivers. Its methods may be called
// from many goroutines at once.
type Handler interface {
	// Control is a control message; from is who the transport says sent it.
	Control(from gridmind.NodeID, data []byte)
	// Bulk is an all-reduce payload from an authenticated peer.
	Bulk(from gridmind.NodeID, data []byte)
	// State serves a peer's fetch: the encoded state of round with hash, or
	// an error if this worker does not hold it.
	State(ctx context.Context, round uint64, hash train.Hash) ([]byte, error)
}

// Gate is implemented by a Handler that can refuse a stream before
// anything on it is read: a transport asks it who may open one of the
// job's protocols and how large a frame that peer may send, so a stranger
// cannot make the worker buffer anything, and a member cannot declare a
// frame larger than the round can need.
type Gate interface {
	Admit(from gridmind.NodeID, protocol string) (maxBytes int, ok bool)
}
