// Package diloco runs one worker of a DiLoCo training job: it owns a
// gridmind.Trainer and a train.Coordinator, trains H inner steps per round
// on the batches the caller supplies, and performs the coordinator's
// effects over a Transport (signed control messages, all-reduce payloads,
// state fetches), with progress reports and checkpoints of the global state.
//
// Use it like this:
//
//	initial, _ := diloco.InitialState(trainer, workers) // or LoadCheckpoint(dir, n), or nil to join
//	w, err := diloco.NewWorker(diloco.Config{
//		Job: "job-1", Key: key, Trainer: trainer, Workers: workers, Initial: initial,
//		Batches:    func(round uint64) gridmind.BatchSource { ... },
//		InnerSteps: 50, Rounds: 20, Transport: transport,
//		EvalBatches: evalSet, Progress: func(p diloco.Progress) { ... },
//		CheckpointDir: dir,
//	})
//	summary, err := w.Run(ctx)
//
// Verification: with Config.Audit set, the worker signs a verify.Commitment
// for every round it trains and sends it on its "done" (train.Message.Audit);
// the AuditLog keeps the inputs an auditor needs to re-run its last rounds
// and the commitments its peers sent (audit.go; jobs/ serves them and runs
// the auditors). Leave stops a worker at the next round boundary.
//
// Transports: P2PTransport (libp2p streams and GossipSub through package
// p2p); tests and benchmarks use the in-process MemNetwork of
// internal/dilocotest, and internal/bench/trainbench compares DiLoCo
// against synchronous data-parallel training.
package diloco
