package market

import (
	"fmt"
	"strings"
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

// TestBenchFull is the measurement behind `gridmind bench market`: three
// runs of 10,000 nodes and 100,000 tasks with the log2 limit, and one run
// examining every node for comparison. Run it with
//
//	go test ./market -run TestBenchFull -v
func TestBenchFull(t *testing.T) {
	if testing.Short() {
		t.Skip("the full market benchmark takes several seconds")
	}
	var rows []string
	for run := range 3 {
		rep, err := RunBench(BenchOptions{Seed: int64(run + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Placed < 99_000 || rep.AllocsPerPlacement > 0.01 {
			t.Errorf("run %d: %+v", run, rep)
		}
		rows = append(rows, fmt.Sprintf("%s setup %s, placing %s", rep.MarkdownRow(), rep.Setup.Round(time.Millisecond), rep.Elapsed.Round(time.Millisecond)))
	}
	rep, err := RunBench(BenchOptions{Seed: 1, Tasks: 10_000, Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, fmt.Sprintf("%s setup %s, placing %s", rep.MarkdownRow(), rep.Setup.Round(time.Millisecond), rep.Elapsed.Round(time.Millisecond)))
	t.Logf("\n%s\n%s", BenchReport{}.MarkdownHeader(), strings.Join(rows, "\n"))
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
