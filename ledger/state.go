package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// State is the ledger's state: a committed base, or a fork layered on top
// of another State. A fork sees everything below it and records its own
// changes; the base is only ever changed by Commit, so a fork can be
// thrown away at no cost (a failed proposal, the CheckTx layer).
//
// The state is a set of entries, each a key and a canonical JSON value.
// The app hash is the root of a Merkle tree over the entries
// (statehash.go). The base caches the tree, so hashing a fork costs
// encoding and hashing what the fork changed and the tree's nodes above
// it, not a pass over the whole state.
//
// A State is not safe for concurrent use, except that several forks may
// read one base concurrently while nobody commits to it.
type State struct {
	parent *State
	opts   *Options

	acct  table[Account]
	prov  table[Provider]
	jobs  table[Job]
	rcpt  table[Receipt]
	rep   table[Reputation]
	unb   table[unbondQueue]
	slash table[SlashRecord]
	vfy   table[VerifyRecord] // verification: beacons, exclusions (fraud_state.go)
	held  table[heldQueue]    // ended jobs' rounds in their dispute window (held.go)
	meta  table[Meta]

	// Base only: the leaf hash of every entry, all keys sorted, and the
	// hash tree over the leaves.
	leaves map[string]Hash
	keys   []string
	tree   stateTree
	// Base only: the money in accounts and jobs (supply.go).
	totals supplyTotals
	// Base only: the hash of its entries, set whenever they change (one
	// writer), so BeginBlock's audit beacon reads it for free.
	appHash *Hash

	changes []Change  // memo of Changes; nil when stale
	plan    *treePlan // memo of the tree after Changes; nil when stale
}

// table holds one kind of entry. In a fork a nil value marks a deletion.
type table[V any] map[string]*V

// Entry key prefixes; the order of entries in the hash is the order of
// the full keys.
const (
	prefixAccount    = "acct/"
	prefixProvider   = "prov/"
	prefixJob        = "job/"
	prefixReceipt    = "rcpt/"
	prefixReputation = "rep/"
	prefixUnbond     = "unb/"
	prefixSlash      = "slash/"
	keyMeta          = "meta"
)

func receiptKey(job JobID, round uint64) string {
	b := make([]byte, 0, len(prefixReceipt)+len(job)+21)
	b = append(append(append(b, prefixReceipt...), job...), '/')
	return string(appendPadded(b, round))
}
func unbondKey(height int64) string { return heightKey(prefixUnbond, height) }

// get returns the value of key as seen from s; the pointer must not be
// written through.
func get[V any](s *State, sel func(*State) table[V], key string) (*V, bool) {
	for l := s; l != nil; l = l.parent {
		if v, ok := sel(l)[key]; ok {
			return v, v != nil
		}
	}
	return nil, false
}

func put[V any](s *State, sel func(*State) *table[V], key string, v V) {
	t := sel(s)
	if *t == nil {
		*t = make(table[V])
	}
	(*t)[key] = &v
	s.changes, s.plan = nil, nil
	s.appHash = nil
}

func remove[V any](s *State, sel func(*State) *table[V], key string) {
	t := sel(s)
	if s.parent == nil {
		delete(*t, key)
		s.appHash = nil
		return
	}
	if *t == nil {
		*t = make(table[V])
	}
	(*t)[key] = nil
	s.changes, s.plan = nil, nil
}

// Selectors, so the generic helpers can reach each table of each layer.
func selAcct(s *State) table[Account]       { return s.acct }
func selProv(s *State) table[Provider]      { return s.prov }
func selJobs(s *State) table[Job]           { return s.jobs }
func selRcpt(s *State) table[Receipt]       { return s.rcpt }
func selRep(s *State) table[Reputation]     { return s.rep }
func selUnb(s *State) table[unbondQueue]    { return s.unb }
func selSlash(s *State) table[SlashRecord]  { return s.slash }
func selMeta(s *State) table[Meta]          { return s.meta }
func refAcct(s *State) *table[Account]      { return &s.acct }
func refProv(s *State) *table[Provider]     { return &s.prov }
func refJobs(s *State) *table[Job]          { return &s.jobs }
func refRcpt(s *State) *table[Receipt]      { return &s.rcpt }
func refRep(s *State) *table[Reputation]    { return &s.rep }
func refUnb(s *State) *table[unbondQueue]   { return &s.unb }
func refSlash(s *State) *table[SlashRecord] { return &s.slash }
func refMeta(s *State) *table[Meta]         { return &s.meta }

// Fork returns a new layer on top of s. Changes made to the fork are
// invisible to s until s.Commit(fork).
func (s *State) Fork() *State { return &State{parent: s, opts: s.opts} }

// Base reports whether s is a committed base rather than a fork.
func (s *State) Base() bool { return s.parent == nil }

func (s *State) base() *State {
	for s.parent != nil {
		s = s.parent
	}
	return s
}

// Change is one entry of the state: a key and its canonical JSON value, or
// a nil value for a deleted entry.
type Change struct {
	Key   string
	Value []byte
}

func marshalEntry(v any) []byte {
	if r, ok := v.(*Receipt); ok { // the most common entry: see appendReceiptJSON
		if b, ok := appendReceiptJSON(nil, r); ok {
			return b
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Every entry type is plain structs of strings, integers and
		// slices; failing to encode one is a bug, not bad input.
		panic(fmt.Sprintf("ledger: encode state entry: %v", err))
	}
	return b
}

// Changes lists what a fork changed relative to the base, sorted by key.
// On a base it returns nil. The result is cached until the next write.
func (s *State) Changes() []Change {
	if s.parent == nil {
		return nil
	}
	if s.changes != nil {
		return s.changes
	}
	seen := map[string]bool{}
	var out []Change
	for l := s; l.parent != nil; l = l.parent {
		out = collect(out, seen, l.acct)
		out = collect(out, seen, l.prov)
		out = collect(out, seen, l.jobs)
		out = collect(out, seen, l.rcpt)
		out = collect(out, seen, l.rep)
		out = collect(out, seen, l.unb)
		out = collect(out, seen, l.slash)
		out = collect(out, seen, l.vfy)
		out = collect(out, seen, l.held)
		out = collect(out, seen, l.meta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if out == nil {
		out = []Change{}
	}
	s.changes = out
	return out
}

func collect[V any](out []Change, seen map[string]bool, t table[V]) []Change {
	for k, v := range t { // order does not matter: the caller sorts
		if seen[k] {
			continue
		}
		seen[k] = true
		c := Change{Key: k}
		if v != nil {
			c.Value = marshalEntry(v)
		}
		out = append(out, c)
	}
	return out
}

// Hash returns the app hash of the state as seen from s: a function of
// the entries only, not of how they came about.
func (s *State) Hash() Hash {
	if s.parent == nil && s.appHash != nil {
		return *s.appHash
	}
	return s.treePlan().root
}

// treePlan is the base's tree after s's changes, memoized until s's next
// write (FinalizeBlock hashes a fork, then Commit applies the same plan).
func (s *State) treePlan() *treePlan {
	if s.parent == nil {
		return s.planTree(nil)
	}
	if s.plan == nil {
		s.plan = s.base().planTree(s.Changes())
	}
	return s.plan
}

// Commit folds fork, a direct fork of s, into s. Other forks of s must be
// discarded afterwards: they were built on the old state.
func (s *State) Commit(fork *State) error {
	if s.parent != nil || fork.parent != s {
		return fmt.Errorf("ledger: commit: not a direct fork of this base")
	}
	changes := fork.Changes()
	plan := fork.treePlan()
	delta, _ := fork.supplyDelta()
	s.totals = s.totals.plus(delta)
	mergeTable(&s.acct, fork.acct)
	mergeTable(&s.prov, fork.prov)
	mergeTable(&s.jobs, fork.jobs)
	mergeTable(&s.rcpt, fork.rcpt)
	mergeTable(&s.rep, fork.rep)
	mergeTable(&s.unb, fork.unb)
	mergeTable(&s.slash, fork.slash)
	mergeTable(&s.vfy, fork.vfy)
	mergeTable(&s.held, fork.held)
	mergeTable(&s.meta, fork.meta)
	s.applyLeaves(changes, plan)
	return nil
}

func mergeTable[V any](dst *table[V], src table[V]) {
	if *dst == nil {
		*dst = make(table[V], len(src))
	}
	for k, v := range src { // order does not matter: each key is independent
		if v == nil {
			delete(*dst, k)
		} else {
			(*dst)[k] = v
		}
	}
}

// applyLeaves updates the sorted key list of a base (in one merge pass)
// and its hash tree from a sorted list of changes; plan is
// s.planTree(changes), or nil to compute it here.
func (s *State) applyLeaves(changes []Change, plan *treePlan) {
	merged := make([]string, 0, len(s.keys)+len(changes))
	i := 0
	for _, c := range changes {
		// A block changes few of the keys: find each change's place by
		// binary search and copy the run before it, rather than compare
		// every key.
		next := i + sort.SearchStrings(s.keys[i:], c.Key)
		merged = append(merged, s.keys[i:next]...)
		i = next
		if i < len(s.keys) && s.keys[i] == c.Key {
			i++
		}
		if c.Value != nil {
			merged = append(merged, c.Key)
		}
	}
	merged = append(merged, s.keys[i:]...)
	s.keys = merged
	if plan == nil {
		plan = s.planTree(changes)
	}
	s.applyTree(changes, plan)
}

// Entries returns every entry of the state as seen from s, sorted by key
// (the whole state, for persisting a genesis or a snapshot).
func (s *State) Entries() []Change {
	var out []Change
	for _, k := range s.allKeys("") {
		out = append(out, Change{Key: k, Value: s.encodeKey(k)})
	}
	return out
}

func (s *State) encodeKey(k string) []byte {
	var v any
	var ok bool
	switch {
	case strings.HasPrefix(k, prefixAccount):
		v, ok = get(s, selAcct, k)
	case strings.HasPrefix(k, prefixProvider):
		v, ok = get(s, selProv, k)
	case strings.HasPrefix(k, prefixJob):
		v, ok = get(s, selJobs, k)
	case strings.HasPrefix(k, prefixReceipt):
		v, ok = get(s, selRcpt, k)
	case strings.HasPrefix(k, prefixReputation):
		v, ok = get(s, selRep, k)
	case strings.HasPrefix(k, prefixUnbond):
		v, ok = get(s, selUnb, k)
	case strings.HasPrefix(k, prefixSlash):
		v, ok = get(s, selSlash, k)
	case strings.HasPrefix(k, prefixVerify):
		v, ok = get(s, selVerify, k)
	case strings.HasPrefix(k, prefixHeld):
		v, ok = get(s, selHeld, k)
	case k == keyMeta:
		v, ok = get(s, selMeta, k)
	}
	if !ok {
		return nil
	}
	return marshalEntry(v)
}

// allKeys returns the keys with prefix visible from s, sorted.
func (s *State) allKeys(prefix string) []string {
	b := s.base()
	lo := sort.SearchStrings(b.keys, prefix)
	hi := lo
	for hi < len(b.keys) && strings.HasPrefix(b.keys[hi], prefix) {
		hi++
	}
	if s.parent == nil {
		return slices.Clone(b.keys[lo:hi])
	}
	var out []string
	ch := s.Changes()
	j := sort.Search(len(ch), func(n int) bool { return ch[n].Key >= prefix })
	i := lo
	for i < hi || (j < len(ch) && strings.HasPrefix(ch[j].Key, prefix)) {
		if j >= len(ch) || !strings.HasPrefix(ch[j].Key, prefix) || (i < hi && b.keys[i] < ch[j].Key) {
			out = append(out, b.keys[i])
			i++
			continue
		}
		if i < hi && b.keys[i] == ch[j].Key {
			i++
		}
		if ch[j].Value != nil {
			out = append(out, ch[j].Key)
		}
		j++
	}
	return out
}

// Restore rebuilds a base state from its entries (as persisted by chain/).
// Unknown keys or fields are refused: a state this code cannot read fully
// must not be run.
func Restore(entries []Change, opts Options) (*State, error) {
	s := &State{opts: &opts}
	var changes []Change
	for _, e := range entries {
		if err := s.restoreEntry(e.Key, e.Value); err != nil {
			return nil, fmt.Errorf("ledger: restore %q: %w", e.Key, err)
		}
		changes = append(changes, Change{Key: e.Key, Value: e.Value})
	}
	if _, ok := get(s, selMeta, keyMeta); !ok {
		return nil, fmt.Errorf("ledger: restore: no meta entry")
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	for i := 1; i < len(changes); i++ {
		if changes[i].Key == changes[i-1].Key {
			return nil, fmt.Errorf("ledger: restore: duplicate key %q", changes[i].Key)
		}
	}
	s.applyLeaves(changes, nil)
	s.initSupply()
	return s, nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func restoreInto[V any](s *State, ref func(*State) *table[V], key string, value []byte) error {
	var v V
	if err := strictUnmarshal(value, &v); err != nil {
		return err
	}
	// The stored bytes must be exactly what this code would write, or the
	// hash of the restored state would not be the hash that was committed.
	if !bytes.Equal(marshalEntry(&v), value) {
		return fmt.Errorf("entry is not in canonical form")
	}
	put(s, ref, key, v)
	return nil
}

func (s *State) restoreEntry(k string, v []byte) error {
	switch {
	case strings.HasPrefix(k, prefixAccount):
		return restoreInto(s, refAcct, k, v)
	case strings.HasPrefix(k, prefixProvider):
		return restoreInto(s, refProv, k, v)
	case strings.HasPrefix(k, prefixJob):
		return restoreInto(s, refJobs, k, v)
	case strings.HasPrefix(k, prefixReceipt):
		return restoreInto(s, refRcpt, k, v)
	case strings.HasPrefix(k, prefixReputation):
		return restoreInto(s, refRep, k, v)
	case strings.HasPrefix(k, prefixUnbond):
		return restoreInto(s, refUnb, k, v)
	case strings.HasPrefix(k, prefixSlash):
		return restoreInto(s, refSlash, k, v)
	case strings.HasPrefix(k, prefixVerify):
		return restoreInto(s, refVerify, k, v)
	case strings.HasPrefix(k, prefixHeld):
		return restoreInto(s, refHeld, k, v)
	case k == keyMeta:
		return restoreInto(s, refMeta, k, v)
	}
	return fmt.Errorf("unknown entry")
}
