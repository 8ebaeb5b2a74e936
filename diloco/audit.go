package diloco

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// Verification (see verify/doc.go). With Config.Audit set, a worker signs
// a verify.Commitment for every round it trains: θ_r's hash, its shard,
// the hash of its local state (θ_r with its AdamW moments) before the H
// inner steps and after them, the error-feedback residual before and after
// quantizing Δ, and as Delta the Merkle root of the quantized Δ it
// committed to in its "ready" (train's own commitment, so the hash an
// auditor reproduces is the one the round used). The commitment rides on
// the worker's "done" (train.Message.Audit), which goes to every worker of
// the job; each keeps the ones it sees (AuditLog.Seen). The worker keeps
// what an auditor needs to re-run the round (AuditLog.Inputs) for the last
// Keep rounds; jobs/ serves it to the auditors the ledger's draw names.

// AuditLog is one worker's verification record for one job: its own
// commitments with the inputs to re-run them, and the commitments its
// peers sent. Safe for concurrent use; it outlives Worker.Run, so that
// auditors can fetch a round after the job's last round.
type AuditLog struct {
	// Keep is how many recent rounds are kept (default 6).
	Keep int

	mu     sync.Mutex
	inputs map[uint64]*AuditInputs
	seen   map[seenKey][]byte
}

type seenKey struct {
	worker gridmind.NodeID
	round  uint64
}

// AuditInputs is what re-executing one of this worker's rounds needs.
type AuditInputs struct {
	Commitment []byte    // the signed verify.Commitment, encoded
	State      []byte    // the trainer's Save after θ_r was set: θ_r and the optimizer state before the H steps
	Residual   []float32 // the error-feedback residual before quantizing the round's Δ (nil: none)
	Target     []float32 // a shifted round's real weights (verify.Commitment.ShiftAt; nil: none)
}

func (l *AuditLog) keep() uint64 {
	if l.Keep <= 0 {
		return 6
	}
	return uint64(l.Keep)
}

func (l *AuditLog) put(round uint64, in *AuditInputs) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inputs == nil {
		l.inputs = map[uint64]*AuditInputs{}
	}
	l.inputs[round] = in
	for r := range l.inputs {
		if r+l.keep() <= round {
			delete(l.inputs, r)
		}
	}
}

// Inputs returns this worker's inputs for round, if still kept.
func (l *AuditLog) Inputs(round uint64) (*AuditInputs, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in, ok := l.inputs[round]
	return in, ok
}

func (l *AuditLog) see(worker gridmind.NodeID, round uint64, commitment []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[seenKey][]byte{}
	}
	k := seenKey{worker, round}
	if _, dup := l.seen[k]; dup {
		return // the first signed commitment for a round stands
	}
	l.seen[k] = commitment
	for k := range l.seen {
		if k.round+l.keep() <= round {
			delete(l.seen, k)
		}
	}
}

// Seen returns the commitment worker sent with its "done" for round, as
// this worker received it (signature checked).
func (l *AuditLog) Seen(worker gridmind.NodeID, round uint64) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.seen[seenKey{worker, round}]
	return c, ok
}

// pendingCommit is what the trainer goroutine measured for a round, until
// the "ready" reveals the root the commitment's Delta must be.
type pendingCommit struct {
	state     []byte    // Save before the H steps
	start     []float32 // θ_r
	local     []float32 // the weights after the H steps
	from      []float32 // what Δ is taken from: start, or the real weights shifted to
	shiftAt   int       // > 0: shifted to from after that many steps
	steps     int       // the inner steps run (H, or more with elastic steps)
	optAfter  verify.Hash
	committed []byte // the encoded commitment, once built
	failed    bool   // the root did not match: nothing to commit
}

// auditor is the loop's side of verification: it shadows the
// coordinator's error feedback (the residual is part of what is
// committed, and train keeps its own private) and builds each round's
// commitment when its "ready" goes out.
type auditor struct {
	w        *Worker
	log      *AuditLog
	feedback train.ErrorFeedback
	pending  map[uint64]*pendingCommit
}

func newAuditor(w *Worker) *auditor {
	if w.cfg.Audit == nil {
		return nil
	}
	return &auditor{w: w, log: w.cfg.Audit, pending: map[uint64]*pendingCommit{}, feedback: train.ErrorFeedback{Codec: jobCodec(w.cfg.Protocol.Codec)}}
}

// jobCodec is the codec train uses for c (0 means int8).
func jobCodec(c train.Codec) train.Codec {
	if c == 0 {
		return train.CodecInt8
	}
	return c
}

// trained records a round's training result (from the trainer goroutine's
// measurements).
func (a *auditor) trained(r trainResult) {
	if a == nil || r.stateBefore == nil {
		return
	}
	a.pending[r.round] = &pendingCommit{state: r.stateBefore, start: r.start, local: r.local, optAfter: r.optAfter, from: r.from, shiftAt: r.shiftAt, steps: r.steps}
	for k := range a.pending {
		if k+4 < r.round {
			delete(a.pending, k)
		}
	}
}

// outgoing attaches the round's commitment to this worker's "done", and
// builds it once a message shows the root train committed to: its own
// "ready", or the announcement that lists it (a leader sends no "ready"
// to itself).
func (a *auditor) outgoing(m *train.Message) {
	if a == nil || m.From != a.w.Self() {
		return
	}
	a.reveal(*m)
	if p := a.pending[m.Round]; p != nil && m.Type == train.MsgDone {
		m.Audit = p.committed
	}
}

// reveal commits to the round of m if m shows this worker's root.
func (a *auditor) reveal(m train.Message) {
	p := a.pending[m.Round]
	if p == nil || p.committed != nil || p.failed {
		return
	}
	var root train.Hash
	switch m.Type {
	case train.MsgReady:
		root = m.Root
	case train.MsgAnnounce:
		i := slices.Index(m.Participants, a.w.Self())
		if i < 0 || i >= len(m.Roots) {
			return
		}
		root = m.Roots[i]
	default:
		return
	}
	if err := a.commit(m.Round, root, p); err != nil {
		p.failed = true
		a.w.log.Warn("no verification commitment for this round", "round", m.Round, "err", err)
	}
}

// commit builds and signs the round's commitment. root is the Merkle root
// the coordinator committed to; the shadowed quantizer must reproduce it
// (from the carried residual, or from none after the coordinator reset it
// on re-synchronizing), or nothing is committed.
func (a *auditor) commit(round uint64, root train.Hash, p *pendingCommit) error {
	w := a.w
	delta, err := train.PseudoGradient(p.from, p.local)
	if err != nil {
		return err
	}
	pc := w.cfg.Protocol
	pc.Codec = jobCodec(pc.Codec)
	blockSize := pc.BlockSize
	if blockSize == 0 {
		blockSize = train.DefaultBlockSize
	}
	var residualBefore []float32
	feedback := a.feedback
	if pc.Codec.Quantizes() {
		found := false
		for _, fb := range []train.ErrorFeedback{a.feedback, {Codec: pc.Codec}} {
			before := slices.Clone(fb.Residual())
			q, err := fb.Compress(delta, blockSize)
			if err != nil {
				return err
			}
			sent := make([]float32, len(delta))
			if err := q.Dequantize(sent); err != nil {
				return err
			}
			if train.MerkleRoot(train.BlockLeaves(sent, blockSize)) == root {
				residualBefore, feedback, found = before, fb, true
				break
			}
		}
		if !found {
			a.feedback = train.ErrorFeedback{Codec: pc.Codec}
			return fmt.Errorf("the quantizer's residual is out of step with the coordinator's")
		}
	} else if train.MerkleRoot(train.BlockLeaves(delta, blockSize)) != root {
		return fmt.Errorf("Δ does not match the committed root")
	}
	a.feedback = feedback
	index := slices.Index(w.cfg.Workers, w.Self())
	c := verify.Commitment{
		Job: w.cfg.Job, Round: round, Worker: w.Self(),
		Start: verify.ThetaHash(p.start), Shard: verify.ShardID(w.cfg.Job, round, index, len(w.cfg.Workers)),
		Steps:     uint32(p.steps),
		OptBefore: verify.StateHash(p.state), OptAfter: p.optAfter,
		ResidualBefore: verify.ResidualHash(residualBefore), ResidualAfter: verify.ResidualHash(feedback.Residual()),
		Delta: verify.Hash(root),
	}
	var target []float32
	if p.shiftAt > 0 {
		c.ShiftAt, c.Target, target = uint32(p.shiftAt), verify.ThetaHash(p.from), p.from
	}
	if err := c.Sign(w.cfg.Key); err != nil {
		return err
	}
	p.committed = c.Encode()
	a.log.put(round, &AuditInputs{Commitment: p.committed, State: p.state, Residual: residualBefore, Target: target})
	p.state, p.start, p.local, p.from = nil, nil, nil, nil
	return nil
}

// incoming keeps a peer's commitment from its "done" if it is what it
// claims: signed by the sender, for this job and the message's round (a
// "done" for a round this worker already left is still kept). An
// announcement the coordinator accepted (its roots are signed) may show
// this worker's root.
func (a *auditor) incoming(m train.Message, accepted bool) {
	if a == nil || m.From == a.w.Self() {
		return
	}
	if m.Type == train.MsgAnnounce {
		if accepted {
			a.reveal(m)
		}
		return
	}
	if m.Type != train.MsgDone || len(m.Audit) == 0 {
		return
	}
	c, err := verify.DecodeCommitment(m.Audit)
	if err == nil && (c.Worker != m.From || c.Round != m.Round || c.Job != a.w.cfg.Job) {
		err = fmt.Errorf("commitment of %s for job %q round %d", c.Worker.Short(), c.Job, c.Round)
	}
	if err == nil {
		err = c.Verify()
	}
	if err != nil {
		a.w.refused.add("audit")
		a.w.log.Debug("commitment refused", "from", m.From.Short(), "round", m.Round, "err", err)
		return
	}
	a.log.see(m.From, m.Round, bytes.Clone(m.Audit))
}

// Replay re-runs what Reexecution needs from a round's inputs: the
// quantizer with error feedback from residual, and the Δ hash as the
// round's Merkle root. Auditors (jobs/) pass these to verify.Reexecution
// with the job's codec and block size.
func Replay(codec train.Codec, blockSize int, residual []float32) (send func([]float32) ([]float32, verify.Hash, error), hashDelta func([]float32) verify.Hash) {
	if blockSize == 0 {
		blockSize = train.DefaultBlockSize
	}
	codec = jobCodec(codec)
	hashDelta = func(sent []float32) verify.Hash {
		return verify.Hash(train.MerkleRoot(train.BlockLeaves(sent, blockSize)))
	}
	if !codec.Quantizes() {
		return nil, hashDelta
	}
	send = func(delta []float32) ([]float32, verify.Hash, error) {
		if residual != nil && len(residual) != len(delta) {
			return nil, verify.Hash{}, fmt.Errorf("diloco: residual of %d elements for %d parameters", len(residual), len(delta))
		}
		// Compress(x) with residual e quantizes x+e; a fresh feedback
		// given x+e does the same float32 additions.
		corrected := slices.Clone(delta)
		for i, r := range residual {
			corrected[i] += r
		}
		fb := train.ErrorFeedback{Codec: codec}
		q, err := fb.Compress(corrected, blockSize)
		if err != nil {
			return nil, verify.Hash{}, err
		}
		sent := make([]float32, len(delta))
		if err := q.Dequantize(sent); err != nil {
			return nil, verify.Hash{}, err
		}
		return sent, verify.ResidualHash(fb.Residual()), nil
	}
	return send, hashDelta
}

// MarshalBinary encodes in for an auditor (little-endian):
//
//	"GMAI" | commitment (len uint32 | bytes) | state (len uint32 | bytes) | residual (count uint32 | float32s) | target (count uint32 | float32s)
func (in *AuditInputs) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 20+len(in.Commitment)+len(in.State)+4*len(in.Residual)+4*len(in.Target))
	b = append(b, auditMagic...)
	b = appendBlob(b, in.Commitment)
	b = appendBlob(b, in.State)
	b = appendFloats(b, in.Residual)
	b = appendFloats(b, in.Target)
	return b, nil
}

func appendFloats(b []byte, v []float32) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

const auditMagic = "GMAI"

func appendBlob(b, blob []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(b, uint32(len(blob))), blob...)
}

// UnmarshalAuditInputs decodes what MarshalBinary wrote, refusing
// anything over maxBytes before allocating for it (the caller has already
// bounded the frame; the pieces are checked against what is left).
func UnmarshalAuditInputs(b []byte, maxBytes int) (*AuditInputs, error) {
	if len(b) > maxBytes {
		return nil, fmt.Errorf("diloco: audit inputs of %d bytes (limit %d)", len(b), maxBytes)
	}
	if len(b) < len(auditMagic) || string(b[:len(auditMagic)]) != auditMagic {
		return nil, fmt.Errorf("diloco: not audit inputs")
	}
	b = b[len(auditMagic):]
	blob := func(what string, limit int) ([]byte, error) {
		if len(b) < 4 {
			return nil, fmt.Errorf("diloco: audit inputs: %s truncated", what)
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n > limit || n > len(b)-4 {
			return nil, fmt.Errorf("diloco: audit inputs: %s of %d bytes", what, n)
		}
		out := b[4 : 4+n]
		b = b[4+n:]
		return out, nil
	}
	var in AuditInputs
	var err error
	if in.Commitment, err = blob("commitment", verify.MaxCommitmentBytes); err != nil {
		return nil, err
	}
	if in.State, err = blob("state", maxBytes); err != nil {
		return nil, err
	}
	floats := func(what string) ([]float32, error) {
		if len(b) < 4 {
			return nil, fmt.Errorf("diloco: audit inputs: %s truncated", what)
		}
		n := int(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if n > len(b)/4 {
			return nil, fmt.Errorf("diloco: audit inputs: %s of %d values in %d bytes", what, n, len(b))
		}
		var out []float32
		if n > 0 {
			out = make([]float32, n)
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
		b = b[4*n:]
		return out, nil
	}
	if in.Residual, err = floats("residual"); err != nil {
		return nil, err
	}
	if in.Target, err = floats("target"); err != nil {
		return nil, err
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("diloco: audit inputs: %d bytes after the target", len(b))
	}
	return &in, nil
}
