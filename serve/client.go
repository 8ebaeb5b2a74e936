package serve

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/route"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Key       ed25519.PrivateKey // this node's key: countersigns receipts
	Dialer    Dialer
	Directory Directory
	Route     route.Config // zero fields take route.DefaultConfig
	Seed      uint64       // seeds the routers' tie-breaking
	// MaxAttempts bounds the replicas tried for one request, hedges and
	// fail-overs included (default 5).
	MaxAttempts int
	// StallTimeout bounds how long a replica may send nothing before the
	// request fails over (default 10 s). A dead process resets its streams
	// at once; this catches the ones that hang. Within that bound, a
	// replica that has not acknowledged the request, or that is streaming
	// tokens, is failed over after 4 × the hedge delay (the recent p95
	// time to a first token) of silence, at least 1 s; one that said it is
	// queued gets the whole StallTimeout.
	StallTimeout time.Duration
	// RefreshEvery is how often a model's replicas are re-read from the
	// Directory (default 5 s).
	RefreshEvery time.Duration
	// OnReceipt receives each doubly signed receipt this client paid for.
	OnReceipt func(Receipt)
	// OnServed, if set, receives the same receipts with the request as the
	// server received it: what an inference audit re-runs (AuditReceipt).
	OnServed func(WireRequest, Receipt)
	Now      func() time.Time
	Logger   *slog.Logger
}

// Client forwards requests for models this node does not serve to replicas
// elsewhere, chosen by route.Router: a slow first answer is hedged to a
// second replica (the first to answer wins, the other is cancelled), an
// error fails over to the next replica, and failing replicas are backed off.
//
// A stream survives fail-over. Before any token has reached the caller the
// request simply starts over elsewhere. After tokens were delivered, the
// next replica regenerates with the same seed and skips the delivered
// prefix, which it checks against a hash of it: sampling with a fixed seed
// on the same weights is deterministic, so the continuation is the text the
// dead replica would have produced, and the seed still reproduces the whole
// answer. If the check fails (a replica on other hardware sampled
// differently), a caller that streams nothing (onPiece nil) has lost
// nothing and the request starts over from the first token; a streaming
// caller already has the prefix, so the next replica is asked to continue
// prompt + delivered text with the remaining max_tokens. That answer is a
// coherent sample but no longer the one the seed alone reproduces; it
// never fails or repeats text. Resuming costs a regeneration of the prefix
// (a Generator that could force a known prefix would make it a prefill).
type Client struct {
	cfg  ClientConfig
	self gridmind.NodeID
	log  *slog.Logger

	mu     sync.Mutex
	rng    *rand.Rand
	models map[string]*modelRoutes

	stats clientCounters
}

type modelRoutes struct {
	router     *route.Router[gridmind.NodeID]
	refreshed  time.Time
	refreshing bool // a background refresh is running
}

// ClientStats counts what happened to requests since the client started.
type ClientStats struct {
	Requests  int64 // Complete calls
	Succeeded int64
	Failed    int64
	Attempts  int64 // streams opened to replicas
	Hedges    int64 // second replicas asked because the first was slow
	Failovers int64 // attempts that failed and were replaced
	Resumes   int64 // fail-overs after tokens had been delivered
	Restarts  int64 // resumes that diverged and started over (buffering callers)
	// Continuations: resumes that diverged after tokens reached a streaming
	// caller, continued as prompt + delivered text.
	Continuations int64
}

type clientCounters struct {
	requests, succeeded, failed, attempts, hedges, failovers, resumes, restarts, continuations atomic.Int64
}

// NewClient checks the configuration and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	const op = "serve.client"
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, gridmind.E(gridmind.KindInvalid, op, "need an ed25519 private key, got %d bytes", len(cfg.Key))
	}
	if cfg.Dialer == nil || cfg.Directory == nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "need a Dialer and a Directory")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 10 * time.Second
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{
		cfg:    cfg,
		self:   gridmind.NodeIDFromPublicKey(cfg.Key.Public().(ed25519.PublicKey)),
		log:    cfg.Logger.With("component", "serve.client"),
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		models: make(map[string]*modelRoutes),
	}, nil
}

// ID is the client's NodeID.
func (c *Client) ID() gridmind.NodeID { return c.self }

// Stats returns the counters.
func (c *Client) Stats() ClientStats {
	s := &c.stats
	return ClientStats{
		Requests: s.requests.Load(), Succeeded: s.succeeded.Load(), Failed: s.failed.Load(),
		Attempts: s.attempts.Load(), Hedges: s.hedges.Load(), Failovers: s.failovers.Load(), Resumes: s.resumes.Load(), Restarts: s.restarts.Load(),
		Continuations: s.continuations.Load(),
	}
}

// Status reports the router's view of a model's replicas (nil if unknown).
func (c *Client) Status(model string) []route.Status[gridmind.NodeID] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.models[model]; m != nil {
		return m.router.Status(c.cfg.Now())
	}
	return nil
}

// Models lists the models the Directory knows, if it can list them.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	if l, ok := c.cfg.Directory.(ModelLister); ok {
		return l.Models(ctx)
	}
	return nil, nil
}

// Serves reports whether some other node serves model.
func (c *Client) Serves(ctx context.Context, model string) (bool, error) {
	m, err := c.routes(ctx, model)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.router.Len() > 0, nil
}

// routes returns the router for model, refreshing its candidates from the
// Directory when they are old. With candidates known, the refresh runs in
// the background (a DHT lookup should not delay a request); with none, the
// request waits for it. A failed refresh keeps the old candidates.
func (c *Client) routes(ctx context.Context, model string) (*modelRoutes, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	m := c.models[model]
	known := m != nil && m.router.Len() > 0
	stale := m == nil || now.Sub(m.refreshed) >= c.cfg.RefreshEvery
	// A model nobody served a moment ago is not looked up again at once,
	// so a flood of requests for an unknown model is not a flood of DHT
	// lookups.
	if m != nil && !known && now.Sub(m.refreshed) < negativeTTL {
		c.mu.Unlock()
		return m, nil
	}
	if known && stale && !m.refreshing {
		m.refreshing = true
		// Owned by this call's context, detached from its cancellation so
		// a short request does not abort the lookup, and bounded in time.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RefreshEvery)
		go func() {
			defer cancel()
			_, _ = c.refresh(bg, model)
		}()
	}
	c.mu.Unlock()
	if known {
		return m, nil
	}
	return c.refresh(ctx, model)
}

// negativeTTL is how long "no replica serves this model" is believed.
const negativeTTL = time.Second

func (c *Client) refresh(ctx context.Context, model string) (*modelRoutes, error) {
	reps, err := c.cfg.Directory.Replicas(ctx, model)
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.models[model]
	if m == nil {
		m = &modelRoutes{router: route.New[gridmind.NodeID](c.cfg.Route, rand.New(rand.NewPCG(c.rng.Uint64(), c.rng.Uint64())))}
		c.models[model] = m
	}
	m.refreshing = false
	if err != nil {
		if m.router.Len() > 0 {
			c.log.Warn("replica lookup failed; using known replicas", "model", truncate(model, 16), "err", err)
			return m, nil
		}
		return nil, gridmind.E(gridmind.KindUnavailable, "serve.client", "find replicas of %s: %w", truncate(model, 16), err)
	}
	listed := make(map[gridmind.NodeID]bool, len(reps))
	for _, r := range reps {
		if r.ID == c.self || r.ID.Validate() != nil {
			continue
		}
		listed[r.ID] = true
		m.router.Add(r.ID, r.ReputationPPM)
		m.router.SetQueue(r.ID, r.QueueLength, now)
	}
	for _, id := range m.router.IDs() {
		if !listed[id] {
			m.router.Remove(id)
		}
	}
	m.refreshed = now
	return m, nil
}

// Complete answers req through remote replicas. req.Seed must be set
// (the HTTP layer draws one) so that a fail-over mid-stream can resume.
func (c *Client) Complete(ctx context.Context, req Request, onPiece func(string) error) (Completion, error) {
	c.stats.requests.Add(1)
	comp, err := c.complete(ctx, req, onPiece)
	if err != nil {
		c.stats.failed.Add(1)
	} else {
		c.stats.succeeded.Add(1)
	}
	return comp, err
}

func (c *Client) complete(ctx context.Context, req Request, onPiece func(string) error) (Completion, error) {
	const op = "serve.client"
	if err := (&WireRequest{Request: req}).Validate(); err != nil {
		return Completion{}, gridmind.E(gridmind.KindInvalid, op, "%v", err)
	}
	m, err := c.routes(ctx, req.Model)
	if err != nil {
		return Completion{}, err
	}
	c.mu.Lock()
	n := m.router.Len()
	m.router.NoteRequest(c.cfg.Now())
	c.mu.Unlock()
	if n == 0 {
		return Completion{}, gridmind.E(gridmind.KindNotFound, op, "%w: no node serves %s", ErrModelNotFound, truncate(req.Model, 16))
	}
	r := &race{c: c, m: m, req: req, onPiece: onPiece, tried: make(map[gridmind.NodeID]bool)}
	return r.run(ctx)
}
