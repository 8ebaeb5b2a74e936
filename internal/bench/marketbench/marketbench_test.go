package marketbench

import (
	"runtime"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/market"
)

func TestRunSmall(t *testing.T) {
	rep, err := Run(Options{Nodes: 500, Tasks: 5000, Baseline: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", rep.MarkdownHeader(), rep.MarkdownRow())
	if rep.Placed+rep.Unplaced != 5000 || rep.Placed < 4500 || rep.GOMAXPROCS != 1 || rep.BaselineAgreed != 50 || rep.BusyAtEnd < 0.3 {
		t.Errorf("report %+v", rep)
	}
}

// benchIndex is a market.Index over the benchmark's 10,000 nodes, and tasks.
func benchIndex(b *testing.B) (*market.Index, []market.Candidate, []gridmind.JobSpec) {
	cands, err := Candidates(10_000, 1, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	x, err := market.NewIndex(market.Weights{})
	if err != nil {
		b.Fatal(err)
	}
	x.Sync(cands)
	return x, cands, Tasks(4096, 1, cands)
}

// BenchmarkIndexPlace measures the placement Requester.Submit runs, on
// 10,000 nodes, with the heartbeats each placement causes (Run's
// workload); run it with GOMAXPROCS=1 for the one-core figure.
func BenchmarkIndexPlace(b *testing.B) {
	x, cands, tasks := benchIndex(b)
	fleet := newFleet(cands, 1)
	update := func(c *market.Candidate) { x.Update(*c) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		task := &tasks[i%len(tasks)]
		var id gridmind.NodeID
		if p, err := x.Place(*task, task.Seed); err == nil {
			id = p.Chosen[0]
		}
		fleet.heartbeats(id, update)
	}
}

// BenchmarkIndexPlaceOnly is BenchmarkIndexPlace without heartbeats: the
// placement alone on an unchanging index.
func BenchmarkIndexPlaceOnly(b *testing.B) {
	x, _, tasks := benchIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		task := &tasks[i%len(tasks)]
		if _, err := x.Place(*task, task.Seed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexExplain measures explaining one placement on demand over
// 10,000 candidates (what `gridmind jobs explain` costs).
func BenchmarkIndexExplain(b *testing.B) {
	x, _, tasks := benchIndex(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := x.Place(tasks[i%len(tasks)], 1)
		if err != nil {
			b.Fatal(err)
		}
		p.Complete()
	}
}

// BenchmarkPlaceRebuild is the old path for comparison: Place rebuilding
// a Scheduler from 10,000 candidates and explaining all of them per job.
func BenchmarkPlaceRebuild(b *testing.B) {
	_, cands, tasks := benchIndex(b)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		task := &tasks[i%len(tasks)]
		if _, err := market.Place(*task, cands, task.Seed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlaceTask measures the simulator's path (sim/): a Scheduler
// with the Nomad-style log2 limit, one placement on 10,000 nodes; memory
// is not consumed so b.N can grow freely.
func BenchmarkPlaceTask(b *testing.B) {
	cands, err := Candidates(10_000, 1, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	tasks := Tasks(4096, 1, cands)
	s, err := market.NewScheduler(cands, market.Options{Seed: 1, Limit: 14})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.PlaceTask(&tasks[i%len(tasks)])
	}
}
