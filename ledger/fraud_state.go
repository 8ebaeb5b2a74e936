package ledger

import (
	"slices"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// This file keeps what verification needs on the ledger besides slashes:
// the audit beacon of each recent block and the providers excluded from a
// job for proven fraud. Both live under the "vfy/" prefix.

const (
	prefixVerify   = "vfy/"
	prefixBeacon   = prefixVerify + "beacon/"
	prefixExcluded = prefixVerify + "excluded/"
	prefixBanned   = prefixVerify + "banned/"
)

// VerifyRecord is one verification entry: a block's audit beacon (and its
// time, which places inference receipts), a provider's exclusion from a
// job, or a node's ban for proven inference fraud.
type VerifyRecord struct {
	Kind   string          `json:"kind"` // "beacon", "excluded" or "banned"
	Height int64           `json:"height"`
	Time   int64           `json:"time,omitempty"` // a beacon's block time, unix seconds
	Beacon Hash            `json:"beacon"`
	Job    JobID           `json:"job,omitempty"`
	Node   gridmind.NodeID `json:"node,omitempty"`
	Round  uint64          `json:"round,omitempty"`
}

func (r VerifyRecord) clone() VerifyRecord { return r }

func selVerify(s *State) table[VerifyRecord]  { return s.vfy }
func refVerify(s *State) *table[VerifyRecord] { return &s.vfy }

func beaconKey(height int64) string         { return heightKey(prefixBeacon, height) }
func bannedKey(node gridmind.NodeID) string { return prefixBanned + string(node) }
func excludedKey(job JobID, node gridmind.NodeID) string {
	return prefixExcluded + string(job) + "/" + string(node)
}

const beaconDomain = "gridmind/ledger/beacon/v1\x00"

// recordBeacon stores the audit beacon of the block being begun and drops
// the one that fell out of every dispute window. BeginBlockAt calls it
// once the block's height is set.
//
// The beacon of block h is verify.BlockBeacon(h, app hash of the committed
// state before it), the app hash that block h's header carries, so anyone
// can recompute it from the chain's headers (and draw committees without a
// ledger query). Round receipts are drawn from the beacon of the block
// after the one that recorded them (AuditBeacon), so when a worker commits
// to its round, and even when the receipt is written, the value that
// decides its audit does not exist yet.
//
// What it does not stop: a party that can predict the whole next state (a
// quiet chain) can compute the beacon a block early. Folding in the
// previous block's hash (the header's last block id, which carries the
// validators' commit signatures and their nanosecond times) would close
// that and stay recomputable from headers; it needs chain/ to pass the
// hash in.
func (s *State) recordBeacon() {
	m := s.metaRef()
	prev := s.base().Hash() // cached on the base: no walk of the state
	beacon := Hash(verify.BlockBeacon(m.Height, verify.Hash(prev)))
	put(s, refVerify, beaconKey(m.Height), VerifyRecord{Kind: "beacon", Height: m.Height, Time: m.Time, Beacon: beacon})
	// A receipt's beacon is needed until its dispute window closes, which
	// is at most SettleDelayBlocks after the block of its beacon.
	if old := m.Height - max(m.Params.SettleDelayBlocks, 1) - 1; old > 0 {
		key := beaconKey(old)
		if v, mine := s.vfy[key]; mine && v != nil {
			if _, below := get(s.parent, selVerify, key); !below {
				// Put and dropped within this fork (one that spans many
				// blocks, as the sim's does): leave no deletion behind for
				// Changes to list and sort. The put above already made the
				// fork's memos stale.
				delete(s.vfy, key)
				return
			}
		}
		if _, ok := get(s, selVerify, key); ok {
			remove(s, refVerify, key)
		}
	}
}

// AuditBeacon is the value that draws the audits of a round whose receipt
// was recorded at receiptHeight: the beacon of the next block. ok is false
// until that block has begun (or once the beacon was dropped).
func (s *State) AuditBeacon(receiptHeight int64) (Hash, bool) {
	v, ok := get(s, selVerify, beaconKey(receiptHeight+1))
	if !ok {
		return Hash{}, false
	}
	return v.Beacon, true
}

// Excluded reports whether node was excluded from job for proven fraud:
// it may not be leased on the job again.
func (s *State) Excluded(job JobID, node gridmind.NodeID) bool {
	_, ok := get(s, selVerify, excludedKey(job, node))
	return ok
}

// exclude ends node's active lease on j (the caller saves j) and records
// that it may not be leased on the job again.
func (s *State) exclude(j *Job, node gridmind.NodeID, round uint64) {
	h := s.height()
	for i := range j.Leases {
		if j.Leases[i].Provider != node || !j.Leases[i].Active() {
			continue
		}
		j.Leases[i].EndHeight = h
		if p, ok := s.provider(node); ok && p.ActiveLeases > 0 {
			p.ActiveLeases--
			// The lease is over, so is the stake floor it set (closeJob
			// only clears the floors of leases still active).
			p.LeaseFloors = slices.DeleteFunc(p.LeaseFloors, func(f LeaseFloor) bool { return f.Job == j.ID })
			s.setProvider(p)
		}
	}
	put(s, refVerify, excludedKey(j.ID, node), VerifyRecord{Kind: "excluded", Height: h, Job: j.ID, Node: node, Round: round})
}
