package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
)

// TxType names the kind of a transaction; it is the second byte on the wire.
type TxType uint8

// The transaction types. The numbers are part of the wire format: never
// renumber them, only add new ones.
const (
	TypeTransfer         TxType = 1
	TypeStake            TxType = 2
	TypeUnstake          TxType = 3
	TypeRegisterProvider TxType = 4
	TypePostJob          TxType = 5
	TypeAssignLease      TxType = 6
	TypeCancelJob        TxType = 7
	TypeSubmitReceipt    TxType = 8
	TypeSettleRound      TxType = 9
	TypeAttestUptime     TxType = 10
	TypeSlash            TxType = 11
)

// The transaction types added for issue 11: escrow exits and disputes.
const (
	TypeCloseJob TxType = 12
	TypeDispute  TxType = 13
	// TypeFraudProof is reserved for verify/'s self-proving fraud proofs
	// (ledger/fraud*.go registers it).
	TypeFraudProof TxType = 14
)

// txKind is what the ledger knows about one transaction type.
type txKind struct {
	name    string
	newBody func() Body
}

// txKinds is the registry of transaction types. A new type is one file:
// a Body (encode, decode, check, apply) and an init that calls RegisterTx.
var txKinds = map[TxType]txKind{}

// RegisterTx adds a transaction type. It is called from init functions of
// this package only (the registry must be the same on every validator);
// registering a number twice is a programming error.
func RegisterTx(t TxType, name string, newBody func() Body) {
	if _, dup := txKinds[t]; dup {
		panic(fmt.Sprintf("ledger: transaction type %d registered twice", t))
	}
	txKinds[t] = txKind{name: name, newBody: newBody}
}

func init() {
	RegisterTx(TypeTransfer, "transfer", func() Body { return &Transfer{} })
	RegisterTx(TypeStake, "stake", func() Body { return &Stake{} })
	RegisterTx(TypeUnstake, "unstake", func() Body { return &Unstake{} })
	RegisterTx(TypeRegisterProvider, "register-provider", func() Body { return &RegisterProvider{} })
	RegisterTx(TypePostJob, "post-job", func() Body { return &PostJob{} })
	RegisterTx(TypeAssignLease, "assign-lease", func() Body { return &AssignLease{} })
	RegisterTx(TypeCancelJob, "cancel-job", func() Body { return &CancelJob{} })
	RegisterTx(TypeSubmitReceipt, "submit-receipt", func() Body { return &SubmitReceipt{} })
	RegisterTx(TypeSettleRound, "settle-round", func() Body { return &SettleRound{} })
	RegisterTx(TypeAttestUptime, "attest-uptime", func() Body { return &AttestUptime{} })
	RegisterTx(TypeSlash, "slash", func() Body { return &Slash{} })
	RegisterTx(TypeCloseJob, "close-job", func() Body { return &CloseJob{} })
	RegisterTx(TypeDispute, "dispute", func() Body { return &Dispute{} })
}

func (t TxType) String() string {
	if k, ok := txKinds[t]; ok {
		return k.name
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Wire-format limits. MaxTxBytes bounds a whole encoded transaction.
const (
	wireVersion     = 1
	MaxTxBytes      = 64 << 10
	MaxChainIDBytes = 64
	maxMemoBytes    = 256
	maxNameBytes    = 128
	maxShortString  = 64
	maxListLen      = 64
	// MaxParticipants bounds the participants of one round receipt and the
	// observations of one uptime attestation.
	MaxParticipants = 1024
	maxEvidence     = 32 << 10
	signatureDomain = "gridmind/ledger/tx/v1\x00"
)

// Body is the type-specific part of a transaction: *Transfer, *Stake,
// *Unstake, *RegisterProvider, *PostJob, *AssignLease, *CancelJob,
// *SubmitReceipt, *SettleRound, *AttestUptime, *Slash, *CloseJob,
// *Dispute, or a type registered with RegisterTx.
type Body interface {
	Type() TxType
	encode(e *encoder)
	decode(d *decoder)
	// check validates the body on its own (no state); from is the signer.
	check(c *checkCtx) error
	// apply executes the body on a fork. It checks everything before it
	// writes anything: a refusal must leave the state as it was.
	apply(s *State, tx *Tx) (TxResult, *TxError)
}

// Tx is a signed ledger transaction. The signature covers every field but
// itself, including the chain ID (no replay on another chain) and the
// sender's nonce (no replay on this one).
type Tx struct {
	ChainID string
	From    gridmind.NodeID // the signer; its public key is inside the id
	Nonce   uint64          // must equal the sender account's next nonce
	Body    Body
	Sig     []byte

	pub ed25519.PublicKey // From's key, kept by DecodeTx and Sign
}

// Hash is a SHA-256 digest, printed as hex.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText prints the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// ParseHash reads a hash written as 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// TxHash is the hash of an encoded transaction; it is the same as the hash
// CometBFT gives the transaction (SHA-256 of its bytes).
func TxHash(raw []byte) Hash { return sha256.Sum256(raw) }

// unsigned encodes everything but the signature.
func (tx *Tx) unsigned() []byte {
	e := encoder{buf: make([]byte, 0, 160)}
	e.byte1(wireVersion)
	e.byte1(byte(tx.Body.Type()))
	e.str(tx.ChainID)
	if tx.pub != nil {
		e.fixed(tx.pub)
	} else {
		e.node(tx.From)
	}
	e.uvarint(tx.Nonce)
	tx.Body.encode(&e)
	return e.buf
}

func signingBytes(unsigned []byte) []byte {
	return append([]byte(signatureDomain), unsigned...)
}

// Sign fills in From and Sig using key and returns the encoded transaction.
func (tx *Tx) Sign(key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("ledger: sign: not an ed25519 private key")
	}
	if tx.Body == nil {
		return nil, errors.New("ledger: sign: transaction has no body")
	}
	tx.pub = key.Public().(ed25519.PublicKey)
	tx.From = gridmind.NodeIDFromPublicKey(tx.pub)
	if err := tx.checkShape(false); err != nil {
		return nil, err
	}
	u := tx.unsigned()
	tx.Sig = ed25519.Sign(key, signingBytes(u))
	raw := append(u, tx.Sig...)
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("ledger: sign: %d bytes exceeds the %d byte limit", len(raw), MaxTxBytes)
	}
	return raw, nil
}

// Encode returns the wire form of a signed transaction.
func (tx *Tx) Encode() []byte {
	u := tx.unsigned()
	return append(u, tx.Sig...)
}

// NewTx builds and signs a transaction in one step.
func NewTx(key ed25519.PrivateKey, chainID string, nonce uint64, body Body) ([]byte, error) {
	tx := &Tx{ChainID: chainID, Nonce: nonce, Body: body}
	return tx.Sign(key)
}

func (tx *Tx) checkShape(wire bool) error {
	if l := len(tx.ChainID); l == 0 || l > MaxChainIDBytes {
		return fmt.Errorf("ledger: chain id must have 1 to %d bytes, has %d", MaxChainIDBytes, l)
	}
	if tx.pub == nil {
		pub, err := tx.From.PublicKey()
		if err != nil {
			return fmt.Errorf("ledger: sender: %w", err)
		}
		tx.pub = pub
	}
	if err := tx.Body.check(&checkCtx{from: tx.From, wire: wire}); err != nil {
		return fmt.Errorf("ledger: %s: %w", tx.Body.Type(), err)
	}
	return nil
}

func newBody(t TxType) Body {
	if k, ok := txKinds[t]; ok {
		return k.newBody()
	}
	return nil
}

// DecodeTx parses a transaction strictly: exactly one byte form is
// accepted for every transaction, and every field is checked for shape
// (lengths, ranges, sorted lists). It does not check the signature (see
// Verify) and never panics.
func DecodeTx(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("ledger: tx of %d bytes exceeds the %d byte limit", len(raw), MaxTxBytes)
	}
	if len(raw) < ed25519.SignatureSize+2 {
		return nil, fmt.Errorf("ledger: tx of %d bytes is too short", len(raw))
	}
	d := decoder{buf: raw[:len(raw)-ed25519.SignatureSize]}
	if v := d.byte1("version"); v != wireVersion {
		return nil, fmt.Errorf("ledger: unknown tx format version %d", v)
	}
	t := TxType(d.byte1("type"))
	body := newBody(t)
	if body == nil {
		return nil, fmt.Errorf("ledger: unknown tx type %d", uint8(t))
	}
	tx := &Tx{Body: body}
	tx.ChainID = d.str("chain id", MaxChainIDBytes)
	tx.pub = ed25519.PublicKey(d.take("sender", ed25519.PublicKeySize))
	if d.err == nil {
		tx.pub = append(ed25519.PublicKey(nil), tx.pub...)
		tx.From = nodeIDOf(tx.pub)
	}
	tx.Nonce = d.uvarint("nonce")
	body.decode(&d)
	if d.err != nil {
		return nil, fmt.Errorf("ledger: decode %s: %w", t, d.err)
	}
	if d.off != len(d.buf) {
		return nil, fmt.Errorf("ledger: decode %s: %d unexpected bytes after the body", t, len(d.buf)-d.off)
	}
	tx.Sig = append([]byte(nil), raw[len(raw)-ed25519.SignatureSize:]...)
	if err := tx.checkShape(true); err != nil {
		return nil, err
	}
	return tx, nil
}

// VerifyFunc checks an ed25519 signature. The default is
// crypto/ed25519.Verify; chain/ may inject a faster implementation with
// identical results.
type VerifyFunc func(pub ed25519.PublicKey, msg, sig []byte) bool

// VerifiedTx is a decoded transaction whose signature and chain ID have
// been checked. Only Verify makes one, so State.Apply can never be handed
// an unchecked transaction. It is immutable and safe to share.
type VerifiedTx struct {
	tx   *Tx
	hash Hash
	size int
}

// Tx returns the transaction. Callers must not modify it.
func (v *VerifiedTx) Tx() *Tx { return v.tx }

// Hash returns the transaction hash (SHA-256 of its bytes).
func (v *VerifiedTx) Hash() Hash { return v.hash }

// Size is the encoded size in bytes.
func (v *VerifiedTx) Size() int { return v.size }

// Verify decodes raw, checks that it belongs to chainID and that its
// signature is the sender's. verify may be nil (crypto/ed25519). The
// returned error is a *TxError with a result code.
func Verify(chainID string, raw []byte, verify VerifyFunc) (*VerifiedTx, error) {
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, reject(CodeMalformed, "%v", err)
	}
	if tx.ChainID != chainID {
		return nil, reject(CodeWrongChain, "transaction is for chain %q, this is chain %q", tx.ChainID, chainID)
	}
	if verify == nil {
		verify = ed25519.Verify
	}
	msg := signingBytes(raw[:len(raw)-ed25519.SignatureSize])
	if !verify(tx.pub, msg, tx.Sig) {
		return nil, reject(CodeBadSignature, "signature does not match sender %s", tx.From)
	}
	return &VerifiedTx{tx: tx, hash: TxHash(raw), size: len(raw)}, nil
}
