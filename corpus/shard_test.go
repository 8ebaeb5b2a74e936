package corpus

import (
	"slices"
	"sort"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestShardsPartitionTheTrainingStream(t *testing.T) {
	c, err := FromText("sample", sampleText(300_000))
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 3, 4, 8, 17} {
		var all []span
		for w := 0; w < workers; w++ {
			s := c.Shard("job-1", 5, w, workers)
			if s.Err() != nil {
				t.Fatal(s.Err())
			}
			if s.Positions() == 0 {
				t.Fatalf("%d workers: worker %d got nothing", workers, w)
			}
			all = append(all, s.spans...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
		next := 0
		for _, sp := range all {
			if sp.start != next {
				t.Fatalf("%d workers: gap or overlap at %d (span starts %d)", workers, next, sp.start)
			}
			next = sp.end
		}
		if next != c.TrainTokens() {
			t.Fatalf("%d workers: shards cover %d of %d positions", workers, next, c.TrainTokens())
		}
	}
}

func TestShardAssignmentIsDeterministicAndVaries(t *testing.T) {
	c, _ := FromText("sample", sampleText(300_000))
	base := c.Shard("job-1", 3, 1, 4)
	tests := []struct {
		name              string
		job               string
		round, worker, ws int
		same              bool
	}{
		{"same inputs", "job-1", 3, 1, 4, true},
		{"next round", "job-1", 4, 1, 4, false},
		{"other job", "job-2", 3, 1, 4, false},
		{"other worker", "job-1", 3, 2, 4, false},
	}
	for _, tt := range tests {
		got := c.Shard(tt.job, tt.round, tt.worker, tt.ws)
		if same := slices.Equal(got.spans, base.spans); same != tt.same {
			t.Errorf("%s: same spans = %v, want %v", tt.name, same, tt.same)
		}
	}
}

func TestShardBadArguments(t *testing.T) {
	c, _ := FromText("sample", sampleText(10_000))
	tests := []struct{ round, worker, workers int }{
		{0, 0, 0}, {0, 4, 4}, {0, -1, 4}, {-1, 0, 4},
	}
	for _, tt := range tests {
		s := c.Shard("job", tt.round, tt.worker, tt.workers)
		if gridmind.KindOf(s.Err()) != gridmind.KindInvalid {
			t.Errorf("Shard(round %d, worker %d of %d): err %v, want invalid", tt.round, tt.worker, tt.workers, s.Err())
		}
		if _, err := NewBatches(s, 8, 2, 1); err == nil {
			t.Errorf("NewBatches accepted a bad shard %+v", tt)
		}
	}
}

// TestPermutationIsPinned fixes the exact output of the shuffle: if it
// ever changed, nodes on different versions would train on different data.
func TestPermutationIsPinned(t *testing.T) {
	got := permutation(8, 42)
	want := []int{4, 3, 2, 0, 7, 6, 1, 5}
	if !slices.Equal(got, want) {
		t.Fatalf("permutation(8, 42) = %v, want %v", got, want)
	}
}

// TestSplitmix64Reference checks the generator against the published
// reference output for seed 0.
func TestSplitmix64Reference(t *testing.T) {
	r := splitmix64{}
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	for i, w := range want {
		if got := r.next(); got != w {
			t.Fatalf("output %d = %#x, want %#x", i, got, w)
		}
	}
}
