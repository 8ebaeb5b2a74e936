package diloco

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/train"
)

// P2PTransport carries a job over libp2p: broadcasts on the GossipSub topic
// "gridmind/train/<job>/1", direct control messages and all-reduce
// payloads on streams (ProtocolControl, ProtocolAllReduce), state fetches
// on ProtocolState, and DHT provider records "gridmind/state/<hash>" for
// the states this worker holds. A host serves one job at a time (the
// stream handlers are per protocol); every stream names its job and a
// stream for another job is refused.
type P2PTransport struct {
	h     *p2p.Host
	job   string
	topic *p2p.Topic
	sub   *p2p.Subscription // subscribed at once so the gossip mesh forms before Serve
	log   *slog.Logger
	mu    sync.Mutex
	serve uint64 // generation of the latest Serve, so an old one's teardown leaves a newer one's handlers alone
	// MaxBulkBytes bounds one inbound all-reduce payload or state (default
	// 1 GiB); a worker lowers it to what its model can need (LimitBulk).
	MaxBulkBytes int
}

// LimitBulk lowers MaxBulkBytes to n.
func (t *P2PTransport) LimitBulk(n int) {
	if n > 0 && n < t.MaxBulkBytes {
		t.MaxBulkBytes = n
	}
}

var (
	_ Transport     = (*P2PTransport)(nil)
	_ StateProvider = (*P2PTransport)(nil)
)

// StateProvider is a Transport that can also advertise and find the holders
// of a global state (a DHT), used when the peers named by the protocol do
// not deliver it.
type StateProvider interface {
	ProvideState(ctx context.Context, hash train.Hash) error
	FindStateProviders(ctx context.Context, hash train.Hash) ([]gridmind.NodeID, error)
}

// TopicName is the job's control topic.
func TopicName(job string) string { return "gridmind/train/" + job + "/1" }

// NewP2PTransport joins the job's topic on h. The topic validator checks
// envelope signatures so forgeries are not forwarded.
func NewP2PTransport(h *p2p.Host, job string, logger *slog.Logger) (*P2PTransport, error) {
	if job == "" || len(job) > maxJobName {
		return nil, gridmind.E(gridmind.KindInvalid, "diloco.p2p", "job name %q: want 1 to 128 bytes", job)
	}
	if logger == nil {
		logger = slog.Default()
	}
	topic, err := h.Join(TopicName(job), func(_ context.Context, from gridmind.NodeID, data []byte) error {
		env, err := gridmind.OpenEnvelope(data, time.Now(), MaxClockSkew)
		if err != nil {
			return p2p.Reject("envelope", err)
		}
		if env.From != from {
			return p2p.Reject("author", fmt.Errorf("%s relayed an envelope signed by %s as its own", from.Short(), env.From.Short()))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		_ = topic.Close()
		return nil, err
	}
	return &P2PTransport{h: h, job: job, topic: topic, sub: sub, log: logger, MaxBulkBytes: 1 << 30}, nil
}

// Self is the host's node id.
func (t *P2PTransport) Self() gridmind.NodeID { return t.h.ID() }

// Topic is the job's gossip topic (tests wait for its mesh to form).
func (t *P2PTransport) Topic() *p2p.Topic { return t.topic }

// Close leaves the topic.
func (t *P2PTransport) Close() error {
	t.sub.Cancel()
	return t.topic.Close()
}

// Every stream starts with the job name (a 2-byte little-endian length,
// 1 to maxJobName bytes), then one p2p.FrameLE frame.
const maxJobName = 128

func (t *P2PTransport) writeHeader(w io.Writer) error {
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(t.job)))
	_, err := w.Write(append(b, t.job...))
	return err
}

func (t *P2PTransport) readHeader(r io.Reader) error {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := int(binary.LittleEndian.Uint16(n[:]))
	if size == 0 || size > maxJobName {
		return fmt.Errorf("job name of %d bytes", size)
	}
	job := make([]byte, size)
	if _, err := io.ReadFull(r, job); err != nil {
		return err
	}
	if string(job) != t.job {
		return fmt.Errorf("stream for job %q, this host serves %q", job, t.job)
	}
	return nil
}

// writeFrame and readFrame are the training protocols' framing,
// p2p.FrameLE: a 4-byte little-endian length, then 1 to limit bytes. The
// length is checked before anything is allocated and the buffer grows only
// as bytes arrive.
func writeFrame(w io.Writer, data []byte) error { return p2p.FrameLE.Write(w, data) }

func readFrame(r io.Reader, limit int) ([]byte, error) { return p2p.FrameLE.Read(r, limit) }

// deliver opens a stream, writes one frame and waits for the peer to close
// its side, which it does after handing the frame to its worker: a nil
// error means the message arrived.
func (t *P2PTransport) deliver(ctx context.Context, to gridmind.NodeID, proto string, data []byte) error {
	s, err := t.h.Open(ctx, to, proto)
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if err := t.writeHeader(s); err != nil {
		_ = s.Reset()
		return err
	}
	if err := writeFrame(s, data); err != nil {
		_ = s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return err
	}
	if _, err := io.Copy(io.Discard, io.LimitReader(s, 1)); err != nil {
		_ = s.Reset()
		return fmt.Errorf("%s to %s: %w", proto, to.Short(), err)
	}
	return s.Close()
}

// Send delivers a control message on a stream.
func (t *P2PTransport) Send(ctx context.Context, to gridmind.NodeID, data []byte) error {
	return t.deliver(ctx, to, ProtocolControl, data)
}

// Broadcast publishes on the job topic.
func (t *P2PTransport) Broadcast(ctx context.Context, data []byte) error {
	return t.topic.Publish(ctx, data)
}

// SendBulk delivers an all-reduce payload on a stream.
func (t *P2PTransport) SendBulk(ctx context.Context, to gridmind.NodeID, data []byte) error {
	return t.deliver(ctx, to, ProtocolAllReduce, data)
}

// FetchState asks a peer for a state: request round uint64 | hash [32];
// reply status byte (0 found) then one frame.
func (t *P2PTransport) FetchState(ctx context.Context, from gridmind.NodeID, round uint64, hash train.Hash) ([]byte, error) {
	s, err := t.h.Open(ctx, from, ProtocolState)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	req := binary.LittleEndian.AppendUint64(nil, round)
	if err := t.writeHeader(s); err != nil {
		return nil, err
	}
	if err := writeFrame(s, append(req, hash[:]...)); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	var status [1]byte
	if _, err := io.ReadFull(s, status[:]); err != nil {
		return nil, fmt.Errorf("state from %s: %w", from.Short(), err)
	}
	b, err := readFrame(s, t.MaxBulkBytes)
	if err != nil {
		return nil, fmt.Errorf("state from %s: %w", from.Short(), err)
	}
	if status[0] != 0 {
		return nil, gridmind.E(gridmind.KindNotFound, "diloco.fetch", "%s: %s", from.Short(), shortText(b))
	}
	return b, nil
}

func shortText(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// Serve installs the stream handlers and the topic reader until ctx ends.
func (t *P2PTransport) Serve(ctx context.Context, h Handler) error {
	sub := t.sub
	t.mu.Lock()
	t.serve++
	gen := t.serve
	t.mu.Unlock()
	gate, _ := h.(Gate)
	admit := func(from gridmind.NodeID, proto string, limit int) (int, bool) {
		if gate == nil {
			return limit, true
		}
		max, ok := gate.Admit(from, proto)
		if !ok {
			t.log.Debug("stream from a non-member refused", "from", from.Short(), "protocol", proto)
			return 0, false
		}
		return min(limit, max), true
	}
	recv := func(proto string, limit int, deliver func(from gridmind.NodeID, data []byte)) func(gridmind.NodeID, p2p.Stream) {
		return func(from gridmind.NodeID, s p2p.Stream) {
			limit, ok := admit(from, proto, limit)
			if !ok {
				_ = s.Reset()
				return
			}
			_ = s.SetDeadline(time.Now().Add(2 * time.Minute))
			if err := t.readHeader(s); err != nil {
				t.log.Debug("stream refused", "from", from.Short(), "err", err)
				_ = s.Reset()
				return
			}
			data, err := readFrame(s, limit)
			if err != nil {
				t.log.Debug("stream read failed", "from", from.Short(), "err", err)
				_ = s.Reset()
				return
			}
			if ctx.Err() != nil {
				_ = s.Reset()
				return
			}
			deliver(from, data)
			_ = s.Close()
		}
	}
	t.h.Handle(ProtocolControl, recv(ProtocolControl, gridmind.MaxEnvelopeBytes, h.Control))
	t.h.Handle(ProtocolAllReduce, recv(ProtocolAllReduce, t.MaxBulkBytes, h.Bulk))
	t.h.Handle(ProtocolState, func(from gridmind.NodeID, s p2p.Stream) {
		defer s.Close()
		if _, ok := admit(from, ProtocolState, 0); !ok {
			_ = s.Reset() // the model goes only to the job's members
			return
		}
		_ = s.SetDeadline(time.Now().Add(2 * time.Minute))
		if err := t.readHeader(s); err != nil {
			_ = s.Reset()
			return
		}
		req, err := readFrame(s, 8+32)
		if err != nil || len(req) != 8+32 {
			_ = s.Reset()
			return
		}
		var hash train.Hash
		copy(hash[:], req[8:])
		state, err := h.State(ctx, binary.LittleEndian.Uint64(req), hash)
		if err == nil && len(state) == 0 {
			err = errors.New("empty state") // a frame holds at least one byte
		}
		if err != nil {
			msg := err.Error()
			if msg == "" {
				msg = "state unavailable"
			}
			_, _ = s.Write([]byte{1})
			_ = writeFrame(s, []byte(msg))
			return
		}
		_, _ = s.Write([]byte{0})
		_ = writeFrame(s, state)
	})
	go func() { // ends with ctx: Next returns its error
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				if !errors.Is(err, context.Canceled) && ctx.Err() == nil {
					t.log.Debug("job topic closed", "err", err)
				}
				return
			}
			h.Control(msg.From, msg.Data)
		}
	}()
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.serve != gen {
			return
		}
		t.h.Unhandle(ProtocolControl)
		t.h.Unhandle(ProtocolAllReduce)
		t.h.Unhandle(ProtocolState)
	})
	return nil
}

func stateKey(hash train.Hash) string { return "gridmind/state/" + hash.String() }

// ProvideState publishes a DHT provider record for a state this worker holds.
func (t *P2PTransport) ProvideState(ctx context.Context, hash train.Hash) error {
	return t.h.Provide(ctx, stateKey(hash))
}

// FindStateProviders looks up who holds a state.
func (t *P2PTransport) FindStateProviders(ctx context.Context, hash train.Hash) ([]gridmind.NodeID, error) {
	return t.h.FindProviders(ctx, stateKey(hash), 8)
}
