// Package corpus is gridmind's training text: a character vocabulary, an
// embedded default corpus, the train/evaluation split, and deterministic
// shards and batches for DiLoCo workers.
//
// Use it like this:
//
//	c, err := corpus.Default()          // or corpus.Load("--data path")
//	shard := c.Shard(jobID, round, worker, workers)
//	src, err := corpus.NewBatches(shard, 32, 32, seed) // a gridmind.BatchSource
//	evalSet, err := c.EvalBatches(32, 32, 8)            // fixed, same on every node
//
// The default corpus is about 4 MB of the Go standard library's own source
// (BSD licence, see data/README.md), gzipped into the binary. Every choice
// that decides which characters a worker sees (split, shard assignment,
// batch sampling) uses integer arithmetic and a self-contained splitmix64
// generator, so nodes built with different Go releases agree on it.
//
// Only load.go touches the operating system (to read --data files); the
// rest of the package is pure and TestOnlyLoadUsesOS keeps it that way.
//
//go:generate go run gen_default.go
package corpus
