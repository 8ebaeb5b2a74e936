package p2pnet

import (
	"context"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/serve"
)

// Host is the part of *p2p.Host this package uses.
type Host interface {
	ID() gridmind.NodeID
	Handle(proto string, handler func(from gridmind.NodeID, s p2p.Stream))
	Unhandle(proto string)
	Open(ctx context.Context, to gridmind.NodeID, proto string) (p2p.Stream, error)
	Provide(ctx context.Context, key string) error
	FindProviders(ctx context.Context, key string, max int) ([]gridmind.NodeID, error)
}

var _ Host = (*p2p.Host)(nil)

// ModelKey is the DHT provider key under which serving nodes announce a model.
func ModelKey(model string) string { return "model/" + model }

// Dialer opens serve.Protocol streams through a libp2p host.
type Dialer struct{ Host Host }

var _ serve.Dialer = Dialer{}

// Open implements serve.Dialer. A p2p.Stream has Reset, which the client
// uses to cancel a hedge loser at once.
func (d Dialer) Open(ctx context.Context, to gridmind.NodeID) (serve.Stream, error) {
	return d.Host.Open(ctx, to, serve.Protocol)
}

// Serve answers serve.Protocol streams with srv until ctx ends, then stops
// accepting them. It does not block.
func Serve(ctx context.Context, h Host, srv *serve.Server) {
	h.Handle(serve.Protocol, func(from gridmind.NodeID, s p2p.Stream) { srv.ServeStream(ctx, from, s) })
	context.AfterFunc(ctx, func() { h.Unhandle(serve.Protocol) })
}

// Announce advertises in the DHT that this node serves model. Provider
// records expire, so a serving node re-announces periodically.
func Announce(ctx context.Context, h Host, model string) error {
	return h.Provide(ctx, ModelKey(model))
}

// Directory finds the replicas of a model from DHT provider records. The
// records say who serves; Lookup (from heartbeats and the ledger) adds
// their queue length and reputation.
type Directory struct {
	Host Host
	// Lookup returns what the node knows about a replica; ok false means
	// nothing (queue 0, neutral reputation). Optional.
	Lookup func(id gridmind.NodeID, model string) (queue int, reputationPPM uint32, ok bool)
	// ListModels lists every model known to be served (for GET /v1/models),
	// typically from heartbeats. Optional.
	ListModels func(ctx context.Context) ([]string, error)
	// Timeout bounds one DHT lookup (default 5 s); Max bounds the replicas
	// returned (default 20).
	Timeout time.Duration
	Max     int
}

var (
	_ serve.Directory   = (*Directory)(nil)
	_ serve.ModelLister = (*Directory)(nil)
)

// NeutralReputation is assumed for a replica nothing is known about.
const NeutralReputation = 500_000

// Replicas implements serve.Directory.
func (d *Directory) Replicas(ctx context.Context, model string) ([]serve.Replica, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ids, err := d.Host.FindProviders(ctx, ModelKey(model), d.Max)
	if err != nil {
		return nil, err
	}
	out := make([]serve.Replica, 0, len(ids))
	for _, id := range ids {
		if id == d.Host.ID() {
			continue
		}
		r := serve.Replica{ID: id, ReputationPPM: NeutralReputation}
		if d.Lookup != nil {
			if q, rep, ok := d.Lookup(id, model); ok {
				r.QueueLength, r.ReputationPPM = q, rep
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Models implements serve.ModelLister.
func (d *Directory) Models(ctx context.Context) ([]string, error) {
	if d.ListModels == nil {
		return nil, nil
	}
	return d.ListModels(ctx)
}
