package market_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/bench/marketbench"
	"github.com/gridmind/gridmind/market"
)

// These tests run on the benchmark's synthetic fleet (internal/bench/
// marketbench), which imports market, so they are in package market_test.

// TestIndexMatchesPlaceOnBenchFleet compares on the benchmark's fleet
// (real energy traces, few ties) and task mix.
func TestIndexMatchesPlaceOnBenchFleet(t *testing.T) {
	cands, err := marketbench.Candidates(1500, 3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var x market.Index
	x.Sync(cands)
	for i, spec := range marketbench.Tasks(40, 3, cands) {
		spec.Workers = 1 + i%5
		market.SamePlacement(t, fmt.Sprintf("task %d", i), &x, cands, spec, int64(i%2))
	}
}

// TestIndexConcurrentExplain: placements and explanations on several
// goroutines at once (run with -race).
func TestIndexConcurrentExplain(t *testing.T) {
	cands, err := marketbench.Candidates(300, 5, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var x market.Index
	x.Sync(cands)
	tasks := marketbench.Tasks(64, 5, cands)
	var wg sync.WaitGroup
	errs := make(chan error, len(tasks))
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := x.Place(tasks[i], 1)
			if err != nil {
				errs <- err
				return
			}
			c := cands[i%len(cands)]
			c.Busy = !c.Busy
			x.Update(c)
			var a, b bytes.Buffer
			done := make(chan struct{})
			go func() { defer close(done); _ = p.WriteText(&a) }()
			_, _ = json.Marshal(p)
			_ = p.WriteText(&b)
			<-done
			if a.String() != b.String() || len(p.Candidates) != len(cands) {
				errs <- fmt.Errorf("task %d: explanations differ or are incomplete", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
