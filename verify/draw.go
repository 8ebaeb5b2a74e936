package verify

import (
	"encoding/binary"
	"slices"

	"github.com/gridmind/gridmind"
)

// PPM is one million parts per million: a probability of 1.
const PPM = 1_000_000

// Seed is the draw seed of one round of one job. beacon must be a value
// fixed only after every worker of the round committed, and that no single
// party chooses: the ledger uses the app hash of the block after the
// round's receipt (ledger.AuditBeacon). A worker therefore cannot know,
// when it commits, whether its round will be checked or by whom.
func Seed(beacon Hash, job string, round uint64) Hash {
	return newHasher("gridmind/verify/seed/v1").hash(beacon).str(job).u64(round).sum()
}

// ticket is a uniform 64-bit number drawn from seed for one purpose.
func ticket(seed Hash, what string, id gridmind.NodeID) uint64 {
	h := newHasher("gridmind/verify/ticket/v1").hash(seed).str(what).node(id).sum()
	return binary.BigEndian.Uint64(h[:8])
}

// Audited reports whether worker's round is audited at rate ratePPM
// (parts per million; PPM audits every round). It is a pure function of
// the seed, so every party computes the same answer.
func Audited(seed Hash, worker gridmind.NodeID, ratePPM uint64) bool {
	if ratePPM >= PPM {
		return true
	}
	// ticket < rate·2⁶⁴/10⁶, computed as ticket/2⁶⁴ < rate/10⁶ without
	// overflow: compare the top 44 bits against rate·2⁴⁴/10⁶.
	return ticket(seed, "audit", worker)>>20 < ratePPM*(1<<44)/PPM
}

// Committee names the k auditors of worker's round: the k candidates with
// the smallest tickets (rendezvous hashing), never the worker itself. The
// result is in committee order: its first member does the spot check.
// candidates need not be sorted; duplicates count once. Fewer than k
// eligible candidates give a smaller committee.
func Committee(seed Hash, worker gridmind.NodeID, candidates []gridmind.NodeID, k int) []gridmind.NodeID {
	type draw struct {
		t  uint64
		id gridmind.NodeID
	}
	draws := make([]draw, 0, len(candidates))
	for _, c := range candidates {
		if c != worker {
			draws = append(draws, draw{ticket(seed, "committee/"+string(worker), c), c})
		}
	}
	slices.SortFunc(draws, func(a, b draw) int {
		switch {
		case a.t != b.t:
			if a.t < b.t {
				return -1
			}
			return 1
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	draws = slices.CompactFunc(draws, func(a, b draw) bool { return a.id == b.id })
	out := make([]gridmind.NodeID, 0, min(k, len(draws)))
	for i := 0; i < len(draws) && len(out) < k; i++ {
		out = append(out, draws[i].id)
	}
	return out
}

// PickPart chooses what the auditors re-execute: one segment drawn from
// the seed when the commitment has checkpoints and segments are allowed,
// else the whole round.
func PickPart(seed Hash, c *Commitment, segments bool) Part {
	if !segments || len(c.Checkpoints) == 0 {
		return WholeRound
	}
	return Part(ticket(seed, "segment", c.Worker) % uint64(len(c.Checkpoints)))
}

// BlockBeacon is the audit beacon of ledger block height: SHA-256 over the
// height and the app hash in the block's header (the ledger state after
// the block before it). The ledger records it as each block begins; anyone
// can recompute it from the chain's block headers.
func BlockBeacon(height int64, prevAppHash Hash) Hash {
	return newHasher("gridmind/verify/block-beacon/v1").u64(uint64(height)).hash(prevAppHash).sum()
}

// DrawRound is the whole draw for worker's round: the seed, the committee
// of params.CommitteeSize among candidates (the providers registered when
// the round's receipt was written), and the part to re-execute (c may be
// nil: the whole round).
func DrawRound(beacon Hash, job string, round uint64, worker gridmind.NodeID, candidates []gridmind.NodeID, params Params, c *Commitment) (seed Hash, committee []gridmind.NodeID, part Part) {
	seed = Seed(beacon, job, round)
	committee = Committee(seed, worker, candidates, params.CommitteeSize)
	part = WholeRound
	if c != nil {
		part = PickPart(seed, c, params.Segments)
	}
	return seed, committee, part
}
