package corpus

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/gridmind/gridmind"
)

// targetChunk is the preferred number of training start positions per
// chunk; shards are unions of chunks.
const targetChunk = 16384

// span is a half-open range [start, end) of start positions in the
// training stream.
type span struct{ start, end int }

// Shard is the part of the training stream one worker samples from in one
// round. It owns window start positions, not characters: a window that
// starts inside the shard may read a few characters past its end, which
// only means neighbouring shards overlap by less than a context length.
type Shard struct {
	Job                    string
	Round, Worker, Workers int

	spans  []span
	tokens []uint8
	err    error
}

// Shard assigns part of the training stream to worker (0-based) of
// workers in round. The stream is cut into chunks; a permutation seeded by
// (job, round) deals them out round-robin, so every round gives each worker
// different text, the shards of one round are disjoint and cover the
// stream, and every node computes the same assignment. Bad arguments give
// a shard whose Err says why (NewBatches reports it).
func (c *Corpus) Shard(job string, round, worker, workers int) Shard {
	c.load()
	s := Shard{Job: job, Round: round, Worker: worker, Workers: workers, tokens: c.train}
	switch {
	case workers <= 0:
		s.err = fmt.Errorf("workers must be positive, got %d", workers)
	case worker < 0 || worker >= workers:
		s.err = fmt.Errorf("worker %d out of range for %d workers", worker, workers)
	case round < 0:
		s.err = fmt.Errorf("round must not be negative, got %d", round)
	}
	if s.err != nil {
		s.err = gridmind.E(gridmind.KindInvalid, "corpus.shard", "%w", s.err)
		return s
	}
	// At least four chunks per worker so that a shard is spread over the
	// corpus even when the text is small.
	chunks := max(len(c.train)/targetChunk, 4*workers)
	order := permutation(chunks, shardSeed(job, round))
	for j := worker; j < chunks; j += workers {
		k := order[j]
		start := k * len(c.train) / chunks
		end := (k + 1) * len(c.train) / chunks
		if end > start {
			s.spans = append(s.spans, span{start, end})
		}
	}
	return s
}

// Err reports why the shard is unusable, or nil.
func (s Shard) Err() error { return s.err }

// Positions is the number of window start positions the shard owns.
func (s Shard) Positions() int {
	n := 0
	for _, sp := range s.spans {
		n += sp.end - sp.start
	}
	return n
}

// shardSeed hashes (job, round) so that the assignment is unrelated
// between rounds and jobs.
func shardSeed(job string, round int) uint64 {
	h := sha256.New()
	h.Write([]byte("gridmind-shard-v1\x00"))
	h.Write([]byte(job))
	var r [9]byte
	binary.BigEndian.PutUint64(r[1:], uint64(round))
	h.Write(r[:])
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// permutation is a Fisher–Yates shuffle of 0..n-1 driven by splitmix64,
// written out here (instead of math/rand) so that its output can never
// change with the Go release.
func permutation(n int, seed uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	rng := splitmix64{state: seed}
	for i := n - 1; i > 0; i-- {
		j := int(rng.below(uint64(i + 1)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}
