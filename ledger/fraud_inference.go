package ledger

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// TypeInferenceFraudProof follows TypeAuditEquivocation, away from the
// ledger's own low numbers.
const TypeInferenceFraudProof TxType = 41

// InferenceFraudProof files a self-proving proof that a server answered a
// request with output that another replica of the same weights does not
// reproduce (verify.InferenceProof): the server's own signed receipt,
// which binds model, request hash, sampling seed and output hash, and the
// signed re-execution results of the auditors the receipt's draw named.
// The ledger judges it without running a model:
//
//   - the receipt's server signature holds;
//   - the draw: inference receipts are not on the ledger, so the receipt's
//     own time places it. The beacon is that of the block after the first
//     block whose time (block time, whole seconds) is later than the
//     receipt's TimeMs (InferenceBeaconHeight): neither the block nor its
//     successor existed when the server signed, so the server could not
//     know its committee. The committee is verify.InferenceCommittee of
//     that beacon among the providers registered by that first block;
//   - the window: a proof is stale once Params.SettleDelayBlocks blocks have
//     begun since that first block (the ledger keeps beacons that long);
//   - verify.JudgeInference decides, bitwise: Fraud when FraudParams.Quorum
//     auditors reproduced the same output and it is not the one the server
//     signed.
//
// A proven fraud slashes Params.DisputeSlashPPM of the server's bonded
// stake, FraudParams.AuditorSharePPM of it to the agreeing auditors and the
// rest burned; its reputation records the slash; and it is banned
// (Banned): AssignLease refuses it on any job, and clients may read the
// record to stop routing requests to it. Each receipt is judged once. Results the verdict contradicts are fined and
// burned. When the committee instead reproduced the server's output
// (Cleared), every auditor that reported a mismatch made a false
// accusation and pays FraudParams.FalseAccusationFine from its stake to the
// server. Anyone with FraudParams.MinAuditorStake staked may file.
type InferenceFraudProof struct {
	Proof verify.InferenceProof `json:"proof"`
}

func init() {
	RegisterTx(TypeInferenceFraudProof, "inference-fraud-proof", func() Body { return &InferenceFraudProof{} })
}

func (*InferenceFraudProof) Type() TxType { return TypeInferenceFraudProof }

func (b *InferenceFraudProof) encode(e *encoder) { e.bytes(b.Proof.Encode()) }

func (b *InferenceFraudProof) decode(d *decoder) {
	b.Proof, _ = nested(d, "proof", verify.MaxInferenceProofBytes, verify.DecodeInferenceProof)
}

func (b *InferenceFraudProof) check(c *checkCtx) error {
	if len(b.Proof.Encode()) > verify.MaxInferenceProofBytes {
		return fmt.Errorf("proof exceeds %d bytes", verify.MaxInferenceProofBytes)
	}
	if err := b.Proof.Receipt.CheckShape(); err != nil {
		return err
	}
	if n := len(b.Proof.Results); n == 0 || n > verify.MaxCommittee {
		return fmt.Errorf("%d results, want 1 to %d", n, verify.MaxCommittee)
	}
	for i := range b.Proof.Results {
		if err := b.Proof.Results[i].CheckShape(); err != nil {
			return err
		}
	}
	return nil
}

// Errors of InferenceBeaconHeight.
var (
	// ErrReceiptTooNew: no block is later than the receipt yet, or the
	// block after the first one is not decided.
	ErrReceiptTooNew = errors.New("ledger: the receipt's audit beacon is not decided yet")
	// ErrReceiptStale: the receipt is older than the window.
	ErrReceiptStale = errors.New("ledger: the receipt is older than the audit window")
)

// InferenceBeaconHeight is the first block later than a receipt signed at
// timeMs: the block whose time (whole seconds) is after timeMs/1000 while
// the block before it is not. The receipt's audit beacon is
// AuditBeacon(height), the beacon of the block after it, and its committee
// is drawn among the providers registered by height (AuditCandidates).
// Anyone can compute the same from block headers. The search covers the
// blocks whose beacons the ledger keeps.
func (s *State) InferenceBeaconHeight(timeMs int64) (int64, error) {
	m := s.metaRef()
	now := m.Height
	oldest := max(1, now-max(m.Params.SettleDelayBlocks, 1))
	sec := timeMs / 1000
	after := func(h int64) (bool, error) {
		v, ok := get(s, selVerify, beaconKey(h))
		if !ok {
			return false, fmt.Errorf("%w: no record of block %d", ErrReceiptStale, h)
		}
		return v.Time > sec, nil
	}
	// Block times never decrease: binary search for the first later one.
	lo, hi := oldest, now+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		later, err := after(mid)
		if err != nil {
			return 0, err
		}
		if later {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	switch {
	case lo > now:
		return 0, fmt.Errorf("%w: no block is later than the receipt's time %d ms", ErrReceiptTooNew, timeMs)
	case lo == oldest && oldest > 1:
		// Earlier blocks may be later than the receipt too: their records
		// are gone, and so is the window.
		return 0, fmt.Errorf("%w: blocks before %d were kept no longer", ErrReceiptStale, oldest)
	case now >= lo+max(m.Params.SettleDelayBlocks, 1):
		return 0, fmt.Errorf("%w: its window closed at height %d", ErrReceiptStale, lo+max(m.Params.SettleDelayBlocks, 1))
	case lo == now:
		return 0, fmt.Errorf("%w: its beacon is block %d's, the next one", ErrReceiptTooNew, lo+1)
	}
	return lo, nil
}

// InferenceDraw is what anyone computes for a served receipt: the height of
// the first block after it and, for that block's beacon, the receipt's
// committee (in order: the first member does the spot check).
func (s *State) InferenceDraw(rc *verify.ServedReceipt) (height int64, committee []gridmind.NodeID, err error) {
	height, err = s.InferenceBeaconHeight(rc.TimeMs)
	if err != nil {
		return 0, nil, err
	}
	beacon, ok := s.AuditBeacon(height)
	if !ok {
		return 0, nil, fmt.Errorf("%w: no beacon for block %d", ErrReceiptTooNew, height+1)
	}
	return height, verify.InferenceCommittee(verify.Hash(beacon), rc, s.auditCandidates(height), FraudParams.CommitteeSize), nil
}

func (b *InferenceFraudProof) apply(s *State, tx *Tx) (TxResult, *TxError) {
	rc := &b.Proof.Receipt
	params := FraudParams
	if a, _ := s.account(tx.From); a.Stake < params.MinAuditorStake {
		return TxResult{}, reject(CodeInsufficient, "filing a fraud proof needs %s staked, %s has %s", params.MinAuditorStake, tx.From.Short(), a.Stake)
	}
	if err := rc.Verify(); err != nil {
		return TxResult{}, reject(CodeBadSignature, "receipt: %v", err)
	}
	id := rc.ID()
	evidence := Hash(verify.HashBytes("gridmind/ledger/inference-fraud/v1", id[:]))
	if prev, used := get(s, selSlash, prefixSlash+evidence.String()); used {
		return TxResult{}, reject(CodeConflict, "this receipt was already proven fraudulent at height %d", prev.Height)
	}
	_, committee, err := s.InferenceDraw(rc)
	if err != nil {
		return TxResult{}, reject(CodeInvalid, "%v", err)
	}
	var results []verify.Result
	for _, res := range b.Proof.Results {
		if a, _ := s.account(res.Auditor); a.Stake >= params.MinAuditorStake {
			results = append(results, res)
		}
	}
	if len(results) == 0 {
		return TxResult{}, reject(CodeInsufficient, "no result comes from an auditor with %s staked", params.MinAuditorStake)
	}
	jd, err := verify.JudgeInference(params, rc, results, committee)
	switch {
	case errors.Is(err, verify.ErrNotCommittee):
		return TxResult{}, reject(CodeUnauthorized, "committee does not match the draw: %v", err)
	case errors.Is(err, verify.ErrBadSignature):
		return TxResult{}, reject(CodeBadSignature, "%v", err)
	case err != nil:
		return TxResult{}, reject(CodeInvalid, "%v", err)
	}
	switch jd.Verdict {
	case verify.Fraud:
		return s.proveInferenceFraud(tx, rc, evidence, results, jd)
	case verify.Cleared:
		return s.clearAccused(rc.Server, id, "", results, jd)
	}
	return TxResult{}, reject(CodeInvalid, "undecided: %d mismatching and %d matching results, a verdict needs %d agreeing", jd.Mismatches, jd.Matches, params.Quorum)
}

func (s *State) proveInferenceFraud(tx *Tx, rc *verify.ServedReceipt, evidence Hash, results []verify.Result, jd verify.Judgement) (TxResult, *TxError) {
	m := s.metaRef()
	h := s.height()
	fraction := max(m.Params.DisputeSlashPPM, 1)
	acct, _ := s.account(rc.Server)
	slashed := takeBonded(&acct, mulDiv(uint64(acct.Stake+acct.UnbondingTotal()), fraction, PPM))
	s.setAccount(acct)
	each := gridmind.Amount(mulDiv(uint64(slashed), FraudParams.AuditorSharePPM, PPM)) / gridmind.Amount(len(jd.Agreeing))
	burned := slashed - each*gridmind.Amount(len(jd.Agreeing))
	var events []Event
	events = append(events, Event{Account: rc.Server, Kind: "slashed", Amount: slashed, Counterparty: tx.From})
	for _, auditor := range jd.Agreeing {
		if each == 0 {
			break
		}
		if err := s.credit(auditor, each); err != nil {
			return TxResult{}, err
		}
		events = append(events, Event{Account: auditor, Kind: "audit-reward", Amount: each, Counterparty: rc.Server})
	}
	rep := s.reputation(rc.Server)
	rep.Slashes++
	rep.SlashedTotal += slashed
	_ = rep.Record.Slash(ReputationParams, uint64(h))
	s.setReputation(rep)
	put(s, refSlash, prefixSlash+evidence.String(), SlashRecord{EvidenceHash: evidence, Offender: rc.Server, Slasher: tx.From, Height: h,
		FractionPPM: fraction, Amount: slashed,
		Reason: fmt.Sprintf("inference fraud proof: %d of %d auditors reproduced another output of request %q", len(jd.Agreeing), FraudParams.CommitteeSize, rc.RequestID)})
	// Results the verdict contradicts (a match vouching for the server, or
	// yet another output) are false reports too: fined and burned.
	fines, ev := s.fine(minority(results, jd), rc.ID(), "", "")
	events = append(events, ev...)
	meta := s.metaRef().clone()
	meta.Burned += burned + fines
	s.setMeta(meta)
	if burned > 0 {
		events = append(events, Event{Account: rc.Server, Kind: "burned", Amount: burned})
	}
	if _, already := s.Banned(rc.Server); !already {
		put(s, refVerify, bannedKey(rc.Server), VerifyRecord{Kind: "banned", Height: h, Node: rc.Server, Beacon: evidence})
	}
	events = append(events, Event{Account: rc.Server, Kind: "banned"})
	return TxResult{Data: []byte(verify.Fraud.String()), Events: events}, nil
}

// Banned reports whether node was proven to have served fraudulent
// completions (InferenceFraudProof), and the record of the first proof
// (Height; Beacon holds its evidence hash). A banned node is leased on no
// job: a node proven to cheat is trusted with no work.
func (s *State) Banned(node gridmind.NodeID) (VerifyRecord, bool) {
	v, ok := get(s, selVerify, bannedKey(node))
	if !ok {
		return VerifyRecord{}, false
	}
	return *v, true
}

// BannedNodes lists the banned nodes' records, in node order.
func (s *State) BannedNodes() []VerifyRecord {
	var out []VerifyRecord
	for _, k := range s.allKeys(prefixBanned) {
		if v, ok := get(s, selVerify, k); ok {
			out = append(out, *v)
		}
	}
	slices.SortFunc(out, func(a, b VerifyRecord) int {
		return cmp.Compare(a.Node, b.Node)
	})
	return out
}
