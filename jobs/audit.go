package jobs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/verify"
)

// Audits (verify/doc.go, "Wiring a training round"). Every worker commits
// to each round (diloco.Config.Audit) and keeps the inputs to re-run its
// last rounds. Once a round's receipt is on the ledger and the block after
// it is decided, every provider with a wallet draws the round's audits from
// that block's header and the registered providers (verify.DrawRound), the
// same draw the ledger checks. The first member of a drawn worker's
// committee fetches the worker's inputs over ProtocolAudit (served only to
// the members of that committee) and re-runs the round on a fresh model
// (the spot check). On a mismatch it signs a verify.Result and asks the
// other members to re-run it too (typeAuditCheck); with a quorum of
// results that agree on the same output it files ledger.FraudProof, which
// slashes the worker, pays the agreeing auditors their share of the slash,
// and excludes the worker from the job. A spot check that matches clears
// the round and costs nothing on the ledger.

// ProtocolAudit serves a worker's audit inputs and carries auditors'
// requests to re-run a round.
const ProtocolAudit = "/gridmind/audit/1.0.0"

const (
	typeAuditFetch = "audit-fetch"
	typeAuditCheck = "audit-check"
)

// AuditFetch asks a worker for what re-running its round needs.
type AuditFetch struct {
	Job   ledger.JobID `json:"job"`
	Round uint64       `json:"round"`
}

// AuditCheck asks a committee member to re-run a round whose spot check
// did not match; First is the first member's signed verify.Result.
type AuditCheck struct {
	Job    ledger.JobID    `json:"job"`
	Round  uint64          `json:"round"`
	Worker gridmind.NodeID `json:"worker"`
	First  []byte          `json:"first"`
}

// AuditEvent is one step of an audit, for logs, metrics and the demo.
type AuditEvent struct {
	Kind      string            `json:"kind"` // "cleared", "mismatch", "fraud-proven", "failed"
	Job       ledger.JobID      `json:"job"`
	Round     uint64            `json:"round"`
	Worker    gridmind.NodeID   `json:"worker"`
	Auditor   gridmind.NodeID   `json:"auditor"`
	Committee []gridmind.NodeID `json:"committee,omitempty"`
	Agreeing  int               `json:"agreeing,omitempty"` // results that agreed on the mismatch
	Height    int64             `json:"height,omitempty"`   // the fraud proof's block
	// ReceiptHeight is the round's receipt's block; Elapsed, for a proven
	// fraud, the time from the start of the spot check to the proof's commit.
	ReceiptHeight int64         `json:"receipt_height,omitempty"`
	Elapsed       time.Duration `json:"elapsed,omitempty"`
	Took          time.Duration `json:"took"` // the re-execution
	// Member: a committee member's re-run, asked for by the first member
	// after its spot check did not match (else the spot check itself).
	Member bool   `json:"member,omitempty"`
	Text   string `json:"text,omitempty"`
}

// Audit event kinds.
const (
	AuditCleared  = "cleared"
	AuditMismatch = "mismatch"
	AuditProven   = "fraud-proven"
	AuditFailed   = "failed"
)

// auditLedger is what audits read beyond LedgerReader (chain.Client has it all).
type auditLedger interface {
	Receipts(ctx context.Context, job ledger.JobID) ([]ledger.Receipt, error)
	Block(ctx context.Context, height int64) (*chain.BlockInfo, error)
	Providers(ctx context.Context) ([]ledger.Provider, error)
	Reputation(ctx context.Context, id gridmind.NodeID) (ledger.Reputation, error)
}

var _ auditLedger = (*chain.Client)(nil)

// auditState is a provider's side of audits.
type auditState struct {
	mu      sync.Mutex
	jobs    map[ledger.JobID]*auditJob // jobs this node trained, most recent keptJobs
	order   []ledger.JobID
	seen    map[auditKey]bool // rounds whose draw this node has examined
	shirk   int
	ratePPM uint64
	hook    func(AuditEvent)

	running map[ledger.JobID]jobWorker // the running workers (watchJob bans and stops them)
	// stubborn: this node's workers ignore the end of their lease (ban.go).
	stubborn bool

	run     sync.Mutex // one re-execution at a time on this node
	trainer *gomlx.Model
	model   string // the JSON of trainer's config
}

type auditJob struct {
	announce *Announce
	log      *diloco.AuditLog
}

type auditKey struct {
	job   ledger.JobID
	round uint64
}

// SetShirk makes this provider's future workers adversaries the reducers'
// screen does not catch (diloco.Config.Shirk): the demo's cheater.
func (p *Provider) SetShirk(steps int) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	p.audits.shirk = steps
}

// SetAuditRate fixes the share of rounds this provider audits when drawn
// (parts per million); 0 uses verify.DefaultPolicy on the worker's record.
func (p *Provider) SetAuditRate(ppm uint64) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	p.audits.ratePPM = ppm
}

// OnAudit sets a function called with every audit event of this provider
// (from the audit goroutine).
func (p *Provider) OnAudit(f func(AuditEvent)) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	p.audits.hook = f
}

func (p *Provider) auditEvent(e AuditEvent) {
	p.audits.mu.Lock()
	hook := p.audits.hook
	p.audits.mu.Unlock()
	p.log.Info("audit", "kind", e.Kind, "job", e.Job, "round", e.Round, "worker", e.Worker.Short(), "agreeing", e.Agreeing, "height", e.Height, "took", e.Took, "text", e.Text)
	if hook != nil {
		hook(e)
	}
}

// auditKeepBytes is what a worker may spend keeping its last rounds'
// audit inputs (AuditLog.Keep).
const auditKeepBytes = 256 << 20

// auditKeep is how many rounds a worker of a model with params parameters
// keeps for its auditors: as many as fit in auditKeepBytes (about 16 bytes
// a parameter a round: weights, two AdamW moments, the residual), from 6
// to 256. Audits lag the rounds by the receipt, the next block and the
// re-run; a round dropped before its auditor fetches it cannot be audited
// at all, so a fast job of a small model needs many (74 for the default
// MLP), a large model as many as memory allows.
func auditKeep(params int) int {
	if params <= 0 {
		return 6
	}
	return min(max(auditKeepBytes/(16*params), 6), 256)
}

// auditFor registers a job this node trains (its model has params
// parameters): the log its worker commits into, and how shirking it is.
func (p *Provider) auditFor(a *Announce, params int) (*diloco.AuditLog, int) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	if p.audits.jobs == nil {
		p.audits.jobs = map[ledger.JobID]*auditJob{}
	}
	if j, ok := p.audits.jobs[a.Job]; ok {
		return j.log, p.audits.shirk
	}
	j := &auditJob{announce: a, log: &diloco.AuditLog{Keep: auditKeep(params)}}
	p.audits.jobs[a.Job] = j
	p.audits.order = append(p.audits.order, a.Job)
	if len(p.audits.order) > keptJobs {
		delete(p.audits.jobs, p.audits.order[0])
		p.audits.order = p.audits.order[1:]
	}
	return j.log, p.audits.shirk
}

func (p *Provider) auditJob(job ledger.JobID) *auditJob {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	return p.audits.jobs[job]
}

// workerBatches is a worker's data for a round: its shard of the corpus
// and its batch seed. The worker and its auditors use the same.
func workerBatches(c *corpus.Corpus, a *Announce, round uint64, index, workers int) (*corpus.Batches, error) {
	shard := c.Shard(string(a.Job), int(round), index, workers)
	return corpus.NewBatches(shard, a.Model.Context, a.Model.BatchSize, a.Spec.Seed^int64(round)<<16^int64(index))
}

// startAudits serves audit inputs and checks, and (with a wallet) runs the
// auditor loop until ctx ends.
func (p *Provider) startAudits(ctx context.Context) {
	lr, ok := p.Ledger.(auditLedger)
	if !ok {
		p.log.Warn("the ledger client cannot draw audits; this node neither audits nor serves audit inputs")
		return
	}
	p.Node.Host().Handle(ProtocolAudit, func(from gridmind.NodeID, s p2p.Stream) { p.serveAudit(ctx, lr, from, s) })
	if p.Wallet == nil {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.auditLoop(ctx, lr)
	}()
}

// draw computes the ledger's audit draw for worker's round: the seed and
// its committee, from the header of the block after the receipt and the
// providers registered by the receipt. ok is false while that block is
// not decided or the round has no receipt.
func (p *Provider) draw(ctx context.Context, lr auditLedger, job ledger.JobID, round uint64, worker gridmind.NodeID) (seed verify.Hash, committee []gridmind.NodeID, r ledger.Receipt, ok bool, err error) {
	receipts, err := lr.Receipts(ctx, job)
	if err != nil {
		return seed, nil, r, false, err
	}
	i := slices.IndexFunc(receipts, func(r ledger.Receipt) bool { return r.Round == round })
	if i < 0 {
		return seed, nil, r, false, nil
	}
	r = receipts[i]
	seed, committee, ok, err = p.drawReceipt(ctx, lr, r, worker)
	return seed, committee, r, ok, err
}

func (p *Provider) drawReceipt(ctx context.Context, lr auditLedger, r ledger.Receipt, worker gridmind.NodeID) (verify.Hash, []gridmind.NodeID, bool, error) {
	block, err := lr.Block(ctx, r.SubmittedHeight+1)
	if err != nil || block == nil {
		return verify.Hash{}, nil, false, nil // not decided yet (or not answered): try later
	}
	var appHash verify.Hash
	if err := appHash.UnmarshalText([]byte(strings.ToLower(block.AppHash))); err != nil {
		return verify.Hash{}, nil, false, fmt.Errorf("block %d app hash: %w", r.SubmittedHeight+1, err)
	}
	providers, err := lr.Providers(ctx)
	if err != nil {
		return verify.Hash{}, nil, false, err
	}
	beacon := verify.BlockBeacon(r.SubmittedHeight+1, appHash)
	seed, committee, _ := verify.DrawRound(beacon, string(r.Job), r.Round, worker, ledger.AuditCandidates(providers, r.SubmittedHeight), ledger.FraudParams, nil)
	return seed, committee, true, nil
}

// auditLoop examines every receipted, unsettled round of the open jobs on
// the ledger once its draw exists, and audits the workers whose committee
// this node leads.
func (p *Provider) auditLoop(ctx context.Context, lr auditLedger) {
	self := p.Node.ID()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		js, err := p.Ledger.Jobs(ctx, ledger.JobFilter{State: ledger.JobRunning, Limit: 16})
		if err != nil {
			continue
		}
		for _, j := range js {
			receipts, err := lr.Receipts(ctx, j.ID)
			if err != nil {
				continue
			}
			for _, r := range receipts {
				k := auditKey{j.ID, r.Round}
				p.audits.mu.Lock()
				done := p.audits.seen[k]
				p.audits.mu.Unlock()
				if done || r.Settled {
					continue
				}
				var todo []gridmind.NodeID
				decided := true
				for _, part := range r.Participants {
					if part.Node == self {
						continue
					}
					seed, committee, ok, err := p.drawReceipt(ctx, lr, r, part.Node)
					if err != nil || !ok {
						decided = false
						break
					}
					if len(committee) > 0 && committee[0] == self && verify.Audited(seed, part.Node, p.auditRate(ctx, lr, part.Node)) {
						todo = append(todo, part.Node)
					}
				}
				if !decided {
					continue
				}
				p.audits.mu.Lock()
				if p.audits.seen == nil {
					p.audits.seen = map[auditKey]bool{}
				}
				p.audits.seen[k] = true
				p.audits.mu.Unlock()
				for _, worker := range todo {
					p.spotCheck(ctx, lr, j, r, worker)
				}
			}
		}
	}
}

// auditRate is the share of rounds audited for worker: fixed by
// SetAuditRate, else the policy's rate for its record on the ledger.
func (p *Provider) auditRate(ctx context.Context, lr auditLedger, worker gridmind.NodeID) uint64 {
	p.audits.mu.Lock()
	fixed := p.audits.ratePPM
	p.audits.mu.Unlock()
	if fixed > 0 {
		return fixed
	}
	var rec verify.Record
	if rep, err := lr.Reputation(ctx, worker); err == nil {
		rec = verify.Record{Rounds: rep.RoundsFinished, Faults: rep.Slashes}
	}
	return verify.DefaultPolicy().Rate(rec)
}

// spotCheck is the first committee member's audit of worker's round.
func (p *Provider) spotCheck(ctx context.Context, lr auditLedger, j ledger.Job, r ledger.Receipt, worker gridmind.NodeID) {
	self := p.Node.ID()
	_, committee, ok, err := p.drawReceipt(ctx, lr, r, worker)
	if err != nil || !ok {
		return
	}
	ev := AuditEvent{Job: j.ID, Round: r.Round, Worker: worker, Auditor: self, Committee: committee, ReceiptHeight: r.SubmittedHeight}
	start := time.Now()
	c, got, err := p.reexecute(ctx, j, r.Round, worker)
	ev.Took = time.Since(start)
	if err != nil {
		ev.Kind, ev.Text = AuditFailed, err.Error()
		p.auditEvent(ev)
		return
	}
	if c.Matches(verify.WholeRound, got) {
		ev.Kind = AuditCleared
		p.auditEvent(ev)
		return
	}
	ev.Kind, ev.Agreeing = AuditMismatch, 1
	p.auditEvent(ev)
	first := verify.NewResult(self, &c, verify.WholeRound, verify.ModeBitwise, got, 0)
	if err := first.Sign(p.Node.Key()); err != nil {
		return
	}
	// Ask the other members to re-run it; their answers arrive as they finish.
	answers := make(chan verify.Result, len(committee))
	var wg sync.WaitGroup
	for _, m := range committee[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.askCheck(ctx, m, AuditCheck{Job: j.ID, Round: r.Round, Worker: worker, First: first.Encode()}, &c)
			if err != nil {
				p.log.Warn("audit check not answered", "member", m.Short(), "round", r.Round, "worker", worker.Short(), "err", err)
				return
			}
			answers <- res
		}()
	}
	go func() { wg.Wait(); close(answers) }()
	results := []verify.Result{first}
	for res := range answers {
		if res.Got == first.Got {
			results = append(results, res)
		}
		if len(results) >= ledger.FraudParams.Quorum {
			break
		}
	}
	ev.Agreeing = len(results)
	if len(results) < ledger.FraudParams.Quorum {
		ev.Kind, ev.Text = AuditFailed, fmt.Sprintf("only %d of %d agreeing results, %d needed", len(results), len(committee), ledger.FraudParams.Quorum)
		p.auditEvent(ev)
		return
	}
	slices.SortFunc(results, func(a, b verify.Result) int { return strings.Compare(string(a.Auditor), string(b.Auditor)) })
	rec, err := p.Wallet.Submit(ctx, &ledger.FraudProof{Proof: verify.Proof{Commitment: c, Results: results}})
	if err != nil {
		ev.Kind, ev.Text = AuditFailed, "fraud proof refused: "+err.Error()
		p.auditEvent(ev)
		return
	}
	ev.Kind, ev.Height, ev.Text, ev.Elapsed = AuditProven, rec.Height, string(rec.Data), time.Since(start)
	p.auditEvent(ev)
}

// reexecute fetches worker's inputs for round (or uses the commitment this
// node saw in the round, if it trained the job) and re-runs the round.
func (p *Provider) reexecute(ctx context.Context, j ledger.Job, round uint64, worker gridmind.NodeID) (verify.Commitment, verify.Hash, error) {
	in, served, err := p.fetchInputs(ctx, j, round, worker)
	if err != nil {
		return verify.Commitment{}, verify.Hash{}, err
	}
	a := served
	if mine := p.auditJob(j.ID); mine != nil {
		a = mine.announce // this node trained the job: its own copy of the rules
		if seen, ok := mine.log.Seen(worker, round); ok {
			in.Commitment = seen // the commitment as the worker sent it in the round
		}
	}
	c, err := verify.DecodeCommitment(in.Commitment)
	if err == nil {
		err = c.Verify()
	}
	if err == nil && (c.Worker != worker || c.Round != round || c.Job != string(j.ID)) {
		err = fmt.Errorf("commitment of %s for job %s round %d", c.Worker.Short(), c.Job, c.Round)
	}
	if err != nil {
		return c, verify.Hash{}, fmt.Errorf("commitment: %w", err)
	}
	if err := checkAnnounce(a, j, worker); err != nil {
		return c, verify.Hash{}, err
	}
	rules, err := checkCommitmentWork(c, a, round, worker)
	if err != nil {
		return c, verify.Hash{}, err
	}
	workers := a.Workers()
	index := slices.Index(workers, worker)
	batches, err := workerBatches(p.Corpus, a, round, index, len(workers))
	if err != nil {
		return c, verify.Hash{}, err
	}
	send, hashDelta := diloco.Replay(rules.Codec, 0, in.Residual)
	p.audits.run.Lock()
	defer p.audits.run.Unlock()
	trainer, err := p.auditTrainer(a.Model)
	if err != nil {
		return c, verify.Hash{}, err
	}
	got, err := verify.Reexecution{Trainer: trainer, From: in.State, Batches: batches, Send: send, HashDelta: hashDelta, Target: in.Target}.Run(ctx, &c, verify.WholeRound)
	return c, got, err
}

// checkCommitmentWork refuses a commitment to other work than the job
// gave worker in round: another data shard, or inner steps outside what
// the job's rules allow (they bound what an auditor re-runs: a worker may
// not commit to fewer than H, nor to more than elastic steps allow). It
// returns the job's rules.
func checkCommitmentWork(c verify.Commitment, a *Announce, round uint64, worker gridmind.NodeID) (Rules, error) {
	rules, err := RulesOf(a.Spec)
	if err != nil {
		return Rules{}, err
	}
	workers := a.Workers()
	if c.Shard != verify.ShardID(string(a.Job), round, slices.Index(workers, worker), len(workers)) {
		return Rules{}, fmt.Errorf("the commitment names another shard")
	}
	if lo, hi := rules.StepRange(a.Spec.InnerSteps); int(c.Steps) < lo || int(c.Steps) > hi {
		return Rules{}, fmt.Errorf("the commitment is for %d inner steps; the job allows %d to %d", c.Steps, lo, hi)
	}
	return rules, nil
}

// checkAnnounce checks an announcement served by a worker against the
// ledger: the job's requester, its spec, the worker among its workers.
// (The model's shape is not on the ledger; a worker that lies about it
// fails to load its own state or is reproduced on another model and
// judged by the committee.)
func checkAnnounce(a *Announce, j ledger.Job, worker gridmind.NodeID) error {
	switch {
	case a == nil:
		return errors.New("no announcement for the job")
	case a.Job != j.ID || a.Requester != j.Requester:
		return fmt.Errorf("announcement of job %s by %s, the ledger says %s by %s", a.Job, a.Requester.Short(), j.ID, j.Requester.Short())
	case a.Spec.InnerSteps != j.Spec.InnerSteps || a.Spec.Seed != j.Spec.Seed || a.Spec.Model != j.Spec.Model || a.Spec.Codec != j.Spec.Codec:
		return errors.New("announcement's spec differs from the ledger's")
	case !slices.Contains(a.Workers(), worker):
		return fmt.Errorf("%s is not among the announced workers", worker.Short())
	}
	return nil
}

// auditTrainer is a model of cfg kept for re-executions (compiling one per
// audit would cost more than the audit). Call with audits.run held.
func (p *Provider) auditTrainer(cfg gomlx.Config) (*gomlx.Model, error) {
	key, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if p.audits.trainer != nil && p.audits.model == string(key) {
		return p.audits.trainer, nil
	}
	m, err := gomlx.New(cfg)
	if err != nil {
		return nil, err
	}
	if p.audits.trainer != nil {
		p.audits.trainer.Close()
	}
	p.audits.trainer, p.audits.model = m, string(key)
	return m, nil
}

// maxAuditInputs bounds a worker's answer before anything is allocated
// for it: the saved state (weights, two AdamW moments, a header), the
// residual and a shifted round's target weights are about 20 bytes per
// parameter.
func maxAuditInputs(j ledger.Job) int {
	const slack = 4 << 20
	if p := j.Size.ModelParams; p > 0 && p < 1<<26 {
		return int(28*p) + slack
	}
	return 1 << 30
}

// fetchInputs asks worker for its inputs to round, over ProtocolAudit.
func (p *Provider) fetchInputs(ctx context.Context, j ledger.Job, round uint64, worker gridmind.NodeID) (*diloco.AuditInputs, *Announce, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := p.Node.Host().Open(ctx, worker, ProtocolAudit)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	req, err := gridmind.SignEnvelope(p.Node.Key(), typeAuditFetch, p.Node.NextSeq(), p.Node.Now(), AuditFetch{Job: j.ID, Round: round})
	if err != nil {
		return nil, nil, err
	}
	if err := writeFrame(s, req); err != nil {
		return nil, nil, err
	}
	_ = s.CloseWrite()
	limit := maxAuditInputs(j)
	// The answer is a status byte, then one p2p.FrameBE frame.
	var status [1]byte
	if _, err := io.ReadFull(s, status[:]); err != nil {
		return nil, nil, err
	}
	body, err := p2p.FrameBE.Read(s, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("%s's answer: %w", worker.Short(), err)
	}
	if status[0] != 0 {
		return nil, nil, fmt.Errorf("%s: %s", worker.Short(), string(body[:min(len(body), 200)]))
	}
	return decodeAuditAnswer(body, limit)
}

// decodeAuditAnswer splits a worker's answer to a fetch: the announcement
// (4-byte big-endian length, strict JSON), then its inputs.
func decodeAuditAnswer(body []byte, limit int) (*diloco.AuditInputs, *Announce, error) {
	if len(body) < 4 {
		return nil, nil, errors.New("short answer")
	}
	an := int(binary.BigEndian.Uint32(body))
	if an > len(body)-4 || an > maxFrame {
		return nil, nil, errors.New("bad announcement length")
	}
	var a Announce
	if err := gridmind.DecodeStrict(body[4:4+an], &a); err != nil {
		return nil, nil, err
	}
	in, err := diloco.UnmarshalAuditInputs(body[4+an:], limit)
	if err != nil {
		return nil, nil, err
	}
	return in, &a, nil
}

// serveAudit answers ProtocolAudit: a worker's inputs to the members of
// its round's committee, and re-runs asked for by a committee's first member.
func (p *Provider) serveAudit(ctx context.Context, lr auditLedger, from gridmind.NodeID, s p2p.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(2 * time.Minute))
	data, err := readFrame(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	env, err := gridmind.OpenEnvelope(data, p.Node.Now(), node.MaxClockSkew)
	if err == nil && env.From != from {
		err = fmt.Errorf("envelope from %s on a stream from %s", env.From.Short(), from.Short())
	}
	if err != nil {
		_ = s.Reset()
		return
	}
	switch env.Type {
	case typeAuditFetch:
		body, err := p.auditInputsFor(ctx, lr, env)
		status := byte(0)
		if err != nil {
			p.log.Info("audit inputs refused", "to", from.Short(), "err", err)
			status, body = 1, []byte(err.Error())
		}
		if _, err := s.Write([]byte{status}); err == nil {
			_ = p2p.FrameBE.Write(s, body)
		}
	case typeAuditCheck:
		serveCheck := func(env *gridmind.Envelope) ([]byte, error) { return p.answerCheck(ctx, lr, env) }
		answer, err := serveCheck(env)
		a := ack{OK: err == nil, Data: answer}
		if err != nil {
			a.Error = err.Error()
		}
		if reply, err := gridmind.SignEnvelope(p.Node.Key(), typeAck, p.Node.NextSeq(), p.Node.Now(), a); err == nil {
			_ = writeFrame(s, reply)
		}
	default:
		_ = s.Reset()
	}
}

// auditInputsFor is this worker's answer to a fetch: only to a member of
// the round's committee.
func (p *Provider) auditInputsFor(ctx context.Context, lr auditLedger, env *gridmind.Envelope) ([]byte, error) {
	var req AuditFetch
	if err := decodeStrict(env, &req); err != nil {
		return nil, err
	}
	j := p.auditJob(req.Job)
	if j == nil {
		return nil, fmt.Errorf("no audit inputs for job %s here", req.Job)
	}
	in, ok := j.log.Inputs(req.Round)
	if !ok {
		return nil, fmt.Errorf("round %d of job %s is no longer kept", req.Round, req.Job)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, committee, _, ok, err := p.draw(ctx, lr, req.Job, req.Round, p.Node.ID())
	if err != nil {
		return nil, err
	}
	if !ok || !slices.Contains(committee, env.From) {
		return nil, fmt.Errorf("%s is not on the committee of round %d", env.From.Short(), req.Round)
	}
	a, err := json.Marshal(j.announce)
	if err != nil {
		return nil, err
	}
	b, err := in.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(a)+len(b)), uint32(len(a)))
	return append(append(out, a...), b...), nil
}

// askCheck asks committee member m to re-run the round and returns its
// signed result.
func (p *Provider) askCheck(ctx context.Context, m gridmind.NodeID, req AuditCheck, c *verify.Commitment) (verify.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := p.Node.Host().Open(ctx, m, ProtocolAudit)
	if err != nil {
		return verify.Result{}, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	data, err := gridmind.SignEnvelope(p.Node.Key(), typeAuditCheck, p.Node.NextSeq(), p.Node.Now(), req)
	if err != nil {
		return verify.Result{}, err
	}
	if err := writeFrame(s, data); err != nil {
		return verify.Result{}, err
	}
	_ = s.CloseWrite()
	reply, err := readFrame(s)
	if err != nil {
		return verify.Result{}, err
	}
	env, err := gridmind.OpenEnvelope(reply, p.Node.Now(), node.MaxClockSkew)
	if err != nil || env.From != m || env.Type != typeAck {
		return verify.Result{}, fmt.Errorf("bad answer from %s: %v", m.Short(), err)
	}
	var a ack
	if err := env.Decode(&a); err != nil {
		return verify.Result{}, err
	}
	if !a.OK {
		return verify.Result{}, fmt.Errorf("refused: %s", a.Error)
	}
	res, err := verify.DecodeResult(a.Data)
	if err == nil {
		err = res.Verify()
	}
	if err == nil && (res.Auditor != m || res.Commitment != c.ID()) {
		err = fmt.Errorf("a result by %s about another commitment", res.Auditor.Short())
	}
	return res, err
}

// answerCheck re-runs a round its committee's first member found wrong,
// if this node is on that committee, and signs what it got.
func (p *Provider) answerCheck(ctx context.Context, lr auditLedger, env *gridmind.Envelope) ([]byte, error) {
	var req AuditCheck
	if err := decodeStrict(env, &req); err != nil {
		return nil, err
	}
	first, err := verify.DecodeResult(req.First)
	if err == nil {
		err = first.Verify()
	}
	if err != nil || first.Auditor != env.From {
		return nil, fmt.Errorf("the first result is not %s's: %v", env.From.Short(), err)
	}
	_, committee, _, ok, err := p.draw(ctx, lr, req.Job, req.Round, req.Worker)
	if err != nil {
		return nil, err
	}
	if !ok || len(committee) == 0 || committee[0] != env.From || !slices.Contains(committee, p.Node.ID()) {
		return nil, fmt.Errorf("not a committee of round %d led by %s with this node", req.Round, env.From.Short())
	}
	j, err := p.Ledger.Job(ctx, req.Job)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, got, err := p.reexecute(ctx, j, req.Round, req.Worker)
	if err != nil {
		return nil, err
	}
	if c.ID() != first.Commitment {
		return nil, errors.New("the first result is about another commitment")
	}
	res := verify.NewResult(p.Node.ID(), &c, verify.WholeRound, verify.ModeBitwise, got, 0)
	if err := res.Sign(p.Node.Key()); err != nil {
		return nil, err
	}
	kind := AuditMismatch
	if c.Matches(verify.WholeRound, got) {
		kind = AuditCleared
	}
	p.auditEvent(AuditEvent{Kind: kind, Job: req.Job, Round: req.Round, Worker: req.Worker, Auditor: p.Node.ID(), Committee: committee, Took: time.Since(start), Member: true, Text: "asked by " + env.From.Short()})
	return res.Encode(), nil
}

// setWorker records job's running worker (nil: none any more), which the
// job's watcher (watchJob) bans peers in and asks to leave.
func (p *Provider) setWorker(job ledger.JobID, w jobWorker) {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	if p.audits.running == nil {
		p.audits.running = map[ledger.JobID]jobWorker{}
	}
	if w == nil {
		delete(p.audits.running, job)
		return
	}
	p.audits.running[job] = w
}

func (p *Provider) workerOf(job ledger.JobID) jobWorker {
	p.audits.mu.Lock()
	defer p.audits.mu.Unlock()
	return p.audits.running[job]
}

// leaveGrace is how long a worker asked to leave may take to finish its
// round before it is stopped.
const leaveGrace = 30 * time.Second

// leave asks job's worker to stop at the next round boundary and waits
// until it has (ctx ends) or leaveGrace passes. A proven cheater's lease
// ends mid-round; stopping it there would hold its peers' all-reduce until
// their exchange deadline.
func (p *Provider) leave(ctx context.Context, job ledger.JobID) {
	w := p.workerOf(job)
	if w == nil {
		return
	}
	w.Leave()
	t := time.NewTimer(leaveGrace)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
