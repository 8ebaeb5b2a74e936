package verify

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

// ServedReceipt is a served completion's receipt as the verification core
// reads it: the fields a server signs when it finishes a request
// (serve.Receipt), with the request and output hashes as hashes rather
// than hex. SigningBytes reproduces serve's signing bytes exactly, so the
// server's own signature is checked here and on the ledger without serve/;
// serve's tests pin that the two agree.
//
// A receipt is the server's claim: "for the request whose RequestHash is
// this, under this seed, model Model produced the text whose hash is
// OutputHash". Sampling under a seed is bitwise deterministic on the CPU
// backend, so another replica of the same weights given the same request
// produces the same text; an auditor's Result about the receipt (its
// Commitment is ID(), Part WholeRound, Got the re-run's output hash) says
// whether it did.
type ServedReceipt struct {
	RequestID   string
	Model       string
	Server      gridmind.NodeID
	Client      gridmind.NodeID
	TokensIn    int64
	TokensOut   int64
	TimeMs      int64 // unix milliseconds when the server finished (it draws the audit beacon)
	RequestHash Hash
	Seed        int64
	OutputHash  Hash
	ServerSig   []byte
}

// Bounds on a served receipt, the same as serve's wire limits on ids.
const (
	MaxReceiptIDBytes = 128
	// MaxServedReceiptBytes bounds an encoded receipt.
	MaxServedReceiptBytes = 2*(MaxReceiptIDBytes+2) + 2*32 + 2*32 + 4*10 + 2 + ed25519.SignatureSize
)

// servedReceiptDomain tags an inference receipt's signed bytes
// (ReceiptSigningBytes: serve signs them, the ledger checks them).
const servedReceiptDomain = "gridmind/receipt/v2"

// SigningBytes is what the server signed: serve.Receipt's signing bytes
// for the "server" role (length-prefixed strings, hashes as lower-case
// hex, then the counts, time and seed as big-endian 64-bit integers).
func (r *ServedReceipt) SigningBytes() []byte {
	return ReceiptSigningBytes("server", r.RequestID, r.Model, string(r.Server), string(r.Client),
		hex.EncodeToString(r.RequestHash[:]), hex.EncodeToString(r.OutputHash[:]), r.TokensIn, r.TokensOut, r.TimeMs, r.Seed)
}

// ReceiptSigningBytes is the one layout of an inference receipt's signed
// bytes, which serve's server and client sign (role "server" or "client")
// and the ledger checks: under a domain tag and the signer's role, so a
// signature cannot be reused for another purpose or as the other party's,
// length-prefixed strings, then the counts, time and seed as big-endian
// 64-bit integers. The hashes are lower-case hex.
func ReceiptSigningBytes(role, requestID, model, server, client, requestHash, outputHash string, tokensIn, tokensOut, timeMs, seed int64) []byte {
	b := make([]byte, 0, 256+len(requestID)+len(model)+len(server)+len(client))
	for _, f := range []string{servedReceiptDomain, role, requestID, model, server, client, requestHash, outputHash} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(tokensIn))
	b = binary.BigEndian.AppendUint64(b, uint64(tokensOut))
	b = binary.BigEndian.AppendUint64(b, uint64(timeMs))
	b = binary.BigEndian.AppendUint64(b, uint64(seed))
	return b
}

// ID identifies the claim: the hash of what the server signed. Auditors'
// results about the receipt carry it as their Commitment.
func (r *ServedReceipt) ID() Hash {
	return HashBytes("gridmind/verify/served-receipt-id/v1", r.SigningBytes())
}

// CheckShape validates the fields on their own (no signature).
func (r *ServedReceipt) CheckShape() error {
	switch {
	case r.RequestID == "" || len(r.RequestID) > MaxReceiptIDBytes || !utf8.ValidString(r.RequestID):
		return fmt.Errorf("verify: receipt: request id of %d bytes, want 1 to %d of UTF-8", len(r.RequestID), MaxReceiptIDBytes)
	case r.Model == "" || len(r.Model) > MaxReceiptIDBytes || !utf8.ValidString(r.Model):
		return fmt.Errorf("verify: receipt: model of %d bytes, want 1 to %d of UTF-8", len(r.Model), MaxReceiptIDBytes)
	case r.Server.Validate() != nil:
		return fmt.Errorf("verify: receipt: server: %v", r.Server.Validate())
	case r.Client.Validate() != nil:
		return fmt.Errorf("verify: receipt: client: %v", r.Client.Validate())
	case r.TokensIn < 0 || r.TokensOut < 0:
		return fmt.Errorf("verify: receipt: negative token count")
	case r.TimeMs <= 0:
		return fmt.Errorf("verify: receipt: time %d ms, want after 1970", r.TimeMs)
	}
	return nil
}

// Sign fills r.ServerSig with key, which must be r.Server's (serve signs
// its own receipts; this is for tests and tools).
func (r *ServedReceipt) Sign(key ed25519.PrivateKey) error {
	if err := signer(key, r.Server); err != nil {
		return err
	}
	if err := r.CheckShape(); err != nil {
		return err
	}
	r.ServerSig = ed25519.Sign(key, r.SigningBytes())
	return nil
}

// Verify checks the shape and the server's signature.
func (r *ServedReceipt) Verify() error {
	if err := r.CheckShape(); err != nil {
		return err
	}
	return verifySig(r.Server, r.SigningBytes(), r.ServerSig)
}

func (r *ServedReceipt) encode(e *encoder) {
	e.str(r.RequestID)
	e.str(r.Model)
	e.node(r.Server)
	e.node(r.Client)
	e.uvarint(uint64(r.TokensIn))
	e.uvarint(uint64(r.TokensOut))
	e.uvarint(uint64(r.TimeMs))
	e.hash(r.RequestHash)
	e.uvarint(uint64(r.Seed)) // a negative seed takes ten bytes, still one form
	e.hash(r.OutputHash)
	e.bytes(r.ServerSig)
}

// Encode is the receipt's canonical wire form.
func (r *ServedReceipt) Encode() []byte {
	e := encoder{buf: make([]byte, 0, 384)}
	r.encode(&e)
	return e.buf
}

// DecodeServedReceipt parses a receipt strictly and checks its shape (not
// its signature: see Verify).
func DecodeServedReceipt(b []byte) (ServedReceipt, error) {
	if len(b) > MaxServedReceiptBytes {
		return ServedReceipt{}, fmt.Errorf("verify: receipt of %d bytes exceeds %d", len(b), MaxServedReceiptBytes)
	}
	d := decoder{buf: b}
	var r ServedReceipt
	r.RequestID = d.str("request id", MaxReceiptIDBytes)
	r.Model = d.str("model", MaxReceiptIDBytes)
	r.Server = d.node("server")
	r.Client = d.node("client")
	r.TokensIn = d.int63("tokens in")
	r.TokensOut = d.int63("tokens out")
	r.TimeMs = d.int63("time")
	r.RequestHash = d.hash("request hash")
	r.Seed = int64(d.uvarint("seed"))
	r.OutputHash = d.hash("output hash")
	r.ServerSig = d.bytes("server signature", ed25519.SignatureSize)
	if err := d.finish("receipt"); err != nil {
		return ServedReceipt{}, err
	}
	return r, r.CheckShape()
}

// int63 reads a varint that must fit a non-negative int64.
func (d *decoder) int63(what string) int64 {
	v := d.uvarint(what)
	if d.err == nil && v > 1<<63-1 {
		d.fail("%s: %d does not fit a signed 64-bit integer", what, v)
		return 0
	}
	return int64(v)
}

// NewInferenceResult is what an auditor reports after re-running the
// request rc binds on a replica of the same weights and getting output
// hash got. It is unsigned; call Sign.
func NewInferenceResult(auditor gridmind.NodeID, rc *ServedReceipt, got Hash) Result {
	return Result{Auditor: auditor, Commitment: rc.ID(), Part: WholeRound, Mode: ModeBitwise, Got: got}
}

// InferenceProof is what an accuser files against a server: the server's
// own signed receipt and the committee's signed re-execution results.
// JudgeInference decides what it proves.
type InferenceProof struct {
	Receipt ServedReceipt
	Results []Result // sorted by auditor, each once
}

// MaxInferenceProofBytes bounds an encoded inference proof.
const MaxInferenceProofBytes = MaxServedReceiptBytes + 4 + MaxCommittee*(MaxResultBytes+2)

// Encode is the proof's canonical wire form.
func (p *InferenceProof) Encode() []byte {
	e := encoder{buf: make([]byte, 0, 1024)}
	e.bytes(p.Receipt.Encode())
	encodeResults(&e, p.Results)
	return e.buf
}

// DecodeInferenceProof parses a proof strictly, with every length bounded
// before anything is allocated. Signatures are checked by JudgeInference.
func DecodeInferenceProof(b []byte) (InferenceProof, error) {
	if len(b) > MaxInferenceProofBytes {
		return InferenceProof{}, fmt.Errorf("verify: inference proof of %d bytes exceeds %d", len(b), MaxInferenceProofBytes)
	}
	d := decoder{buf: b}
	var p InferenceProof
	var err error
	raw := d.take("receipt", d.count("receipt length", MaxServedReceiptBytes))
	if d.err == nil {
		if p.Receipt, err = DecodeServedReceipt(raw); err != nil {
			return InferenceProof{}, err
		}
	}
	if p.Results, err = decodeResults(&d); err != nil {
		return InferenceProof{}, err
	}
	if err := d.finish("inference proof"); err != nil {
		return InferenceProof{}, err
	}
	return p, nil
}

// InferenceCommittee names the k auditors of the request rc binds:
// Committee over the InferenceSeed of beacon and the request id, never the
// server itself. In committee order: the first member does the spot check.
func InferenceCommittee(beacon Hash, rc *ServedReceipt, candidates []gridmind.NodeID, k int) []gridmind.NodeID {
	return Committee(InferenceSeed(beacon, rc.RequestID), rc.Server, candidates, k)
}

// JudgeInference decides what results prove about the served receipt rc,
// given the committee drawn for it (InferenceCommittee). The comparison is
// always bitwise: the output of seeded sampling on the CPU backend is
// reproduced exactly or not at all, so results in another mode, or params
// that ask for a tolerance, are refused. Like Judge it checks every
// signature, that every result is about rc from a distinct committee
// member (sorted by auditor), and never runs a model.
func JudgeInference(p Params, rc *ServedReceipt, results []Result, committee []gridmind.NodeID) (Judgement, error) {
	if err := p.Validate(); err != nil {
		return Judgement{}, err
	}
	if p.Mode != ModeBitwise {
		return Judgement{}, fmt.Errorf("verify: inference is judged bitwise, the params say %s", p.Mode)
	}
	if err := rc.Verify(); err != nil {
		return Judgement{}, fmt.Errorf("%w: %w", ErrBadCommitment, err)
	}
	return judge(p, rc.Server, rc.ID(), WholeRound, rc.OutputHash, results, committee)
}
