package verify

import "github.com/gridmind/gridmind"

// Inference audits. A served completion's receipt binds the model (the
// hash of its weights), the request (prompt, limits, sampling parameters,
// seed), and the hash of the output. Sampling under a seed is bitwise
// deterministic on the CPU backend, so another replica of the same weights
// given the same request produces the same text, and the comparison is
// equality of output hashes. A drawn share of receipts is re-run.

// InferenceSeed is the draw seed of one served request: the beacon (fixed
// after the receipt was signed, e.g. the block after the receipts were
// paid) and the request's id.
func InferenceSeed(beacon Hash, requestID string) Hash {
	return Seed(beacon, "inference/"+requestID, 0)
}

// InferenceAudited reports whether the request a server answered is
// re-run, at ratePPM (the server's Policy rate).
func InferenceAudited(beacon Hash, requestID string, server gridmind.NodeID, ratePPM uint64) bool {
	return Audited(InferenceSeed(beacon, requestID), server, ratePPM)
}

// InferenceVerdict compares the output hash a server signed with the one a
// re-run on another replica of the same weights produced: Cleared when they
// are equal, Fraud when they differ (the server answered from other
// weights, another seed, or cut the generation short), never "close".
func InferenceVerdict(claimed, rerun Hash) Verdict {
	if claimed == rerun {
		return Cleared
	}
	return Fraud
}
