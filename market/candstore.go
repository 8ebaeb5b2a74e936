package market

import "slices"

// candStore holds an Index's candidates by slot and lets every placement
// keep a snapshot of them for its explanation at little cost: the store
// keeps a checkpoint (a copy of the slot array) and appends every change
// since to a log, so a snapshot is the checkpoint and the log's length
// then. A new checkpoint is taken once the log holds as many changes as
// there are slots, so copying the array costs one pointer per change and
// replaying a snapshot at most O(slots). Stored candidates are never
// modified, and neither is a log entry once written (appends go past
// every snapshot's end), so snapshots are read without the Index's lock.
type candStore struct {
	slots      []*Candidate // now, by slot; nil for a free slot
	checkpoint []*Candidate // the slots when log began
	log        []candChange // changes since the checkpoint, in order
	// every, if set, is the log length that starts a new checkpoint
	// (tests set it small); 0 means max(len(slots), 256).
	every int
}

type candChange struct {
	slot int32
	c    *Candidate // nil: the slot was freed
}

// candSnapshot is the candidates as they were when it was taken.
type candSnapshot struct {
	base []*Candidate
	log  []candChange
}

func (s *candStore) get(slot int32) *Candidate { return s.slots[slot] }

// set stores c (nil frees the slot); the store keeps the pointer.
func (s *candStore) set(slot int, c *Candidate) {
	if slot >= len(s.slots) {
		s.slots = append(s.slots, make([]*Candidate, slot+1-len(s.slots))...)
	}
	s.slots[slot] = c
	if s.checkpoint != nil {
		s.log = append(s.log, candChange{int32(slot), c})
	}
}

// snapshot returns the candidates as they are now, for reading at leisure.
func (s *candStore) snapshot() candSnapshot {
	every := s.every
	if every == 0 {
		every = max(len(s.slots), 256)
	}
	if s.checkpoint == nil || len(s.log) >= every {
		s.checkpoint = slices.Clone(s.slots)
		s.log = nil // a new log: the old one stays with the snapshots holding it
	}
	return candSnapshot{base: s.checkpoint, log: s.log[:len(s.log):len(s.log)]}
}

// each calls f for every candidate, by slot.
func (s *candStore) each(f func(slot int, c *Candidate)) {
	for slot, c := range s.slots {
		if c != nil {
			f(slot, c)
		}
	}
}

// candidates replays the snapshot: the candidates then, by slot.
func (snap candSnapshot) candidates() []Candidate {
	slots := slices.Clone(snap.base)
	for _, ch := range snap.log {
		if int(ch.slot) >= len(slots) {
			slots = append(slots, make([]*Candidate, int(ch.slot)+1-len(slots))...)
		}
		slots[ch.slot] = ch.c
	}
	n := 0
	for _, c := range slots {
		if c != nil {
			n++
		}
	}
	out := make([]Candidate, 0, n)
	for _, c := range slots {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}
