// Package verify is gridmind's verification core: what a worker commits to
// when it trains a round or serves a completion, how audits are drawn, what
// an auditor signs after re-executing the work, what counts as proof of
// fraud, how often each node is audited, and the economics that make
// cheating a losing bet. It is pure: no I/O, no clock, no randomness (the
// simulator in internal/bench/verifybench draws its beacons from a seeded
// *rand.Rand and calls this package's draw, committee and policy code).
//
// Training. A worker signs a Commitment for each round: the hash of the
// state θ_r it started from, the data shard it was dealt (ShardID, derived
// from job, round and worker), the hashes of its optimizer state and
// error-feedback residual before and after its H inner steps, the hash of
// its pseudo-gradient Δ, and optionally the state hash every s steps
// (Checkpoints) so an auditor can re-run one segment instead of all H steps.
// A round trained ahead from an estimate (overlap) also names the step
// after which the worker shifted to the round's real weights (ShiftAt, by
// Shift) and their hash (Target); its Δ is taken from them, and it is
// audited whole.
//
// Draw. After the round's receipt is on the ledger, a beacon that nobody
// controlled when the worker committed (the ledger's audit beacon of the
// block after the receipt, BlockBeacon(height, the app hash in its header),
// which anyone can recompute from block headers; see ledger/fraud_state.go)
// seeds the draw:
// Seed(beacon, job, round). Audited(seed, worker, rate) says whether a
// worker's round is checked; Committee(seed, worker, candidates, k) names
// its k auditors, deterministically, so anyone can recompute both.
//
// Audit. The first committee member re-executes (the spot check); on a
// mismatch the others re-execute too. Each signs a Result: the hash it got
// for the drawn part (whole round or one segment). Judge(params,
// commitment, results, committee) decides: Fraud when at least Quorum of
// the committee report the same mismatching output (bitwise mode) or a
// distance above the tolerance (tolerance mode); Cleared when at least
// Quorum report a match; Undecided otherwise.
//
// Determinism. On the CPU backend (GoMLX simplego) training and sampling
// are bitwise deterministic under a seed on one machine type, so the
// comparison is equality of hashes, with tolerance zero. Where bitwise
// equality cannot hold (a GPU backend, another CPU architecture), the
// Params say so with ModeTolerance and an explicit TolerancePPM on the
// relative L2 distance of Δ; a result within it is a match, one above it
// a mismatch. Nothing is ever accepted as "close" without that number.
//
// Rate. Policy.Rate is BOINC-style adaptive: a new node, or one with a
// recent proven fault, is audited at NewRatePPM; a node with a long clean
// record is audited less, down to MinRatePPM, never zero; and never below
// the rate the economics require for its stake (RequiredRatePPM).
//
// Economics. A cheater who skips the work of a round gains at most the
// round's pay r (even if it is paid before the proof lands). With audit
// probability p, a proven fraud costs it the slashed part f·S of its stake
// S, so its expected gain per cheated round is at most r − p·f·S, negative
// exactly when S > r/(p·f). RequiredStake and RequiredRatePPM compute the
// two sides of that rule in integers; Policy.RateFor enforces it per job by
// raising a thinly staked node's audit rate.
//
// Inference. A served completion's receipt (serve.Receipt, read here as
// ServedReceipt) binds model, request, sampling seed and output hash;
// InferenceAudited draws a share of them, an auditor re-runs those on
// another replica of the same weights (serve.AuditReceipt) and
// InferenceVerdict compares the output hashes. On a mismatch the receipt's
// committee (InferenceCommittee, from the beacon of the block after the
// first block later than the receipt) re-runs it too and signs results
// (NewInferenceResult); an InferenceProof of the receipt and a quorum of
// results is judged by JudgeInference, always bitwise, on the ledger
// (ledger.InferenceFraudProof).
//
// Wiring a training round (diloco/), as verify/reexec_test.go does with the
// real GoMLX trainer:
//
//	// worker: before its H inner steps s0, _ := verify.TrainerState(trainer); after them:
//	c := verify.Commitment{Job: jobID, Round: r, Worker: self,
//		Start: verify.ThetaHash(θr), Shard: verify.ShardID(jobID, r, index, workers), Steps: H,
//		OptBefore: s0, OptAfter: s1,                      // TrainerState before and after
//		ResidualBefore: verify.ResidualHash(e0), ResidualAfter: verify.ResidualHash(e1),
//		Delta: verify.DeltaHash(Δsent)}                   // optionally SegmentSteps + Checkpoints
//	c.Sign(key)                                          // send c.Encode() with the round's "ready"
//
//	// anyone, once the block after the round's receipt is decided (over RPC:
//	// that block's header app hash, the providers registered by the receipt):
//	candidates := ledger.AuditCandidates(providers, receipt.SubmittedHeight)
//	seed, committee, part := verify.DrawRound(verify.BlockBeacon(h+1, appHash), job, r, worker, candidates, ledger.FraudParams, &c)
//	audited := verify.Audited(seed, worker, policy.RateFor(record, pay, stake, slashPPM))
//
//	// committee member, if audited: re-run from the worker's saved state
//	// (fetched like θ_r) on the same shard and batch seed
//	got, err := verify.Reexecution{Trainer: fresh, From: saved0, Batches: src, Send: quantize}.Run(ctx, &c, part)
//	if !c.Matches(part, got) { /* sign and share a Result */ }
//	res := verify.NewResult(self, &c, part, verify.ModeBitwise, got, 0); res.Sign(key)
//
//	// first member with a quorum of agreeing results:
//	wallet.Submit(ctx, &ledger.FraudProof{Proof: verify.Proof{Commitment: c, Results: sortedResults}})
package verify
