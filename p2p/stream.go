package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/gridmind/gridmind"
)

// Stream is a bidirectional byte stream to one peer on one protocol.
// CloseWrite ends our side (the peer reads EOF) while we keep reading;
// Reset aborts both directions.
type Stream interface {
	io.ReadWriteCloser
	CloseWrite() error
	Reset() error
	SetDeadline(time.Time) error
}

var _ Stream = network.Stream(nil)

func checkProtocol(p string) error {
	if !strings.HasPrefix(p, "/") || len(p) > 256 || strings.ContainsAny(p, " \n\r\t") {
		return fmt.Errorf("protocol %q: want a path such as /gridmind/allreduce/1.0.0", shorten(p))
	}
	return nil
}

// Handle serves a stream protocol such as "/gridmind/allreduce/1.0.0".
// Each inbound stream runs handler in its own goroutine; the handler owns
// the stream and must close or reset it. A panic in handler resets the
// stream instead of crashing the node. A second Handle for the same
// protocol replaces the first. A peer that opens streams on proto faster
// than Limits.StreamRate has the excess reset before handler runs.
func (h *Host) Handle(proto string, handler func(from gridmind.NodeID, s Stream)) {
	if err := checkProtocol(proto); err != nil {
		h.log.Error("refusing to register stream handler", "err", err)
		return
	}
	h.host.SetStreamHandler(protocol.ID(proto), func(s network.Stream) {
		from := gridmind.NodeID(s.Conn().RemotePeer().String())
		if !h.cfg.Limits.Unlimited && !h.rate.allow(string(from), proto) {
			h.stats.rateLimited.Add(1)
			h.log.Debug("stream over the peer's rate; reset", "protocol", proto, "from", from)
			_ = s.Reset()
			return
		}
		defer func() {
			if p := recover(); p != nil {
				h.log.Warn("stream handler panicked; stream reset", "protocol", proto, "from", from, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				_ = s.Reset()
			}
		}()
		handler(from, s)
	})
}

// Unhandle stops serving a protocol.
func (h *Host) Unhandle(proto string) { h.host.RemoveStreamHandler(protocol.ID(proto)) }

// Open opens a stream to a node, dialing it (and looking up its address in
// the DHT) if there is no connection yet.
func (h *Host) Open(ctx context.Context, to gridmind.NodeID, proto string) (Stream, error) {
	const op = "p2p.open"
	if err := checkProtocol(proto); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	pid, err := decodeID(to)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	if pid == h.self {
		return nil, gridmind.E(gridmind.KindInvalid, op, "cannot open a stream to this node itself")
	}
	s, err := h.host.NewStream(ctx, pid, protocol.ID(proto))
	if errors.Is(err, swarm.ErrDialBackoff) {
		// A failed background dial (DHT walk, gossip) keeps the peer's
		// addresses in backoff for seconds to minutes, though the peer may
		// be up by now; a stream asked for explicitly gets one fresh dial.
		s, err = h.host.NewStream(network.WithForceDirectDial(ctx, "stream requested"), pid, protocol.ID(proto))
	}
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, op, "peer %s protocol %s: %v", to.Short(), proto, err)
	}
	return s, nil
}
