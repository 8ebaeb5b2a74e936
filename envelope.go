package gridmind

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxEnvelopeBytes bounds every gossip message; larger ones are rejected
// before they are parsed.
const MaxEnvelopeBytes = 64 << 10

// Envelope is the signed wrapper of every gossip message. The signature
// covers the type, sender, sequence number, timestamp and body, under a
// domain-separation tag, so a signature made for one purpose can never be
// replayed as another. docs/PROTOCOL.md specifies the encoding byte for
// byte, with test vectors.
//
// Seq is a JSON string of decimal digits ("seq":"1733471000000000000"):
// senders use nanosecond clocks, above 2^53, which a JSON number would
// lose in any parser that reads numbers as doubles (JavaScript), and a
// re-serialised envelope would then fail its signature.
type Envelope struct {
	Type string          `json:"type"`
	From NodeID          `json:"from"`
	Seq  uint64          `json:"seq,string"` // per sender, strictly increasing
	Time int64           `json:"time"`       // unix milliseconds when signed (below 2^53)
	Body json.RawMessage `json:"body"`
	Sig  []byte          `json:"sig"` // base64 (standard, padded)
}

const envelopeDomain = "gridmind/envelope/v1"

// Errors returned when an envelope is refused; receivers count them by kind.
var (
	ErrMalformed    = errors.New("malformed message")
	ErrBadSignature = errors.New("bad signature")
	ErrStale        = errors.New("stale or future timestamp")
	ErrReplay       = errors.New("replayed sequence number")
)

func (e *Envelope) signingBytes() []byte {
	b := make([]byte, 0, 64+len(e.Type)+len(e.From)+len(e.Body))
	b = appendField(b, []byte(envelopeDomain))
	b = appendField(b, []byte(e.Type))
	b = appendField(b, []byte(e.From))
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time))
	b = appendField(b, e.Body)
	return b
}

func appendField(b, field []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(field)))
	return append(b, field...)
}

// SignEnvelope builds and signs an envelope carrying body (marshalled as JSON).
func SignEnvelope(key ed25519.PrivateKey, typ string, seq uint64, now time.Time, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("envelope %s: %w", typ, err)
	}
	env := Envelope{
		Type: typ,
		From: NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)),
		Seq:  seq,
		Time: now.UnixMilli(),
		Body: raw,
	}
	env.Sig = ed25519.Sign(key, env.signingBytes())
	out, err := json.Marshal(&env)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("envelope %s: %d bytes exceeds the %d byte limit", typ, len(out), MaxEnvelopeBytes)
	}
	return out, nil
}

// OpenEnvelope decodes data, checks its shape and its signature, and that
// its timestamp is within maxSkew of now. It never panics on any input.
func OpenEnvelope(data []byte, now time.Time, maxSkew time.Duration) (*Envelope, error) {
	if len(data) == 0 || len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("%w: size %d", ErrMalformed, len(data))
	}
	var env Envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(env.Body) == 0 {
		return nil, fmt.Errorf("%w: no body", ErrMalformed)
	}
	if env.Type == "" || len(env.Type) > 32 {
		return nil, fmt.Errorf("%w: type %q", ErrMalformed, shorten(env.Type))
	}
	if len(env.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature length %d", ErrMalformed, len(env.Sig))
	}
	pub, err := env.From.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !ed25519.Verify(pub, env.signingBytes(), env.Sig) {
		return nil, fmt.Errorf("%w: from %s", ErrBadSignature, env.From.Short())
	}
	skew := now.Sub(time.UnixMilli(env.Time))
	if skew > maxSkew || skew < -maxSkew {
		return nil, fmt.Errorf("%w: %s off", ErrStale, skew.Round(time.Millisecond))
	}
	return &env, nil
}

// Decode unmarshals the body into v, strictly: unknown fields and data
// after the value are refused.
func (e *Envelope) Decode(v any) error {
	if err := decodeStrict(e.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, e.Type, err)
	}
	return nil
}

// DecodeStrict unmarshals one JSON value from data into v, refusing
// unknown fields (at any depth) and anything after the value. Every
// decoder of peer input uses it, so a message means one thing to every
// reader.
func DecodeStrict(data []byte, v any) error { return decodeStrict(data, v) }

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}
