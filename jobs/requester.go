package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/p2p"
)

// Requester posts jobs from this node and follows them to the end.
type Requester struct {
	Node   *node.Node
	Client *chain.Client
	Wallet *chain.Wallet
	// Score turns a provider's on-ledger reputation into a 0..1e6 score for
	// placement (see ReputationScore).
	Score func(ledger.Reputation, int64) uint64
	// Dir, if set, keeps a record of each running job (what the workers
	// were told), so that a restarted requester resumes following them
	// (see Resume).
	Dir string

	log   *slog.Logger
	mu    sync.Mutex
	runs  map[ledger.JobID]*Run
	rules *ledger.Params // the chain's rules, read once
	// index is the placement state kept across jobs: each Submit syncs it
	// to the candidates it read (a comparison per candidate, work only for
	// what changed) and places on it; explanations are computed when asked.
	index market.Index
}

// Start installs the report handler.
func (r *Requester) Start(ctx context.Context) {
	r.log = r.Node.Logger().With("part", "requester")
	r.runs = map[ledger.JobID]*Run{}
	r.Node.Host().Handle(ProtocolReport, func(from gridmind.NodeID, s p2p.Stream) {
		serveOne(r.Node, from, s, func(env *gridmind.Envelope) ([]byte, error) {
			if env.Type != typeReport {
				return nil, fmt.Errorf("%w: %s on the report protocol", gridmind.ErrMalformed, env.Type)
			}
			var rep Report
			if err := decodeStrict(env, &rep); err != nil {
				return nil, err
			}
			r.mu.Lock()
			run := r.runs[rep.Job]
			r.mu.Unlock()
			if run == nil {
				return nil, fmt.Errorf("no job %s of ours", rep.Job)
			}
			return nil, run.accept(from, rep)
		})
	})
}

// Run returns a job this node requested, if it is known.
func (r *Requester) Run(id ledger.JobID) (*Run, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	run, ok := r.runs[id]
	return run, ok
}

// Candidates are the providers placement may choose from: registered on the
// ledger (offer, stake, reputation) and alive in the peer table (latency,
// live energy, busy).
func (r *Requester) Candidates(ctx context.Context, forecastHours float64) ([]market.Candidate, error) {
	providers, err := r.Client.Providers(ctx)
	if err != nil {
		return nil, err
	}
	st, err := r.Client.Status(ctx)
	if err != nil {
		return nil, err
	}
	var out []market.Candidate
	for _, pr := range providers {
		peer, alive := r.Node.Peers().Get(pr.Offer.Node)
		if !alive {
			continue
		}
		acct, err := r.Client.Account(ctx, pr.Offer.Node)
		if err != nil {
			return nil, err
		}
		c := market.Candidate{Offer: pr.Offer, Stake: acct.Stake, Busy: peer.Heartbeat.Busy}
		if r.Score != nil {
			c.Reputation = r.Score(acct.Reputation, st.Height)
		}
		if peer.RTT > 0 {
			c.LatencyMs = float64(peer.RTT.Microseconds()) / 1000
		}
		hb := peer.Heartbeat
		c.Energy = market.EnergyFromState(hb.Energy, busyWatts(hb), forecastHours)
		out = append(out, c)
	}
	return out, nil
}

func busyWatts(hb gridmind.Heartbeat) float64 {
	if hb.Energy.DeviceWatts > 0 {
		return hb.Energy.DeviceWatts
	}
	return 0
}

// SubmitOptions tune one job.
type SubmitOptions struct {
	Model       gomlx.Config
	Standby     int // extra leased providers that join when an active one fails
	EvalBatches int
	// ExpectedDuration sizes the energy forecast used in placement.
	ExpectedDuration time.Duration
	// Events receives what happens, for progress displays (may be nil).
	Events func(Event)
	// ReportTimeout is how long after the first report of a round the
	// others are awaited before the round is settled with those present.
	ReportTimeout time.Duration
	// WithholdPayment makes this requester an adversary that takes the
	// workers' reports (and the model) but never receipts or settles a
	// round: for tests that the workers get paid anyway.
	WithholdPayment bool
}

// Submit posts spec, places it, leases the chosen providers, announces the
// job and starts following it. Wait on the returned Run.
func (r *Requester) Submit(ctx context.Context, spec gridmind.JobSpec, o SubmitOptions) (*Run, error) {
	if errs := market.ValidateJobSpec(spec, time.Time{}); errs != nil {
		return nil, errs
	}
	if o.ReportTimeout <= 0 {
		o.ReportTimeout = 20 * time.Second
	}
	if o.ExpectedDuration <= 0 {
		o.ExpectedDuration = time.Hour
	}
	if o.Model.Kind == "" {
		o.Model = gomlx.DefaultConfig(spec.Model)
	}
	o.Model.Seed = spec.Seed
	cands, err := r.Candidates(ctx, o.ExpectedDuration.Hours())
	if err != nil {
		return nil, err
	}
	placeSpec := spec
	placeSpec.Workers = spec.Workers + o.Standby
	r.index.Sync(cands)
	placement, err := r.index.Place(placeSpec, spec.Seed)
	if err != nil {
		return nil, gridmind.E(gridmind.KindUnavailable, "jobs", "placing %d workers (+%d standby) among %d candidates: %w", spec.Workers, o.Standby, len(cands), err)
	}
	size, err := jobSize(o.Model)
	if err != nil {
		return nil, err
	}
	// The ledger caps leases at the spec's worker count; standby workers
	// are leased when they join, so the posted job counts them too.
	posted := spec
	posted.Workers += o.Standby
	jobID, rec, err := r.Wallet.PostJob(ctx, posted, size)
	if err != nil {
		return nil, err
	}
	placement.Job = string(jobID)
	run := newRun(r, jobID, spec, o, placement.Chosen[:spec.Workers], placement.Chosen[spec.Workers:])
	run.Placement = placement
	run.PostedHeight = rec.Height
	run.emit(Event{Kind: EventPosted, Job: jobID, Text: fmt.Sprintf("posted job %s with %s in escrow (height %d)", jobID, spec.Budget, rec.Height)})
	if o.Events != nil {
		placement.Complete() // a progress display reads the explanation
	}
	run.emit(Event{Kind: EventPlaced, Job: jobID, Placement: placement})
	// Active workers are leased now, each with its signed acceptance;
	// standby ones when they join, so they are not counted as missing
	// rounds they were never asked to train.
	for _, p := range run.Active {
		if err := r.lease(ctx, jobID, p, 0); err != nil {
			return nil, err
		}
	}
	ann := Announce{Job: jobID, Requester: r.Node.ID(), Spec: spec, Model: o.Model, Active: run.Active, Standby: run.Standby, EvalBatches: max(1, o.EvalBatches)}
	if err := r.save(ann, o); err != nil {
		r.log.Warn("keeping the job's record for a restart", "job", jobID, "err", err)
	}
	r.mu.Lock()
	r.runs[jobID] = run
	r.mu.Unlock()
	var announceErrs []error
	for _, p := range placement.Chosen {
		if err := send(ctx, r.Node, p, ProtocolJob, typeAnnounce, ann); err != nil {
			announceErrs = append(announceErrs, err)
		}
	}
	if len(announceErrs) > 0 {
		return nil, errors.Join(announceErrs...)
	}
	run.start(ctx)
	run.emit(Event{Kind: EventStarted, Job: jobID, Text: fmt.Sprintf("%d workers training, %d on standby", len(run.Active), len(run.Standby))})
	return run, nil
}

// jobSize is what the ledger needs to compute a worker's work per round:
// the model's parameter count and the tokens of one inner step.
func jobSize(cfg gomlx.Config) (ledger.JobSize, error) {
	m, err := gomlx.New(cfg)
	if err != nil {
		return ledger.JobSize{}, err
	}
	defer m.Close()
	eff := m.Config()
	return ledger.JobSize{ModelParams: uint64(m.NumParams()), TokensPerStep: uint64(max(1, eff.BatchSize*eff.Context))}, nil
}

// lease asks provider p to accept a lease on job from round from, then
// leases it on the ledger with that acceptance.
func (r *Requester) lease(ctx context.Context, job ledger.JobID, p gridmind.NodeID, from uint64) error {
	st, err := r.Client.Status(ctx)
	if err != nil {
		return err
	}
	until := st.Height + leaseAcceptanceBlocks
	acceptance, err := request(ctx, r.Node, p, ProtocolJob, typeLease, LeaseRequest{Job: job, FromRound: from, ValidUntil: until})
	if err != nil {
		return fmt.Errorf("asking %s to accept a lease: %w", p.Short(), err)
	}
	if _, err := r.Wallet.Submit(ctx, &ledger.AssignLease{Job: job, Provider: p, FromRound: from, ValidUntil: until, Acceptance: acceptance}); err != nil {
		return fmt.Errorf("leasing %s: %w", p.Short(), err)
	}
	return nil
}

// leaseAcceptanceBlocks is how long a requested acceptance stays usable.
const leaseAcceptanceBlocks = 300

// join leases a standby provider from round from and asks it to join the
// running job now.
func (r *Requester) join(ctx context.Context, job ledger.JobID, p gridmind.NodeID, from uint64) error {
	if err := r.lease(ctx, job, p, from); err != nil {
		return err
	}
	return send(ctx, r.Node, p, ProtocolJob, typeJoin, Join{Job: job})
}

// Cancel ends a job this node requested at once: receipted rounds are
// paid, the rest of the escrow comes back, the leases end.
func (r *Requester) Cancel(ctx context.Context, job ledger.JobID) (*chain.TxRecord, error) {
	return r.Wallet.Submit(ctx, &ledger.CancelJob{Job: job})
}

// sortedIDs returns ids sorted (the ledger wants participants in order).
func sortedIDs(ids []gridmind.NodeID) []gridmind.NodeID {
	out := slices.Clone(ids)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
