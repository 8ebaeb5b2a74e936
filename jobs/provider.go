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

// LedgerReader is what a provider needs to check a job on the ledger.
type LedgerReader interface {
	Job(ctx context.Context, id ledger.JobID) (ledger.Job, error)
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

	log *slog.Logger

	mu      sync.Mutex
	waiting map[ledger.JobID]*Announce // standby: announced, waiting for Join
	running map[ledger.JobID]context.CancelFunc
	wg      sync.WaitGroup
	ctx     context.Context
}

// Start installs the job protocol handler; jobs run until ctx ends.
func (p *Provider) Start(ctx context.Context) {
	p.ctx = ctx
	p.log = p.Node.Logger().With("part", "provider")
	p.waiting = map[ledger.JobID]*Announce{}
	p.running = map[ledger.JobID]context.CancelFunc{}
	p.Node.Host().Handle(ProtocolJob, func(from gridmind.NodeID, s p2p.Stream) {
		serveOne(p.Node, from, s, func(env *gridmind.Envelope) error { return p.handle(env) })
	})
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
	p.wg.Add(1)
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
			p.report(ctx, a, Report{Job: a.Job, Error: err.Error(), Done: true, EvalLoss: -1})
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
		for rep := range reports {
			p.report(ctx, a, rep)
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
	protocol := train.Config{Timing: p.Timing}
	rules.Apply(&protocol)
	p.log.Info("training rules", "job", a.Job, "rules", rules.String())
	cfg := diloco.Config{
		Job:        string(a.Job),
		Key:        p.Node.Key(),
		Trainer:    model,
		InnerSteps: a.Spec.InnerSteps,
		Rounds:     uint64(a.Spec.Rounds),
		Transport:  transport,
		Workers:    workers,
		Initial:    initial,
		Batches: func(round uint64) gridmind.BatchSource {
			shard := p.Corpus.Shard(string(a.Job), int(round), index, len(workers))
			b, err := corpus.NewBatches(shard, a.Model.Context, a.Model.BatchSize, a.Spec.Seed^int64(round)<<16^int64(index))
			if err != nil {
				p.log.Error("batches", "err", err)
				return nil
			}
			return b
		},
		Protocol:    protocol,
		EvalBatches: evalBatches,
		EvalEvery:   1,
		Progress: func(pr diloco.Progress) {
			rep := Report{
				Job: a.Job, Round: pr.Round, ThetaHash: pr.ThetaHash.String(),
				Tokens: pr.Tokens, Params: model.NumParams(), TrainLoss: finite(pr.TrainLoss), EvalLoss: finiteOr(pr.EvalLoss, -1),
				TokensPerSec: pr.TokensPerSec, BytesSent: pr.BytesSent, RoundBytes: pr.RoundBytes,
				Participants: pr.Participants, RoundSeconds: pr.RoundTime.Seconds(),
				Rejected: rejectedIDs(pr.Rejected),
				Done:     pr.Round+1 >= uint64(a.Spec.Rounds),
			}
			if em := p.Node.Energy(); em != nil && pr.RoundTime > 0 {
				// The round just ended on the energy model's clock.
				if u, err := em.Account(em.Clock().Add(-pr.RoundTime), pr.RoundTime, 0); err == nil {
					rep.EnergyWh, rep.RenewableWh, rep.CO2Grams = u.EnergyWh, u.RenewableWh(), u.CO2Grams
				}
			}
			select {
			case reports <- rep:
			default:
				p.log.Warn("report queue full; dropping a round report", "round", rep.Round)
			}
		},
		Logger: p.log,
	}
	if p.CheckpointDir != "" {
		cfg.CheckpointDir = fmt.Sprintf("%s/%s", p.CheckpointDir, a.Job)
	}
	w, err := diloco.NewWorker(cfg)
	if err != nil {
		return err
	}
	p.log.Info("training", "job", a.Job, "workers", len(workers), "joining", joining)
	sum, err := w.Run(ctx)
	if err != nil {
		return err
	}
	p.log.Info("job finished here", "job", a.Job, "rounds", sum.Completed, "excluded", sum.Excluded, "has_state", sum.State != nil)
	if sum.State != nil && p.OnModel != nil {
		if err := model.SetParams(sum.State.Theta); err == nil {
			handedOff = true
			p.OnModel(a.Job, model, sum.State.ThetaHash().String())
		}
	}
	return nil
}

// report sends a round report to the requester, retrying briefly: a lost
// report only delays settlement, it never blocks training.
func (p *Provider) report(ctx context.Context, a *Announce, rep Report) {
	for attempt := 0; attempt < 3; attempt++ {
		err := send(ctx, p.Node, a.Requester, ProtocolReport, typeReport, rep)
		if err == nil || ctx.Err() != nil {
			return
		}
		p.log.Warn("report not delivered", "round", rep.Round, "attempt", attempt+1, "err", err)
	}
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
