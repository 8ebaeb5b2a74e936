package serve

import (
	"context"
	"slices"
	"sort"

	"github.com/gridmind/gridmind"
)

// StaticDirectory is a fixed Directory: model hash → replicas. Tests and
// the benchmark use it; nodes use the DHT. It is never updated when a
// replica dies, like a DHT provider record that has not expired yet.
type StaticDirectory map[string][]Replica

// Replicas implements Directory.
func (d StaticDirectory) Replicas(_ context.Context, model string) ([]Replica, error) {
	return slices.Clone(d[model]), nil
}

// Models implements ModelLister.
func (d StaticDirectory) Models(context.Context) ([]string, error) {
	out := make([]string, 0, len(d))
	for m, reps := range d {
		if len(reps) > 0 {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out, nil
}

var (
	_ Directory   = StaticDirectory(nil)
	_ ModelLister = StaticDirectory(nil)
)

// Screened is a Directory that leaves out the replicas Banned reports:
// servers the ledger banned for proven inference fraud
// (ledger.InferenceFraudProof), so a client never routes a request to
// them. Banned is called for every replica of every lookup and must be
// cheap (a cached set, not a ledger query).
type Screened struct {
	Directory Directory
	Banned    func(gridmind.NodeID) bool
}

// Replicas implements Directory.
func (d Screened) Replicas(ctx context.Context, model string) ([]Replica, error) {
	reps, err := d.Directory.Replicas(ctx, model)
	if err != nil || d.Banned == nil {
		return reps, err
	}
	return slices.DeleteFunc(reps, func(r Replica) bool { return d.Banned(r.ID) }), nil
}

// Models implements ModelLister when the screened Directory does.
func (d Screened) Models(ctx context.Context) ([]string, error) {
	if l, ok := d.Directory.(ModelLister); ok {
		return l.Models(ctx)
	}
	return nil, nil
}

var (
	_ Directory   = Screened{}
	_ ModelLister = Screened{}
)
