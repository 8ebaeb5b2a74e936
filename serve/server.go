package serve

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"time"

	"github.com/gridmind/gridmind"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Key   ed25519.PrivateKey // this node's key: signs receipts
	Local *Local             // the models served here
	// OnReceipt receives each receipt signed by both sides (typically
	// Batcher.Add). Its error is logged.
	OnReceipt func(Receipt) error
	// RequestTimeout bounds the wait for the request after a stream opens,
	// AckTimeout the wait for the client's countersignature (defaults 10 s).
	RequestTimeout time.Duration
	AckTimeout     time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// Server answers inference streams from other nodes with local models.
type Server struct {
	cfg  ServerConfig
	self gridmind.NodeID
	log  *slog.Logger
}

// NewServer checks the configuration and returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, gridmind.E(gridmind.KindInvalid, "serve.server", "need an ed25519 private key, got %d bytes", len(cfg.Key))
	}
	if cfg.Local == nil {
		return nil, gridmind.E(gridmind.KindInvalid, "serve.server", "no local models")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{
		cfg:  cfg,
		self: gridmind.NodeIDFromPublicKey(cfg.Key.Public().(ed25519.PublicKey)),
		log:  cfg.Logger.With("component", "serve.server"),
	}, nil
}

// ID is the server's NodeID.
func (s *Server) ID() gridmind.NodeID { return s.self }

// Handler returns a StreamHandler that serves each stream until ctx ends.
func (s *Server) Handler(ctx context.Context) StreamHandler {
	return func(from gridmind.NodeID, st Stream) { s.ServeStream(ctx, from, st) }
}

// ServeStream answers one inference stream from peer from (whose identity
// the transport authenticated) and closes it. It returns when the reply
// is finished, the client went away, or ctx ends.
func (s *Server) ServeStream(ctx context.Context, from gridmind.NodeID, st Stream) {
	ctx, cancel := context.WithCancel(ctx)
	// Aborting the stream is how a blocked read or write is interrupted
	// when ctx ends or the client goes away. The reply paths close it
	// gracefully themselves, and an abort after that would drop what is
	// still buffered, so on return only an unclosed stream is aborted.
	closed := false
	stop := context.AfterFunc(ctx, func() { resetOrClose(st) })
	defer func() {
		if stop() && !closed {
			resetOrClose(st)
		}
		cancel()
	}()

	reqTimer := time.AfterFunc(s.cfg.RequestTimeout, cancel)
	msg, err := ReadMessage(st)
	reqTimer.Stop()
	if err != nil || msg.Type != MsgRequest {
		if err == nil {
			err = errors.New("first message is " + msg.Type + ", not request")
		}
		s.log.Debug("bad inference stream", "from", from.Short(), "err", err)
		s.fail(st, CodeInvalid, err.Error())
		closed = true
		return
	}
	req := msg.Request

	// From now on the only reads are of the ack; any other end of the read
	// side (the client closed or reset) cancels the generation.
	acks := make(chan *Message, 1)
	go func() {
		defer close(acks)
		m, err := ReadMessage(st)
		if err != nil {
			cancel()
			return
		}
		acks <- m
	}()

	start := &Message{Type: MsgStart, Queue: s.cfg.Local.QueueLength(req.Model), Workers: s.cfg.Local.Workers()}
	if err := WriteMessage(st, start); err != nil {
		return
	}
	comp, err := s.cfg.Local.generate(ctx, req.Request, req.Skip, req.PrefixHash, func(piece string) error {
		return WriteMessage(st, &Message{Type: MsgToken, Text: piece})
	})
	if err != nil {
		if ctx.Err() == nil {
			s.fail(st, wireCode(err), err.Error())
			closed = true
		}
		return
	}

	rc := Receipt{
		RequestID: req.ID,
		Model:     req.Model,
		Server:    s.self,
		Client:    from,
		TokensIn:  int64(comp.PromptTokens),
		TokensOut: int64(comp.CompletionTokens), // skipped prefix included
		TimeMs:    s.cfg.Now().UnixMilli(),
		// What was asked and answered, for audits (receipt.go).
		RequestHash: RequestHash(*req), Seed: req.Seed, OutputHash: OutputHash(comp.Text),
	}
	if err := rc.SignServer(s.cfg.Key); err != nil {
		s.fail(st, CodeInternal, err.Error())
		closed = true
		return
	}
	done := &WireDone{
		FinishReason:     comp.FinishReason,
		PromptTokens:     comp.PromptTokens,
		CompletionTokens: comp.CompletionTokens,
		Receipt:          rc,
	}
	if err := WriteMessage(st, &Message{Type: MsgDone, Done: done}); err != nil {
		return
	}

	ackTimer := time.NewTimer(s.cfg.AckTimeout)
	defer ackTimer.Stop()
	select {
	case m, ok := <-acks:
		if !ok || m.Type != MsgAck {
			s.log.Debug("no receipt countersignature", "from", from.Short(), "request", req.ID)
			return
		}
		rc.ClientSig = m.ClientSig
		if err := rc.VerifyClient(); err != nil {
			s.log.Warn("bad receipt countersignature", "from", from.Short(), "request", req.ID, "err", err)
			return
		}
		if s.cfg.OnReceipt != nil {
			if err := s.cfg.OnReceipt(rc); err != nil {
				s.log.Warn("receipt not recorded", "request", req.ID, "err", err)
			}
		}
	case <-ackTimer.C:
		s.log.Debug("receipt countersignature timed out", "from", from.Short(), "request", req.ID)
	case <-ctx.Done():
		return
	}
	closed = true
	_ = st.Close()
}

func (s *Server) fail(st Stream, code, msg string) {
	_ = WriteMessage(st, &Message{Type: MsgError, Error: &WireError{Code: code, Message: truncate(msg, 512)}})
	_ = st.Close()
}

// wireCode maps a local error to the code a client acts on.
func wireCode(err error) string {
	switch {
	case errors.Is(err, ErrModelNotFound):
		return CodeNotFound
	case errors.Is(err, ErrOverloaded):
		return CodeOverloaded
	case errors.Is(err, ErrDiverged):
		return CodeDiverged
	case gridmind.KindOf(err) == gridmind.KindInvalid:
		return CodeInvalid
	}
	return CodeInternal
}
