package market

import (
	"testing"
	"time"
)

func TestRunBenchSmall(t *testing.T) {
	rep, err := RunBench(BenchOptions{Nodes: 500, Tasks: 5000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", rep.MarkdownHeader(), rep.MarkdownRow())
	if rep.Placed+rep.Unplaced != 5000 || rep.Placed < 4000 || rep.Limit != 9 || rep.GOMAXPROCS != 1 {
		t.Errorf("report %+v", rep)
	}
}

// TestBenchFull is the real measurement behind `gridmind bench market`;
// run it with: go test ./market -run TestBenchFull -v
func TestBenchFull(t *testing.T) {
	if testing.Short() {
		t.Skip("the full market benchmark takes a few seconds")
	}
	for _, limit := range []int{0} {
		rep, err := RunBench(BenchOptions{Seed: 1, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s\n%s\nsetup %s, placing %s", rep.MarkdownHeader(), rep.MarkdownRow(), rep.Setup.Round(time.Millisecond), rep.Elapsed.Round(time.Millisecond))
	}
}

// BenchmarkPlaceTask measures one placement on 10,000 nodes with the
// Nomad-style log2 limit; memory is not consumed so b.N can grow freely.
func BenchmarkPlaceTask(b *testing.B) {
	cands, err := BenchCandidates(10_000, 1, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	tasks := BenchTasks(4096, 1, cands)
	s, err := NewScheduler(cands, Options{Seed: 1, Limit: 14})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.PlaceTask(&tasks[i%len(tasks)])
	}
}

// BenchmarkPlaceExplain measures a full, explained placement of a
// 3-worker job over 200 candidates: the path `jobs explain` uses.
func BenchmarkPlaceExplain(b *testing.B) {
	cands, err := BenchCandidates(200, 1, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	spec := BenchTasks(1, 2, cands)[0]
	spec.Workers = 3
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Place(spec, cands, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
