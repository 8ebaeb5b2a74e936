package ledger

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// FraudProof files a self-proving fraud proof (package verify): the
// accused worker's own signed commitment for a round and the signed
// re-execution results of the auditors that the round's draw named. The
// ledger judges it without running a model:
//
//   - the round has a receipt, its dispute window is open (not settled,
//     before Params.SettleDelayBlocks have passed: otherwise it is stale),
//     and the accused took part in it;
//   - every signature holds, and every result comes from the committee
//     verify.Committee draws from the round's beacon (AuditBeacon) among
//     the providers registered when the receipt was written, for the part
//     verify.PickPart draws;
//   - verify.Judge decides: Fraud when FraudParams.Quorum auditors
//     reproduced the same output and it is not what the worker signed.
//
// A proven fraud goes through the dispute hook (DisputeRound): the
// offender's pay for the round is withheld and Params.DisputeSlashPPM of
// its bonded stake is slashed; of that, FraudParams.AuditorSharePPM is
// paid to the auditors whose results proved it and the rest is burned.
// The offender's lease on the job ends and it may not be leased on the job
// again (Excluded); its reputation records the slash. When the committee
// instead reproduced what the worker signed (Cleared), every auditor who
// reported a mismatch made a false accusation and pays
// FraudParams.FalseAccusationFine from its stake to the accused. Anyone
// with FraudParams.MinAuditorStake staked may file.
type FraudProof struct {
	Proof verify.Proof `json:"proof"`
}

// FraudParams are the rules the ledger judges fraud proofs by. Like the
// ledger's other hooks they are code, the same on every validator; the
// slash fraction is the chain's Params.DisputeSlashPPM.
var FraudParams = verify.DefaultParams()

func init() {
	RegisterTx(TypeFraudProof, "fraud-proof", func() Body { return &FraudProof{} })
}

func (*FraudProof) Type() TxType { return TypeFraudProof }

func (b *FraudProof) encode(e *encoder) { e.bytes(b.Proof.Encode()) }

func (b *FraudProof) decode(d *decoder) {
	b.Proof, _ = nested(d, "proof", verify.MaxProofBytes, verify.DecodeProof)
}

func (b *FraudProof) check(c *checkCtx) error {
	if len(b.Proof.Encode()) > verify.MaxProofBytes {
		return fmt.Errorf("proof exceeds %d bytes", verify.MaxProofBytes)
	}
	if err := b.Proof.Commitment.CheckShape(); err != nil {
		return err
	}
	if err := JobID(b.Proof.Commitment.Job).validate(); err != nil {
		return fmt.Errorf("commitment: %w", err)
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

// auditCandidates are the providers that may audit a round whose receipt
// was written at height: those registered by then, in id order. Later
// registrations cannot change a committee that was already drawn.
func (s *State) auditCandidates(height int64) []gridmind.NodeID {
	var providers []Provider
	for _, k := range s.allKeys(prefixProvider) {
		p, _ := get(s, selProv, k)
		providers = append(providers, *p)
	}
	return AuditCandidates(providers, height)
}

// AuditCandidates is the same filter for a node that reads the providers
// over RPC (chain.Client.Providers) and the receipt's SubmittedHeight:
// with verify.BlockBeacon of the next block's header it draws exactly the
// committee the ledger will check (verify.DrawRound with FraudParams).
func AuditCandidates(providers []Provider, receiptHeight int64) []gridmind.NodeID {
	var out []gridmind.NodeID
	for _, p := range providers {
		if p.RegisteredHeight <= receiptHeight {
			out = append(out, p.Offer.Node)
		}
	}
	return out
}

// AuditDraw is what anyone (auditors, the worker, a block explorer)
// computes for a round of a job with a receipt: the seed, and for worker
// its committee (in order: the first member does the spot check) and the
// part to re-execute. ok is false while the round has no beacon yet.
func (s *State) AuditDraw(job JobID, round uint64, worker gridmind.NodeID, c *verify.Commitment) (seed verify.Hash, committee []gridmind.NodeID, part verify.Part, ok bool) {
	r, found := s.receipt(job, round)
	if !found {
		return verify.Hash{}, nil, 0, false
	}
	beacon, found := s.AuditBeacon(r.SubmittedHeight)
	if !found {
		return verify.Hash{}, nil, 0, false
	}
	seed, committee, part = verify.DrawRound(verify.Hash(beacon), string(job), round, worker, s.auditCandidates(r.SubmittedHeight), FraudParams, c)
	return seed, committee, part, true
}

func (b *FraudProof) apply(s *State, tx *Tx) (TxResult, *TxError) {
	m := s.metaRef()
	c := &b.Proof.Commitment
	job := JobID(c.Job)
	params := FraudParams
	params.SlashPPM = max(m.Params.DisputeSlashPPM, 1)
	if a, _ := s.account(tx.From); a.Stake < params.MinAuditorStake {
		return TxResult{}, reject(CodeInsufficient, "filing a fraud proof needs %s staked, %s has %s", params.MinAuditorStake, tx.From.Short(), a.Stake)
	}
	j, ok := s.job(job)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "no job %s", job)
	}
	r, ok := s.receipt(job, c.Round)
	if !ok {
		return TxResult{}, reject(CodeNotFound, "round %d of job %s has no receipt", c.Round, job)
	}
	if r.Settled || s.height() >= s.settleFrom(&r) { // held rounds of an ended job included (held.go)
		return TxResult{}, reject(CodeInvalid, "stale: the dispute window of round %d of job %s closed at height %d (now %d, settled %v)",
			c.Round, job, s.settleFrom(&r), s.height(), r.Settled)
	}
	if !slices.ContainsFunc(r.Participants, func(p Participation) bool { return p.Node == c.Worker }) {
		return TxResult{}, reject(CodeInvalid, "%s did not take part in round %d of job %s", c.Worker.Short(), c.Round, job)
	}
	_, committee, part, ok := s.AuditDraw(job, c.Round, c.Worker, c)
	if !ok {
		return TxResult{}, reject(CodeInvalid, "round %d of job %s has no audit beacon yet (it is the block after the receipt)", c.Round, job)
	}
	// Only staked auditors' results count: an auditor must have something
	// to lose if its report is false.
	var results []verify.Result
	for _, res := range b.Proof.Results {
		if a, _ := s.account(res.Auditor); a.Stake >= params.MinAuditorStake {
			results = append(results, res)
		}
	}
	if len(results) == 0 {
		return TxResult{}, reject(CodeInsufficient, "no result comes from an auditor with %s staked", params.MinAuditorStake)
	}
	jd, err := verify.Judge(params, c, part, results, committee)
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
		return s.proveFraud(tx, &j, &r, c, results, jd)
	case verify.Cleared:
		return s.clearAccused(c.Worker, c.ID(), job, results, jd)
	}
	return TxResult{}, reject(CodeInvalid, "undecided: %d mismatching and %d matching results, a verdict needs %d agreeing", jd.Mismatches, jd.Matches, params.Quorum)
}

// minority are the results that the verdict contradicts.
func minority(results []verify.Result, jd verify.Judgement) []gridmind.NodeID {
	var out []gridmind.NodeID
	for _, r := range results {
		if _, found := slices.BinarySearch(jd.Agreeing, r.Auditor); !found {
			out = append(out, r.Auditor)
		}
	}
	return out
}

func (s *State) proveFraud(tx *Tx, j *Job, r *Receipt, c *verify.Commitment, results []verify.Result, jd verify.Judgement) (TxResult, *TxError) {
	id := c.ID()
	before, _ := s.account(c.Worker)
	res, terr := s.DisputeRound(DisputeRequest{
		Job: j.ID, Round: r.Round, Offender: c.Worker, Filer: tx.From,
		EvidenceHash: Hash(verify.HashBytes("gridmind/ledger/fraud-evidence/v1", id[:])),
		Reason:       fmt.Sprintf("fraud proof: %d of %d auditors reproduced another output (part %d)", len(jd.Agreeing), FraudParams.CommitteeSize, jd.Part),
	})
	if terr != nil {
		return TxResult{}, terr
	}
	after, _ := s.account(c.Worker)
	slashed := (before.Stake + before.UnbondingTotal()) - (after.Stake + after.UnbondingTotal())
	// DisputeRound put the slashed stake in the slash pool; pay the
	// auditors their share out of it and burn the rest.
	each := gridmind.Amount(mulDiv(uint64(slashed), FraudParams.AuditorSharePPM, PPM)) / gridmind.Amount(len(jd.Agreeing))
	burned := slashed - each*gridmind.Amount(len(jd.Agreeing))
	meta := s.metaRef().clone()
	if meta.SlashPool < slashed {
		return TxResult{}, reject(CodeInternal, "slash pool %s holds less than the %s just slashed", meta.SlashPool, slashed)
	}
	meta.SlashPool -= slashed
	meta.Burned += burned
	s.setMeta(meta)
	events := res.Events
	for _, auditor := range jd.Agreeing {
		if each == 0 {
			break
		}
		if err := s.credit(auditor, each); err != nil {
			return TxResult{}, err
		}
		events = append(events, Event{Account: auditor, Kind: "audit-reward", Amount: each, Counterparty: c.Worker, Job: j.ID})
	}
	if burned > 0 {
		events = append(events, Event{Account: c.Worker, Kind: "burned", Amount: burned, Job: j.ID})
	}
	// Results the verdict contradicts (a match vouching for the cheater, or
	// yet another output) are false reports too: fined and burned.
	fines, ev := s.fine(minority(results, jd), id, "", j.ID)
	if fines > 0 {
		meta := s.metaRef().clone()
		meta.Burned += fines
		s.setMeta(meta)
	}
	events = append(events, ev...)
	jj, _ := s.job(j.ID) // DisputeRound may have saved the job
	s.exclude(&jj, c.Worker, r.Round)
	s.setJob(jj)
	events = append(events, Event{Account: c.Worker, Kind: "excluded", Job: j.ID})
	return TxResult{Data: []byte(verify.Fraud.String()), Events: events}, nil
}

// clearAccused fines every auditor whose mismatch report the committee
// contradicted about the work id of the accused, to the accused.
func (s *State) clearAccused(accused gridmind.NodeID, id verify.Hash, job JobID, results []verify.Result, jd verify.Judgement) (TxResult, *TxError) {
	accusers := minority(results, jd)
	if len(accusers) == 0 {
		return TxResult{}, reject(CodeInvalid, "the results accuse nobody: all %d reproduced what %s signed", len(results), accused.Short())
	}
	fines, events := s.fine(accusers, id, accused, job)
	if fines == 0 && len(events) == 0 {
		return TxResult{}, reject(CodeConflict, "these false accusations were already judged")
	}
	if fines > 0 {
		if err := s.credit(accused, fines); err != nil {
			return TxResult{}, err
		}
		events = append(events, Event{Account: accused, Kind: "compensated", Amount: fines, Job: job})
	}
	return TxResult{Data: []byte(verify.Cleared.String()), Events: events}, nil
}

// fine takes FraudParams.FalseAccusationFine (or what is left) from each
// auditor's bonded stake for a false report about commitment id, once per
// auditor and commitment, records it as a slash and returns the total;
// the caller moves it (to the accused, or burns it).
func (s *State) fine(auditors []gridmind.NodeID, id verify.Hash, to gridmind.NodeID, job JobID) (gridmind.Amount, []Event) {
	var total gridmind.Amount
	var events []Event
	h := s.height()
	for _, auditor := range auditors {
		evidence := Hash(verify.HashBytes("gridmind/ledger/false-report/v1", append(id[:], auditor...)))
		key := prefixSlash + evidence.String()
		if _, used := get(s, selSlash, key); used {
			continue
		}
		a, _ := s.account(auditor)
		amount := takeBonded(&a, uint64(FraudParams.FalseAccusationFine))
		s.setAccount(a)
		rep := s.reputation(auditor)
		rep.Slashes++
		rep.SlashedTotal += amount
		_ = rep.Record.Slash(ReputationParams, uint64(h))
		s.setReputation(rep)
		put(s, refSlash, key, SlashRecord{EvidenceHash: evidence, Offender: auditor, Slasher: to, Height: h, Amount: amount, Reason: "false audit report"})
		total += amount
		events = append(events, Event{Account: auditor, Kind: "fined", Amount: amount, Counterparty: to, Job: job})
	}
	return total, events
}
