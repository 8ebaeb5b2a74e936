package serve

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// Receipt meters one served request: how many tokens went in and out, for
// which model, between which server and client. The server signs it when
// it finishes; the client checks the counts against what it received and
// countersigns. Only a receipt with both signatures is paid.
//
// The receipt also binds what was asked and what was answered, so that an
// auditor can re-run the request on another replica of the same weights
// and compare (AuditReceipt): RequestHash covers the request as the server
// received it (model, prompt, limits, sampling parameters, seed, skipped
// prefix), Seed repeats the sampling seed, and OutputHash is the SHA-256 of
// the text this server delivered (after the skipped prefix). The client
// checks OutputHash against what it received before it countersigns.
//
// TokensOut counts every token the server generated, including a prefix it
// regenerated and skipped because the client already had it from a replica
// that died: the server did that work. A replica whose attempt was cancelled
// (it lost a hedge race) gets no receipt; hedging is limited to one extra
// replica per request to bound that unpaid work.
type Receipt struct {
	RequestID string          `json:"request_id"`
	Model     string          `json:"model"`
	Server    gridmind.NodeID `json:"server"`
	Client    gridmind.NodeID `json:"client"`
	TokensIn  int64           `json:"tokens_in"`
	TokensOut int64           `json:"tokens_out"`
	TimeMs    int64           `json:"time_ms"` // unix milliseconds when the server finished
	// RequestHash is RequestHash(the wire request), OutputHash the SHA-256
	// of the delivered text, both hex; Seed is the sampling seed.
	RequestHash string `json:"request_hash"`
	Seed        int64  `json:"seed"`
	OutputHash  string `json:"output_hash"`
	ServerSig   []byte `json:"server_sig"`
	ClientSig   []byte `json:"client_sig,omitempty"`
}

// MaxReceiptSkew is how far a receipt's time may be from the client's
// clock for the client to countersign it. The time places the receipt
// among the ledger's blocks, which draw its audit (verify.ServedReceipt),
// so a server may not backdate it past its audit window.
const MaxReceiptSkew = 2 * time.Minute

// Receipt errors.
var (
	ErrReceiptSignature = errors.New("receipt: bad signature")
	ErrReceiptShape     = errors.New("receipt: malformed")
)

// signingBytes covers every field but the signatures, under a domain tag
// and the signer's role, so a signature cannot be reused for another
// purpose or as the other party's.
func (r *Receipt) signingBytes(role string) []byte {
	return verify.ReceiptSigningBytes(role, r.RequestID, r.Model, string(r.Server), string(r.Client), r.RequestHash, r.OutputHash,
		r.TokensIn, r.TokensOut, r.TimeMs, r.Seed)
}

// Validate checks the shape (not the signatures).
func (r *Receipt) Validate() error {
	switch {
	case r.RequestID == "" || len(r.RequestID) > maxIDBytes:
		return fmt.Errorf("%w: request id of %d bytes", ErrReceiptShape, len(r.RequestID))
	case r.Model == "" || len(r.Model) > maxIDBytes:
		return fmt.Errorf("%w: model id of %d bytes", ErrReceiptShape, len(r.Model))
	case r.Server.Validate() != nil:
		return fmt.Errorf("%w: server: %v", ErrReceiptShape, r.Server.Validate())
	case r.Client.Validate() != nil:
		return fmt.Errorf("%w: client: %v", ErrReceiptShape, r.Client.Validate())
	case !isHexHash(r.RequestHash) || !isHexHash(r.OutputHash):
		return fmt.Errorf("%w: request and output hashes must be 64 lower-case hex digits", ErrReceiptShape)
	case r.TokensIn < 0 || r.TokensOut < 0:
		return fmt.Errorf("%w: negative token count", ErrReceiptShape)
	case len(r.ServerSig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: server signature of %d bytes", ErrReceiptShape, len(r.ServerSig))
	case len(r.ClientSig) != 0 && len(r.ClientSig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: client signature of %d bytes", ErrReceiptShape, len(r.ClientSig))
	}
	return nil
}

// SignServer signs as the server; key must be the Server's key.
func (r *Receipt) SignServer(key ed25519.PrivateKey) error {
	if err := checkKey(key, r.Server, "server"); err != nil {
		return err
	}
	r.ServerSig = ed25519.Sign(key, r.signingBytes("server"))
	return nil
}

// SignClient countersigns as the client; key must be the Client's key.
func (r *Receipt) SignClient(key ed25519.PrivateKey) error {
	if err := checkKey(key, r.Client, "client"); err != nil {
		return err
	}
	r.ClientSig = ed25519.Sign(key, r.signingBytes("client"))
	return nil
}

func checkKey(key ed25519.PrivateKey, want gridmind.NodeID, role string) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("receipt: %s key of %d bytes", role, len(key))
	}
	if got := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)); got != want {
		return fmt.Errorf("receipt: %s key belongs to %s, not %s", role, got.Short(), want.Short())
	}
	return nil
}

// VerifyServer checks the server's signature against the Server NodeID.
func (r *Receipt) VerifyServer() error { return r.verify("server", r.Server, r.ServerSig) }

// VerifyClient checks the client's signature against the Client NodeID.
func (r *Receipt) VerifyClient() error { return r.verify("client", r.Client, r.ClientSig) }

// Verify checks the shape and both signatures: a receipt that passes is payable.
func (r *Receipt) Verify() error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := r.VerifyServer(); err != nil {
		return err
	}
	return r.VerifyClient()
}

func (r *Receipt) verify(role string, id gridmind.NodeID, sig []byte) error {
	pub, err := id.PublicKey()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrReceiptSignature, role, err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, r.signingBytes(role), sig) {
		return fmt.Errorf("%w: %s %s", ErrReceiptSignature, role, id.Short())
	}
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// RequestHash is the hex SHA-256 of a wire request in a canonical form:
// what a receipt binds, so that an auditor holding the request can check
// it is the one that was served.
func RequestHash(w WireRequest) string {
	b := []byte("gridmind/serve/request/v1")
	for _, f := range []string{w.ID, w.Model, w.Prompt, string(w.PrefixHash)} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(w.MaxTokens))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(w.Temperature))
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(w.TopP))
	b = binary.BigEndian.AppendUint64(b, uint64(w.Seed))
	b = binary.BigEndian.AppendUint64(b, uint64(w.Skip))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// OutputHash is the hex SHA-256 of delivered text.
func OutputHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}
