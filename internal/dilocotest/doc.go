// Package dilocotest holds the test doubles that DiLoCo tests and
// benchmarks share: ToyTrainer, a bigram language model in plain Go that
// really learns and needs no GoMLX, with ToyData to feed it; and
// MemNetwork, an in-process network of diloco Transports whose nodes can be
// killed and whose messages can be dropped.
//
// It does not import package diloco, so diloco's own (in-package) tests can
// use it without an import cycle. That is why MemNetwork is generic over the
// handler type: instantiated with diloco.Handler, its MemTransport has
// exactly the method set of diloco.Transport.
//
//	net := dilocotest.NewMemNetwork[diloco.Handler]()
//	trainer, _ := dilocotest.NewToyTrainer(24, seed, 0.05)
//	cfg := diloco.Config{Trainer: trainer, Transport: net.Join(id), ...}
package dilocotest
