package serve

import (
	"context"
	"slices"
	"sort"
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
