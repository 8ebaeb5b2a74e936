// Package gomlx is gridmind's built-in gridmind.Trainer: character-level
// language models (a context-window MLP and a small causal transformer)
// trained with AdamW on GoMLX's pure-Go backend, and the only package
// that imports GoMLX.
//
// Use it like this:
//
//	m, err := gomlx.New(gomlx.DefaultConfig(gomlx.MLP)) // zero fields take defaults too
//	defer m.Close()
//	stats, err := m.TrainSteps(ctx, 100, batches)        // batches from corpus.NewBatches
//	loss, err := m.Evaluate(ctx, evalBatches)             // mean cross-entropy in nats
//	flat, err := m.Params()                               // what DiLoCo averages
//	err = m.SetParams(next)                               // AdamW moments are kept
//	text, err := m.Generate(ctx, "func main() {", gridmind.GenerateOptions{MaxTokens: 80})
//
// The build stays CGO_ENABLED=0: only the simplego backend is linked, and
// all models in a process share one backend (and its worker pool), which
// suits several in-process workers on a small machine.
//
// Determinism: a Model is a function of its Config (Seed included) and the
// batches it is given. Two models built from the same Config and fed the
// same batches hold bitwise-identical parameters and optimizer state, on
// one machine type; TestDeterminism checks it.
//
// Parameter order: the model's weights live under the context scope
// "/model" and are flattened sorted by their scope-and-name, so every node
// agrees on the layout of the vector; optimizer state lives outside
// "/model" and is never part of Params.
package gomlx
