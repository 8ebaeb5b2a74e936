package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p/frame"
)

// Protocol is the libp2p stream protocol that forwards inference requests.
//
// On a stream the client writes one "request" message; the server answers
// "start" (with its queue length and parallelism; its arrival also gives
// the client a round-trip measurement), then one "token" per generated piece of text, then "done"
// carrying the usage receipt signed by the server, or "error". After "done"
// the client writes "ack" with its own signature over the receipt and closes.
// Either side closing or resetting early cancels the request.
//
// Each message is a 4-byte big-endian length followed by that many bytes of
// JSON. Lengths of zero or above MaxMessageBytes are refused before reading.
const Protocol = "/gridmind/infer/1.0.0"

// Wire limits. A prompt is bounded by MaxPromptBytes on the wire, which is
// above any model's context; the HTTP layer applies the tighter token limit.
const (
	MaxMessageBytes = 1 << 20
	MaxPromptBytes  = 256 << 10
	MaxWireTokens   = 1 << 16
	maxIDBytes      = 128
)

// Message types.
const (
	MsgRequest = "request"
	MsgStart   = "start"
	MsgToken   = "token"
	MsgDone    = "done"
	MsgError   = "error"
	MsgAck     = "ack"
)

// Error codes carried in an "error" message. Only CodeInvalid stops the
// client from trying another replica; CodeDiverged asks it to restart.
const (
	CodeInvalid    = "invalid"    // the request itself is bad
	CodeNotFound   = "not_found"  // this node does not serve the model
	CodeOverloaded = "overloaded" // queue full
	CodeDiverged   = "diverged"   // the regenerated prefix differs from the one delivered
	CodeInternal   = "internal"   // generation failed
)

// Message is one frame of the inference protocol; Type says which of the
// other fields are set.
type Message struct {
	Type      string       `json:"type"`
	Request   *WireRequest `json:"request,omitempty"`
	Queue     int          `json:"queue,omitempty"`   // start: requests queued or running
	Workers   int          `json:"workers,omitempty"` // start: requests the server runs at once
	Text      string       `json:"text,omitempty"`    // token
	Done      *WireDone    `json:"done,omitempty"`
	Error     *WireError   `json:"error,omitempty"`
	ClientSig []byte       `json:"client_sig,omitempty"` // ack
}

// WireRequest is a completion request plus how much of the answer the
// client already has: after a fail-over mid-stream it asks the new replica
// to regenerate (with the same seed) and skip the first Skip tokens, whose
// concatenated text must hash (SHA-256) to PrefixHash.
type WireRequest struct {
	Request
	Skip       int    `json:"skip,omitempty"`
	PrefixHash []byte `json:"prefix_hash,omitempty"`
}

// WireDone ends a successful reply.
type WireDone struct {
	FinishReason     string  `json:"finish_reason"`
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"` // generated, skipped prefix included
	Receipt          Receipt `json:"receipt"`
}

// WireError ends a failed reply.
type WireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Errors from the decoder.
var (
	ErrFrameSize  = errors.New("serve: frame size out of range")
	ErrBadMessage = errors.New("serve: malformed message")
)

// WriteMessage encodes m as one frame.BE frame in a single Write.
func WriteMessage(w io.Writer, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("serve: encode %s: %w", m.Type, err)
	}
	if len(body) > MaxMessageBytes {
		return fmt.Errorf("%w: %s message of %d bytes", ErrFrameSize, m.Type, len(body))
	}
	return frame.BE.Write(w, body)
}

// ReadMessage reads and validates one frame. It never panics, and it
// checks the length against MaxMessageBytes before allocating, then grows
// the buffer only as bytes arrive, whatever the input. io.EOF means the
// stream ended cleanly between frames.
func ReadMessage(r io.Reader) (*Message, error) {
	body, err := frame.BE.Read(r, MaxMessageBytes)
	switch {
	case err == nil:
		return DecodeMessage(body)
	case errors.Is(err, frame.ErrTooLarge):
		return nil, fmt.Errorf("%w: %v", ErrFrameSize, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: truncated frame", ErrBadMessage)
	default:
		return nil, err
	}
}

// DecodeMessage parses and validates one frame body, strictly: unknown
// fields (at any depth) and data after the value are refused.
func DecodeMessage(body []byte) (*Message, error) {
	var m Message
	if err := gridmind.DecodeStrict(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that the fields the type needs are present and sane.
func (m *Message) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadMessage, m.Type, fmt.Sprintf(format, args...))
	}
	switch m.Type {
	case MsgRequest:
		if m.Request == nil {
			return bad("missing request")
		}
		if err := m.Request.Validate(); err != nil {
			return bad("%v", err)
		}
	case MsgStart:
		if m.Queue < 0 || m.Workers < 0 {
			return bad("negative queue or workers")
		}
	case MsgToken:
		if m.Text == "" {
			return bad("empty token")
		}
	case MsgDone:
		d := m.Done
		if d == nil {
			return bad("missing done")
		}
		if d.FinishReason != FinishStop && d.FinishReason != FinishLength {
			return bad("finish reason %q", d.FinishReason)
		}
		if d.PromptTokens < 0 || d.CompletionTokens < 0 || d.CompletionTokens > MaxWireTokens {
			return bad("token counts %d/%d", d.PromptTokens, d.CompletionTokens)
		}
		if err := d.Receipt.Validate(); err != nil {
			return bad("%v", err)
		}
	case MsgError:
		if m.Error == nil || m.Error.Code == "" {
			return bad("missing error code")
		}
	case MsgAck:
		if len(m.ClientSig) != 64 {
			return bad("client signature of %d bytes", len(m.ClientSig))
		}
	default:
		return fmt.Errorf("%w: unknown type %q", ErrBadMessage, truncate(m.Type, 32))
	}
	return nil
}

// Validate checks a wire request's bounds.
func (r *WireRequest) Validate() error {
	if err := r.Request.validateWire(); err != nil {
		return err
	}
	if r.Skip < 0 || r.Skip > r.MaxTokens {
		return fmt.Errorf("skip %d outside 0..max_tokens %d", r.Skip, r.MaxTokens)
	}
	if r.Skip > 0 && len(r.PrefixHash) != 32 {
		return fmt.Errorf("skip %d needs a 32-byte prefix hash, got %d bytes", r.Skip, len(r.PrefixHash))
	}
	return nil
}

func (r *Request) validateWire() error {
	switch {
	case r.ID == "" || len(r.ID) > maxIDBytes:
		return fmt.Errorf("request id of %d bytes", len(r.ID))
	case r.Model == "" || len(r.Model) > maxIDBytes:
		return fmt.Errorf("model id of %d bytes", len(r.Model))
	case len(r.Prompt) > MaxPromptBytes:
		return fmt.Errorf("prompt of %d bytes exceeds %d", len(r.Prompt), MaxPromptBytes)
	case !utf8.ValidString(r.Prompt):
		return errors.New("prompt is not valid UTF-8")
	case r.MaxTokens < 0 || r.MaxTokens > MaxWireTokens:
		return fmt.Errorf("max_tokens %d outside 0..%d", r.MaxTokens, MaxWireTokens)
	case !(r.Temperature >= 0 && r.Temperature <= 2):
		return fmt.Errorf("temperature %v outside 0..2", r.Temperature)
	case !(r.TopP > 0 && r.TopP <= 1) || math.IsNaN(r.TopP):
		return fmt.Errorf("top_p %v outside (0, 1]", r.TopP)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
