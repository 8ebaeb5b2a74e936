package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
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
	"github.com/gridmind/gridmind/train"
)

// LedgerReader is what a provider needs to read from the ledger: a job
// (to check an announcement or a lease request against it), its own jobs
// and the chain's status and rules (to close jobs that ran out of time).
type LedgerReader interface {
	Job(ctx context.Context, id ledger.JobID) (ledger.Job, error)
	Jobs(ctx context.Context, f ledger.JobFilter) ([]ledger.Job, error)
	Status(ctx context.Context) (*chain.Status, error)
	Params(ctx context.Context) (ledger.Params, error)
}

var _ LedgerReader = (*chain.Client)(nil)

// Provider runs the jobs this node is leased for.
type Provider struct {
	Node   *node.Node
	Ledger LedgerReader
	Corpus *corpus.Corpus
	// CheckpointDir, if set, receives each job's global state (in a
	// subfolder per job) every few rounds.
	CheckpointDir string
	// InnerTimeout bounds one worker round's coordination (0: defaults).
	Timing train.Timing
	// OnModel, if set, is called with the final trained model of a job
	// (the provider keeps no reference to it afterwards).
	OnModel func(job ledger.JobID, model *gomlx.Model, thetaHash string)
	// Wallet, if set, closes jobs this provider is leased on once the
	// ledger lets anyone close them (deadline passed, or no progress for
	// the chain's MaxIdleBlocks): settled and receipted work is paid, and
	// the lease ends, even if the requester is gone for good.
	Wallet *chain.Wallet
	// CloseCheckEvery is how often leased jobs are checked (default 10 s).
	CloseCheckEvery time.Duration
	// RequesterGoneAfter: when reports to a job's requester have failed
	// for this long, the worker stops and receipts the rounds the workers
	// co-signed (default 30 s; see cosign.go).
	RequesterGoneAfter time.Duration
	// LeaseCheckEvery is how often a worker checks on the ledger that the
	// job it trains is still running and its lease active (default 5 s).
	LeaseCheckEvery time.Duration

	log *slog.Logger

	mu       sync.Mutex
	waiting  map[ledger.JobID]*Announce // standby: announced, waiting for Join
	running  map[ledger.JobID]context.CancelFunc
	sent     map[ledger.JobID][]Report              // reports of recent jobs, for a requester that asks again
	sentJob  []ledger.JobID                         // the jobs in sent, oldest first
	signed   map[ledger.JobID]map[uint64]*roundSigs // co-signed receipts (cosign.go)
	chain    string                                 // the chain id, once read
	tamperFn func(train.Message) []train.Message    // SetTamper
	audits   auditState                             // audit.go
	stepHook innerStepHook                          // OnInnerStep (innerstep.go)
	wg       sync.WaitGroup
	ctx      context.Context
}

// keptJobs bounds how many jobs' reports a provider keeps for resending.
const keptJobs = 8

// Start installs the job protocol handler; jobs run until ctx ends.
func (p *Provider) Start(ctx context.Context) {
	p.ctx = ctx
	p.log = p.Node.Logger().With("part", "provider")
	p.waiting = map[ledger.JobID]*Announce{}
	p.running = map[ledger.JobID]context.CancelFunc{}
	p.sent = map[ledger.JobID][]Report{}
	p.Node.Host().Handle(ProtocolJob, func(from gridmind.NodeID, s p2p.Stream) {
		serveOne(p.Node, from, s, func(env *gridmind.Envelope) ([]byte, error) {
			switch env.Type {
			case typeLease:
				return p.acceptLease(env)
			case typeResend:
				return nil, p.resend(env)
			case typeReceiptSig:
				return nil, p.acceptReceiptSig(env)
			}
			return nil, p.handle(env)
		})
	})
	if p.Wallet != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.closeExpiredLoop(ctx)
		}()
	}
	p.startAudits(ctx)
}

// acceptLease answers a requester's lease request with this node's signed
// acceptance, after checking the job on the ledger: it exists, is open,
// belongs to the sender, and this node is not busy with another job.
func (p *Provider) acceptLease(env *gridmind.Envelope) ([]byte, error) {
	var req LeaseRequest
	if err := decodeStrict(env, &req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	job, err := p.Ledger.Job(ctx, req.Job)
	if err != nil {
		return nil, fmt.Errorf("job %s on the ledger: %w", req.Job, err)
	}
	if !job.Open() || job.Requester != env.From {
		return nil, fmt.Errorf("job %s is %s with requester %s", req.Job, job.State, job.Requester.Short())
	}
	p.mu.Lock()
	_, same := p.running[req.Job]
	busy := len(p.running) > 0 && !same
	p.mu.Unlock()
	if busy {
		return nil, errors.New("busy with another job")
	}
	st, err := p.Ledger.Status(ctx)
	if err != nil {
		return nil, err
	}
	if req.ValidUntil > st.Height+maxAcceptanceBlocks {
		return nil, fmt.Errorf("acceptance asked valid until height %d; this node signs at most %d blocks ahead (now %d)", req.ValidUntil, maxAcceptanceBlocks, st.Height)
	}
	p.log.Info("accepting lease", "job", req.Job, "from_round", req.FromRound, "valid_until", req.ValidUntil)
	return ledger.SignLeaseAcceptance(p.Node.Key(), st.ChainID, req.Job, env.From, req.FromRound, req.ValidUntil), nil
}

// maxAcceptanceBlocks bounds how long a lease acceptance stays usable.
const maxAcceptanceBlocks = 600

// resend sends this node's reports of a job from a round on again, in the
// background (the requester restarted and lost them).
func (p *Provider) resend(env *gridmind.Envelope) error {
	var r Resend
	if err := decodeStrict(env, &r); err != nil {
		return err
	}
	p.mu.Lock()
	var again []Report
	for _, rep := range p.sent[r.Job] {
		if rep.Round >= r.From {
			again = append(again, rep)
		}
	}
	p.mu.Unlock()
	if len(again) == 0 {
		return nil
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, rep := range again {
			if err := send(p.ctx, p.Node, env.From, ProtocolReport, typeReport, rep); err != nil {
				p.log.Warn("resending a report", "job", r.Job, "round", rep.Round, "err", err)
				return
			}
		}
	}()
	return nil
}

// remember keeps a report for resending.
func (p *Provider) remember(rep Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.sent[rep.Job]; !ok {
		p.sentJob = append(p.sentJob, rep.Job)
		if len(p.sentJob) > keptJobs {
			delete(p.sent, p.sentJob[0])
			delete(p.signed, p.sentJob[0])
			p.sentJob = p.sentJob[1:]
		}
	}
	if len(p.sent[rep.Job]) < ledger.MaxRounds {
		p.sent[rep.Job] = append(p.sent[rep.Job], rep)
	}
}

// closeExpiredLoop closes the running jobs this node is leased on once the
// ledger lets anyone close them.
func (p *Provider) closeExpiredLoop(ctx context.Context) {
	every := p.CloseCheckEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.closeExpired(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("checking leased jobs for expiry", "err", err)
		}
	}
}

func (p *Provider) closeExpired(ctx context.Context) error {
	self := p.Node.ID()
	jobs, err := p.Ledger.Jobs(ctx, ledger.JobFilter{Provider: self, State: ledger.JobRunning})
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	st, err := p.Ledger.Status(ctx)
	if err != nil {
		return err
	}
	params, err := p.Ledger.Params(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		why := ""
		switch {
		case j.Spec.DeadlineUnix > 0 && st.LatestBlockTime.Unix() >= j.Spec.DeadlineUnix:
			why = "deadline passed"
		case params.MaxIdleBlocks > 0 && st.Height+1 >= j.ProgressHeight+params.MaxIdleBlocks:
			why = fmt.Sprintf("no progress since height %d", j.ProgressHeight)
		}
		if why == "" {
			continue
		}
		rec, err := p.Wallet.Submit(ctx, &ledger.CloseJob{Job: j.ID})
		if err != nil {
			p.log.Warn("closing an expired job", "job", j.ID, "why", why, "err", err)
			continue
		}
		p.log.Info("closed an expired job: receipted rounds paid, the rest refunded to its requester", "job", j.ID, "why", why, "height", rec.Height)
	}
	return nil
}

// Wait blocks until every job this provider started has stopped.
func (p *Provider) Wait() { p.wg.Wait() }

// Busy reports whether a job is running here.
func (p *Provider) Busy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.running) > 0
}

func (p *Provider) handle(env *gridmind.Envelope) error {
	switch env.Type {
	case typeAnnounce:
		var a Announce
		if err := decodeStrict(env, &a); err != nil {
			return err
		}
		self := p.Node.ID()
		switch {
		case slices.Contains(a.Active, self):
			if err := p.checkJob(env.From, &a, true); err != nil {
				return err
			}
			return p.startWorker(&a, false)
		case slices.Contains(a.Standby, self):
			// A standby node is leased when it is asked to join.
			if err := p.checkJob(env.From, &a, false); err != nil {
				return err
			}
			p.mu.Lock()
			p.waiting[a.Job] = &a
			p.mu.Unlock()
			p.log.Info("standing by for job", "job", a.Job)
			return nil
		}
		return fmt.Errorf("job %s does not list this node", a.Job)
	case typeJoin:
		var j Join
		if err := decodeStrict(env, &j); err != nil {
			return err
		}
		p.mu.Lock()
		a, ok := p.waiting[j.Job]
		delete(p.waiting, j.Job)
		p.mu.Unlock()
		if !ok {
			return fmt.Errorf("no announced job %s to join", j.Job)
		}
		if err := p.checkJob(env.From, a, true); err != nil {
			return err
		}
		return p.startWorker(a, true)
	}
	return fmt.Errorf("%w: unexpected %s", gridmind.ErrMalformed, env.Type)
}

// checkJob verifies an announcement against the ledger: the job exists
// and is open, the sender is its requester, and (if needLease) this node
// holds an active lease on it.
func (p *Provider) checkJob(from gridmind.NodeID, a *Announce, needLease bool) error {
	if a.Requester != from {
		return fmt.Errorf("announcement names requester %s but came from %s", a.Requester.Short(), from.Short())
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	job, err := p.Ledger.Job(ctx, a.Job)
	if err != nil {
		return fmt.Errorf("job %s on the ledger: %w", a.Job, err)
	}
	if !job.Open() || job.Requester != from {
		return fmt.Errorf("job %s is %s with requester %s", a.Job, job.State, job.Requester.Short())
	}
	if !needLease {
		return nil
	}
	self := p.Node.ID()
	for _, l := range job.Leases {
		if l.Provider == self && l.Active() {
			return nil
		}
	}
	return fmt.Errorf("this node holds no active lease on job %s", a.Job)
}

func (p *Provider) startWorker(a *Announce, joining bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.running) > 0 {
		return errors.New("busy with another job")
	}
	ctx, cancel := context.WithCancel(p.ctx)
	p.running[a.Job] = cancel
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.watchJob(ctx, cancel, a.Job, p.Node.ID())
	}()
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.running, a.Job)
			p.mu.Unlock()
			cancel()
		}()
		if err := p.runWorker(ctx, a, joining); err != nil && ctx.Err() == nil {
			p.log.Error("job failed", "job", a.Job, "err", err)
			p.report(ctx, a, Report{Job: a.Job, Error: err.Error(), Done: true, EvalLoss: -1}, time.Now().Add(time.Minute))
		}
	}()
	return nil
}

func (p *Provider) runWorker(ctx context.Context, a *Announce, joining bool) error {
	self := p.Node.ID()
	workers := a.Workers()
	index := slices.Index(workers, self)
	model, err := gomlx.New(a.Model)
	if err != nil {
		return err
	}
	handedOff := false
	defer func() {
		if !handedOff {
			model.Close()
		}
	}()
	transport, err := diloco.NewP2PTransport(p.Node.Host(), string(a.Job), p.log)
	if err != nil {
		return err
	}
	defer transport.Close()
	var initial *train.GlobalState
	if !joining {
		if initial, err = diloco.InitialState(model, a.Active); err != nil {
			return err
		}
	}
	evalBatches, err := p.Corpus.EvalBatches(a.Model.Context, a.Model.BatchSize, max(1, a.EvalBatches))
	if err != nil {
		return err
	}
	if em := p.Node.Energy(); em != nil {
		em.SetBusy(true)
		defer em.SetBusy(false)
	}
	// Reports go out from their own goroutine so a slow requester never
	// stalls training.
	reports := make(chan Report, 256)
	reporterDone := make(chan struct{})
	go func() {
		defer close(reporterDone)
		gone := p.requesterGoneAfter()
		var claims claimState
		// The requester's silence counts from the last report it took (or
		// the worker's start), and no report is tried past the point where
		// that silence reaches gone: a dead connection's timeouts would
		// otherwise stretch it to minutes, past the ledger's idle limit.
		lastTaken, failing := time.Now(), false
		for rep := range reports {
			p.remember(rep)
			if p.report(ctx, a, rep, lastTaken.Add(gone)) {
				lastTaken, failing = time.Now(), false
				if rep.Error == "" {
					p.claimBehind(ctx, a.Job, rep.Round, &claims, gone) // cosign.go
				}
				continue
			}
			if ctx.Err() != nil {
				continue
			}
			failing = true
			if d := time.Since(lastTaken); d >= gone {
				p.requesterGone(a.Job, d)
				lastTaken = time.Now()
			}
		}
		// The job ended here with reports the requester never took: the
		// rounds the workers signed are claimed without it.
		if failing && p.ctx.Err() == nil {
			p.requesterGone(a.Job, time.Since(lastTaken))
		}
		// The requester took every report; if it has not receipted the
		// last rounds after gone, the workers do (cosign.go).
		if !failing && p.ctx.Err() == nil && p.Wallet != nil {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				select {
				case <-p.ctx.Done():
					return
				case <-time.After(gone):
				}
				if n, err := p.receiptSigned(p.ctx, a.Job); err != nil && p.ctx.Err() == nil {
					p.log.Warn("receipting the last rounds the requester left unpaid", "job", a.Job, "receipted", n, "err", err)
				} else if n > 0 {
					p.log.Warn("the requester took the last reports without receipting them: receipted the rounds the workers signed", "job", a.Job, "rounds", n)
				}
				p.settleLeft(p.ctx, a.Job, gone)
			}()
		}
	}()
	defer func() {
		close(reports)
		<-reporterDone
	}()
	rules, err := RulesOf(a.Spec)
	if err != nil {
		return err
	}
	metrics := newTrainMetrics(p.Node.Registry())
	protocol := train.Config{Timing: p.Timing}
	rules.Apply(&protocol)
	p.log.Info("training rules", "job", a.Job, "rules", rules.String())
	recent := newRecentStates(model.NumParams())
	cfg := diloco.Config{
		Job:           string(a.Job),
		Key:           p.Node.Key(),
		Trainer:       model,
		InnerSteps:    a.Spec.InnerSteps,
		Rounds:        uint64(a.Spec.Rounds),
		Overlap:       rules.Overlap,
		MaxInnerSteps: rules.MaxInnerSteps(a.Spec.InnerSteps),
		Transport:     transport,
		Workers:       workers,
		Initial:       initial,
		Batches: func(round uint64) gridmind.BatchSource {
			b, err := workerBatches(p.Corpus, a, round, index, len(workers))
			if err != nil {
				p.log.Error("batches", "err", err)
				return nil
			}
			return p.counted(b, InnerStep{Job: a.Job, Node: self, Round: round, Of: a.Spec.InnerSteps})
		},
		Protocol:   protocol,
		OnRejected: metrics.onRejected,
		OnState:    recent.add, // recent.go
		OnEvidence: func(e *train.Evidence) {
			metrics.onEvidence(e)
			p.fileEvidence(e) // cosign.go
		},
		OnRefused:   metrics.onRefused,
		EvalBatches: evalBatches,
		EvalEvery:   1,
		Progress: func(pr diloco.Progress) {
			rep := Report{
				Job: a.Job, Round: pr.Round, ThetaHash: pr.ThetaHash.String(),
				Tokens: pr.Tokens, Params: model.NumParams(), TrainLoss: finite(pr.TrainLoss), EvalLoss: finiteOr(pr.EvalLoss, -1),
				TokensPerSec: pr.TokensPerSec, BytesSent: pr.BytesSent, RoundBytes: pr.RoundBytes,
				Participants: pr.Participants, RoundSeconds: pr.RoundTime.Seconds(),
				Rejected: rejectedIDs(pr.Rejected), Members: sortedIDs(pr.Members),
				Done: pr.Round+1 >= uint64(a.Spec.Rounds),
			}
			if em := p.Node.Energy(); em != nil && pr.RoundTime > 0 {
				// The round just ended on the energy model's clock.
				if u, err := em.Account(em.Clock().Add(-pr.RoundTime), pr.RoundTime, 0); err == nil {
					rep.EnergyWh, rep.RenewableWh, rep.CO2Grams = u.EnergyWh, u.RenewableWh(), u.CO2Grams
				}
			}
			p.cosign(ctx, a, pr)
			select {
			case reports <- rep:
			default:
				p.log.Warn("report queue full; dropping a round report", "round", rep.Round)
			}
		},
		Logger: p.log,
	}
	cfg.Audit, cfg.Shirk = p.auditFor(a, model.NumParams())
	cfg.Tamper = p.tamper()
	if p.CheckpointDir != "" {
		cfg.CheckpointDir = fmt.Sprintf("%s/%s", p.CheckpointDir, a.Job)
	}
	w, err := diloco.NewWorker(cfg)
	if err != nil {
		return err
	}
	p.log.Info("training", "job", a.Job, "workers", len(workers), "joining", joining)
	p.setWorker(a.Job, w) // watchJob (ban.go) bans in it and asks it to leave
	sum, err := w.Run(ctx)
	p.setWorker(a.Job, nil)
	if err != nil {
		return err
	}
	p.log.Info("job finished here", "job", a.Job, "rounds", sum.Completed, "excluded", sum.Excluded, "has_state", sum.State != nil)
	early := sum.State != nil && sum.State.Round < uint64(a.Spec.Rounds)
	unconfirmed := sum.State != nil && (!sum.Majority() || sum.Of < rules.MinParticipants)
	if early || unconfirmed {
		// Stopped before the job's last round, it trained rounds past the
		// job's last receipt (recent.go). Or its final state is not
		// confirmed by a majority of a full last round: cut off from the
		// others, it trained on alone or holds a minority state (its own
		// model, not the job's), or the job really ended with few workers
		// (crashes, exclusions, a standby that joined too late) and the
		// ledger receipted that round anyway. Either way the job's last
		// receipt names the job's model; at the job's end, wait for the
		// last round's receipt (the requester's, or the workers' after
		// gone). Serve the model it names if this worker reached it.
		var round uint64
		var wait time.Duration
		if !early {
			round, wait = sum.State.Round-1, p.requesterGoneAfter()+15*time.Second
		}
		want, theta, ok := p.receiptedModel(a.Job, round, wait, recent)
		if !ok {
			p.log.Warn("the job's last receipt names no model this worker reached; not serving a model for it",
				"job", a.Job, "receipted", want.String(), "held_round", sum.State.Round, "stopped_early", early,
				"confirmed", sum.Confirmed, "participants", sum.Of, "min_participants", rules.MinParticipants, "theta", sum.State.ThetaHash().Short())
			return nil
		}
		handedOff = p.serveReceipted(a, model, want, theta, sum.State.Round)
		return nil
	}
	if sum.State != nil && p.OnModel != nil {
		if err := model.SetParams(sum.State.Theta); err == nil {
			handedOff = true
			p.OnModel(a.Job, model, sum.State.ThetaHash().String())
		}
	}
	return nil
}

// serveReceipted hands the job's receipted model (θ, named want) to
// OnModel; it reports whether model now belongs to OnModel.
func (p *Provider) serveReceipted(a *Announce, model *gomlx.Model, want ledger.Hash, theta []float32, trainedTo uint64) bool {
	if p.OnModel == nil {
		return false
	}
	if err := model.SetParams(theta); err != nil {
		p.log.Warn("loading the job's receipted model", "job", a.Job, "model", want.String(), "err", err)
		return false
	}
	p.log.Info("serving the job's last receipted model", "job", a.Job, "model", want.String(), "trained_to_round", trainedTo)
	p.OnModel(a.Job, model, want.String())
	return true
}

// report sends a round report to the requester, retrying briefly until
// giveUp (each try gets at least 2 s): a lost report only delays
// settlement, it never blocks training. It reports whether the requester
// took it.
func (p *Provider) report(ctx context.Context, a *Announce, rep Report, giveUp time.Time) bool {
	for attempt := 0; attempt < 3; attempt++ {
		tryCtx, cancel := context.WithDeadline(ctx, maxTime(giveUp, time.Now().Add(2*time.Second)))
		err := send(tryCtx, p.Node, a.Requester, ProtocolReport, typeReport, rep)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn("report not delivered", "round", rep.Round, "attempt", attempt+1, "err", err)
		if !time.Now().Before(giveUp) {
			return false
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func finite(f float64) float64 { return finiteOr(f, 0) }

func finiteOr(f, alt float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return alt
	}
	return f
}

func rejectedIDs(rs []train.Rejected) []gridmind.NodeID {
	var out []gridmind.NodeID
	for _, r := range rs {
		out = append(out, r.Worker)
	}
	return out
}
