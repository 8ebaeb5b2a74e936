package ledger

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/gridmind/gridmind"
)

// Transfer moves Amount from the sender's balance to To.
type Transfer struct {
	To     gridmind.NodeID `json:"to"`
	Amount gridmind.Amount `json:"amount"`
	Memo   string          `json:"memo,omitempty"`
}

// Stake moves Amount from the sender's balance into its stake.
type Stake struct {
	Amount gridmind.Amount `json:"amount"`
}

// Unstake moves Amount from the sender's stake into unbonding; it returns
// to the balance Params.UnbondingBlocks blocks later.
type Unstake struct {
	Amount gridmind.Amount `json:"amount"`
}

// RegisterProvider registers the sender as a provider or replaces its
// offer. Offer.Node is always the sender (it is not on the wire).
type RegisterProvider struct {
	Offer gridmind.Offer `json:"offer"`
}

// PostJob creates a job; Spec.Budget moves from the sender's balance into
// the job's escrow. The job ID is JobIDFor(chain, sender, nonce). Size
// states how big one worker's round is, so the ledger computes work itself
// rather than believing what workers say they did.
type PostJob struct {
	Spec gridmind.JobSpec `json:"spec"`
	Size JobSize          `json:"size"`
}

// JobSize is what the ledger needs to compute a worker's work in one
// round: 6 FLOP per parameter per token (forward and backward), times
// TokensPerStep tokens per inner step, times the spec's inner steps.
type JobSize struct {
	ModelParams   uint64 `json:"model_params"`
	TokensPerStep uint64 `json:"tokens_per_step"` // batch size × context
}

// Bounds on JobSize: the product 6 × params × tokens fits in 64 bits.
const (
	MaxModelParams   = 1 << 40
	MaxTokensPerStep = 1 << 20
)

// AssignLease leases Provider to Job. Only the job's requester may send
// it, and only with the provider's Acceptance: its ed25519 signature over
// LeaseAcceptanceBytes (chain, job, provider, requester, FromRound,
// ValidUntil), so nobody can be leased, and then counted as failing
// rounds, without agreeing to it. FromRound is the first round the
// provider is expected to take part in (a standby joins later than round
// 0); ValidUntil is the last height at which the acceptance may be used.
type AssignLease struct {
	Job        JobID           `json:"job"`
	Provider   gridmind.NodeID `json:"provider"`
	FromRound  uint64          `json:"from_round"`
	ValidUntil int64           `json:"valid_until"`
	Acceptance []byte          `json:"acceptance"`
}

// CancelJob ends a job: receipts already submitted are settled, leases
// end and the unspent escrow returns to the requester.
type CancelJob struct {
	Job JobID `json:"job"`
}

// Participation is the work one participant did in a round, in work units
// (the unit the provider's price is quoted in).
type Participation struct {
	Node gridmind.NodeID `json:"node"`
	Work uint64          `json:"work"`
}

// SubmitReceipt records the outcome of one training round: the model hash
// after the round and who contributed (sorted by node id, each once). The
// ledger accepts it from the job's requester, or from anyone when
// Signatures holds valid signatures of more than half of the job's active
// leased providers over ReceiptSigningBytes (job, round, model hash,
// contributors). Work is not on the wire: the ledger computes it from the
// job's size.
type SubmitReceipt struct {
	Job          JobID             `json:"job"`
	Round        uint64            `json:"round"`
	ModelHash    Hash              `json:"model_hash"`
	Contributors []gridmind.NodeID `json:"contributors"`
	Signatures   []NodeSignature   `json:"signatures,omitempty"` // sorted by node, each once
}

// NodeSignature is one node's ed25519 signature.
type NodeSignature struct {
	Node gridmind.NodeID `json:"node"`
	Sig  []byte          `json:"sig"`
}

// SettleRound pays a submitted receipt out of the job's escrow.
type SettleRound struct {
	Job   JobID  `json:"job"`
	Round uint64 `json:"round"`
}

// Observation is what an observer saw of one node's heartbeats during an
// epoch: Seen of Expected beats.
type Observation struct {
	Node     gridmind.NodeID `json:"node"`
	Seen     uint64          `json:"seen"`
	Expected uint64          `json:"expected"`
}

// AttestUptime is a signed batch of heartbeat observations for one epoch.
// Observations are sorted by node id; an observer attests each epoch at
// most once, and epochs only go forward.
type AttestUptime struct {
	Epoch        uint64        `json:"epoch"`
	Observations []Observation `json:"observations"`
}

// Slash takes FractionPPM (parts per million) of Offender's stake and
// unbonding into the slash pool. Evidence is opaque here; each piece of
// evidence can be used once.
type Slash struct {
	Offender    gridmind.NodeID `json:"offender"`
	FractionPPM uint64          `json:"fraction_ppm"`
	Evidence    []byte          `json:"evidence"`
	Reason      string          `json:"reason,omitempty"`
}

// Handlers: each body executes itself through the State method for it.
func (b *Transfer) apply(s *State, tx *Tx) (TxResult, *TxError) { return s.applyTransfer(tx, b) }
func (b *Stake) apply(s *State, tx *Tx) (TxResult, *TxError)    { return s.applyStake(tx, b) }
func (b *Unstake) apply(s *State, tx *Tx) (TxResult, *TxError)  { return s.applyUnstake(tx, b) }
func (b *RegisterProvider) apply(s *State, tx *Tx) (TxResult, *TxError) {
	return s.applyRegisterProvider(tx, b)
}
func (b *PostJob) apply(s *State, tx *Tx) (TxResult, *TxError)     { return s.applyPostJob(tx, b) }
func (b *AssignLease) apply(s *State, tx *Tx) (TxResult, *TxError) { return s.applyAssignLease(tx, b) }
func (b *CancelJob) apply(s *State, tx *Tx) (TxResult, *TxError)   { return s.applyCancelJob(tx, b) }
func (b *SubmitReceipt) apply(s *State, tx *Tx) (TxResult, *TxError) {
	return s.applySubmitReceipt(tx, b)
}
func (b *SettleRound) apply(s *State, tx *Tx) (TxResult, *TxError) { return s.applySettleRound(tx, b) }
func (b *AttestUptime) apply(s *State, tx *Tx) (TxResult, *TxError) {
	return s.applyAttestUptime(tx, b)
}
func (b *Slash) apply(s *State, tx *Tx) (TxResult, *TxError) { return s.applySlash(tx, b) }

// Type implementations.
func (*Transfer) Type() TxType         { return TypeTransfer }
func (*Stake) Type() TxType            { return TypeStake }
func (*Unstake) Type() TxType          { return TypeUnstake }
func (*RegisterProvider) Type() TxType { return TypeRegisterProvider }
func (*PostJob) Type() TxType          { return TypePostJob }
func (*AssignLease) Type() TxType      { return TypeAssignLease }
func (*CancelJob) Type() TxType        { return TypeCancelJob }
func (*SubmitReceipt) Type() TxType    { return TypeSubmitReceipt }
func (*SettleRound) Type() TxType      { return TypeSettleRound }
func (*AttestUptime) Type() TxType     { return TypeAttestUptime }
func (*Slash) Type() TxType            { return TypeSlash }

// JobID identifies a job: 16 bytes, printed as 32 hex digits.
type JobID string

const jobIDBytes = 16

func jobIDFromBytes(b []byte) JobID { return JobID(hex.EncodeToString(b)) }

// ParseJobID checks that s is a well-formed job id.
func ParseJobID(s string) (JobID, error) {
	id := JobID(s)
	return id, id.validate()
}

func (id JobID) validate() error {
	if len(id) != 2*jobIDBytes {
		return fmt.Errorf("job id %q: want %d hex digits", shorten(string(id)), 2*jobIDBytes)
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("job id %q: not lower-case hex", shorten(string(id)))
		}
	}
	return nil
}

func (id JobID) raw() []byte {
	b, err := hex.DecodeString(string(id))
	if err != nil || len(b) != jobIDBytes {
		return make([]byte, jobIDBytes)
	}
	return b
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

var (
	errZeroAmount = errors.New("amount must be positive")
	errSelf       = errors.New("sender and recipient are the same account")
)

// checkCtx is what a body's shape check needs to know: the signer, and
// whether the body was decoded from the wire, in which case every node id
// in it was made from 32 raw bytes and is well-formed by construction
// (checking it again would cost a base58 decode per id).
type checkCtx struct {
	from gridmind.NodeID
	wire bool
}

func (c *checkCtx) node(what string, id gridmind.NodeID) error {
	if c.wire {
		return nil
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (b *Transfer) encode(e *encoder) { e.node(b.To); e.uvarint(uint64(b.Amount)); e.str(b.Memo) }
func (b *Transfer) decode(d *decoder) {
	b.To = d.node("to")
	b.Amount = d.amount("amount")
	b.Memo = d.str("memo", maxMemoBytes)
}
func (b *Transfer) check(c *checkCtx) error {
	from := c.from
	if b.Amount == 0 {
		return errZeroAmount
	}
	if b.To == from {
		return errSelf
	}
	if len(b.Memo) > maxMemoBytes {
		return fmt.Errorf("memo of %d bytes, at most %d", len(b.Memo), maxMemoBytes)
	}
	return c.node("recipient", b.To)
}

func (b *Stake) encode(e *encoder) { e.uvarint(uint64(b.Amount)) }
func (b *Stake) decode(d *decoder) { b.Amount = d.amount("amount") }
func (b *Stake) check(c *checkCtx) error {
	if b.Amount == 0 {
		return errZeroAmount
	}
	return nil
}

func (b *Unstake) encode(e *encoder) { e.uvarint(uint64(b.Amount)) }
func (b *Unstake) decode(d *decoder) { b.Amount = d.amount("amount") }
func (b *Unstake) check(c *checkCtx) error {
	if b.Amount == 0 {
		return errZeroAmount
	}
	return nil
}

func (b *RegisterProvider) encode(e *encoder) { encodeOffer(e, &b.Offer) }
func (b *RegisterProvider) decode(d *decoder) { decodeOffer(d, &b.Offer) }
func (b *RegisterProvider) check(c *checkCtx) error {
	from := c.from
	// The offer's node is the signer by construction: it is not on the
	// wire, so a decoded offer always names the sender.
	if b.Offer.Node == "" {
		b.Offer.Node = from
	}
	if b.Offer.Node != from {
		return fmt.Errorf("offer names node %s but is signed by %s", b.Offer.Node.Short(), from.Short())
	}
	return checkOffer(&b.Offer)
}

func (b *PostJob) encode(e *encoder) {
	encodeSpec(e, &b.Spec)
	e.uvarint(b.Size.ModelParams)
	e.uvarint(b.Size.TokensPerStep)
}
func (b *PostJob) decode(d *decoder) {
	decodeSpec(d, &b.Spec)
	b.Size.ModelParams = d.uvarint("model params")
	b.Size.TokensPerStep = d.uvarint("tokens per step")
}
func (b *PostJob) check(c *checkCtx) error {
	if err := checkSpec(&b.Spec); err != nil {
		return err
	}
	if b.Size.ModelParams == 0 || b.Size.ModelParams > MaxModelParams || b.Size.TokensPerStep == 0 || b.Size.TokensPerStep > MaxTokensPerStep {
		return fmt.Errorf("job size %d parameters × %d tokens per step, want 1 to %d and 1 to %d",
			b.Size.ModelParams, b.Size.TokensPerStep, uint64(MaxModelParams), MaxTokensPerStep)
	}
	return nil
}

func (b *AssignLease) encode(e *encoder) {
	e.fixed(b.Job.raw())
	e.node(b.Provider)
	e.uvarint(b.FromRound)
	e.uvarint(uint64(b.ValidUntil))
	e.fixed(b.Acceptance)
}
func (b *AssignLease) decode(d *decoder) {
	b.Job = d.jobID("job")
	b.Provider = d.node("provider")
	b.FromRound = d.uvarint("from round")
	if v := d.uvarint("valid until"); v <= math.MaxInt64 {
		b.ValidUntil = int64(v)
	} else {
		d.fail("valid until: %d out of range", v)
	}
	b.Acceptance = slices.Clone(d.take("acceptance", ed25519.SignatureSize))
}
func (b *AssignLease) check(c *checkCtx) error {
	if err := b.Job.validate(); err != nil {
		return err
	}
	if b.FromRound >= MaxRounds {
		return fmt.Errorf("from round %d, want below %d", b.FromRound, MaxRounds)
	}
	if b.ValidUntil <= 0 {
		return fmt.Errorf("acceptance valid until height %d", b.ValidUntil)
	}
	if len(b.Acceptance) != ed25519.SignatureSize {
		return fmt.Errorf("acceptance of %d bytes, want a %d-byte signature", len(b.Acceptance), ed25519.SignatureSize)
	}
	return c.node("provider", b.Provider)
}

func (b *CancelJob) encode(e *encoder)       { e.fixed(b.Job.raw()) }
func (b *CancelJob) decode(d *decoder)       { b.Job = d.jobID("job") }
func (b *CancelJob) check(c *checkCtx) error { return b.Job.validate() }

func (b *SubmitReceipt) encode(e *encoder) {
	e.fixed(b.Job.raw())
	e.uvarint(b.Round)
	e.fixed(b.ModelHash[:])
	e.uvarint(uint64(len(b.Contributors)))
	for _, n := range b.Contributors {
		e.node(n)
	}
	e.uvarint(uint64(len(b.Signatures)))
	for _, sg := range b.Signatures {
		e.node(sg.Node)
		e.fixed(sg.Sig)
	}
}
func (b *SubmitReceipt) decode(d *decoder) {
	b.Job = d.jobID("job")
	b.Round = d.uvarint("round")
	b.ModelHash = d.hash("model hash")
	n := d.count("contributors", MaxParticipants)
	if n > 0 && d.err == nil {
		b.Contributors = make([]gridmind.NodeID, n)
		for i := range b.Contributors {
			b.Contributors[i] = d.node("contributor")
		}
	}
	n = d.count("signatures", MaxParticipants)
	if n > 0 && d.err == nil {
		b.Signatures = make([]NodeSignature, n)
		for i := range b.Signatures {
			b.Signatures[i].Node = d.node("signer")
			b.Signatures[i].Sig = slices.Clone(d.take("signature", ed25519.SignatureSize))
		}
	}
}
func (b *SubmitReceipt) check(c *checkCtx) error {
	if err := b.Job.validate(); err != nil {
		return err
	}
	if b.Round >= MaxRounds {
		return fmt.Errorf("round %d, want below %d", b.Round, MaxRounds)
	}
	if len(b.Contributors) == 0 || len(b.Contributors) > MaxParticipants {
		return fmt.Errorf("%d contributors, want 1 to %d", len(b.Contributors), MaxParticipants)
	}
	for i, n := range b.Contributors {
		if err := c.node("contributor", n); err != nil {
			return err
		}
		if i > 0 && n <= b.Contributors[i-1] {
			return errors.New("contributors must be sorted by node id, each once")
		}
	}
	if len(b.Signatures) > MaxParticipants {
		return fmt.Errorf("%d signatures, at most %d", len(b.Signatures), MaxParticipants)
	}
	for i, sg := range b.Signatures {
		if err := c.node("signer", sg.Node); err != nil {
			return err
		}
		if i > 0 && sg.Node <= b.Signatures[i-1].Node {
			return errors.New("signatures must be sorted by node id, each once")
		}
		if len(sg.Sig) != ed25519.SignatureSize {
			return fmt.Errorf("signature of %s has %d bytes, want %d", sg.Node.Short(), len(sg.Sig), ed25519.SignatureSize)
		}
	}
	return nil
}

func (b *SettleRound) encode(e *encoder)       { e.fixed(b.Job.raw()); e.uvarint(b.Round) }
func (b *SettleRound) decode(d *decoder)       { b.Job = d.jobID("job"); b.Round = d.uvarint("round") }
func (b *SettleRound) check(c *checkCtx) error { return b.Job.validate() }

// maxBeatsPerObservation bounds one observation so the counters summed
// over the life of the chain cannot overflow.
const maxBeatsPerObservation = 1_000_000

func (b *AttestUptime) encode(e *encoder) {
	e.uvarint(b.Epoch)
	e.uvarint(uint64(len(b.Observations)))
	for _, o := range b.Observations {
		e.node(o.Node)
		e.uvarint(o.Seen)
		e.uvarint(o.Expected)
	}
}
func (b *AttestUptime) decode(d *decoder) {
	b.Epoch = d.uvarint("epoch")
	n := d.count("observations", MaxParticipants)
	if n > 0 && d.err == nil {
		b.Observations = make([]Observation, n)
		for i := range b.Observations {
			b.Observations[i].Node = d.node("observed node")
			b.Observations[i].Seen = d.uvarint("seen")
			b.Observations[i].Expected = d.uvarint("expected")
		}
	}
}
func (b *AttestUptime) check(c *checkCtx) error {
	from := c.from
	if len(b.Observations) == 0 || len(b.Observations) > MaxParticipants {
		return fmt.Errorf("%d observations, want 1 to %d", len(b.Observations), MaxParticipants)
	}
	for i, o := range b.Observations {
		if err := c.node("observed node", o.Node); err != nil {
			return err
		}
		if i > 0 && o.Node <= b.Observations[i-1].Node {
			return errors.New("observations must be sorted by node id, each once")
		}
		if o.Node == from {
			return errors.New("a node cannot attest its own uptime")
		}
		if o.Expected == 0 || o.Expected > maxBeatsPerObservation || o.Seen > o.Expected {
			return fmt.Errorf("observation of %s: seen %d of expected %d (want 0 ≤ seen ≤ expected, 1 ≤ expected ≤ %d)",
				o.Node.Short(), o.Seen, o.Expected, maxBeatsPerObservation)
		}
	}
	return nil
}

func (b *Slash) encode(e *encoder) {
	e.node(b.Offender)
	e.uvarint(b.FractionPPM)
	e.bytes(b.Evidence)
	e.str(b.Reason)
}
func (b *Slash) decode(d *decoder) {
	b.Offender = d.node("offender")
	b.FractionPPM = d.uvarint("fraction")
	b.Evidence = d.bytes("evidence", maxEvidence)
	b.Reason = d.str("reason", maxMemoBytes)
}
func (b *Slash) check(c *checkCtx) error {
	if err := c.node("offender", b.Offender); err != nil {
		return err
	}
	if b.FractionPPM == 0 || b.FractionPPM > PPM {
		return fmt.Errorf("fraction %d ppm, want 1 to %d", b.FractionPPM, PPM)
	}
	if len(b.Evidence) == 0 || len(b.Evidence) > maxEvidence {
		return fmt.Errorf("evidence of %d bytes, want 1 to %d", len(b.Evidence), maxEvidence)
	}
	if len(b.Reason) > maxMemoBytes {
		return fmt.Errorf("reason of %d bytes, at most %d", len(b.Reason), maxMemoBytes)
	}
	return nil
}
