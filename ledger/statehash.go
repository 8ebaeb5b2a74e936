package ledger

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/gridmind/gridmind/verify"
)

// The app hash is the root of a fixed-shape Merkle tree, so that a block
// rehashes only what it changed rather than every entry of the state:
//
//   - each entry's leaf is SHA-256(uvarint(len key) ‖ key ‖ value);
//   - an entry lives in one of 65,536 buckets, chosen by the first two
//     bytes of SHA-256(key); a bucket's hash is SHA-256 of its leaves in
//     key order (all zeros for an empty bucket);
//   - 16 buckets make a node of the next level (4,096 nodes), 16 of those
//     a node of the next (256), then 16; a node's hash is SHA-256 of its
//     16 children (all zeros when every child is);
//   - the app hash is SHA-256(hashDomain ‖ the 16 top nodes).
//
// It is a function of the entries alone. A change costs its leaf, its
// bucket (a few leaves at the sizes gridmind runs at: a bucket grows by
// one leaf per 65,536 entries) and four nodes of 512 bytes, shared with
// the other changes of the block. Keys are chosen by users, so a bucket
// can be crowded on purpose; every key costs its creator a fee, and a
// crowded bucket only makes its own changes slower, never the hash wrong.
const (
	hashDomain  = "gridmind/ledger/state/v2"
	treeFanout  = 16
	treeLevels  = 4 // buckets, then three levels of nodes below the root
	treeBuckets = 1 << 16
)

// stateTree is a base's cached tree: the keys of each bucket and the hash
// of every bucket and node.
type stateTree struct {
	buckets [][]string         // sorted keys of each bucket
	levels  [treeLevels][]Hash // levels[0]: bucket hashes; levels[3]: the 16 top nodes
}

func (t *stateTree) init() {
	if t.buckets != nil {
		return
	}
	t.buckets = make([][]string, treeBuckets)
	n := treeBuckets
	for l := range t.levels {
		t.levels[l] = make([]Hash, n)
		n /= treeFanout
	}
}

// treePlan is what a list of changes does to a base's tree: computed
// without touching the base (a fork's Hash), applied by Commit.
type treePlan struct {
	leaves  []Hash           // leaf of each change with a value, by index
	buckets map[int][]string // new sorted keys of each changed bucket
	nodes   [treeLevels]map[int]Hash
	root    Hash
}

func bucketOf(key string) int {
	h := sha256.Sum256([]byte(key))
	return int(binary.BigEndian.Uint16(h[:2]))
}

// leafHash is an entry's leaf: SHA-256 of its length-prefixed key, then
// its value (verify.HashBytes with the key as the domain).
func leafHash(key string, value []byte) Hash {
	return Hash(verify.HashBytes(key, value))
}

// digestOrZero hashes concatenated child hashes; nothing, or only zero
// hashes, gives the zero hash, so empty parts of the tree cost nothing.
func digestOrZero(children []byte) Hash {
	for _, c := range children {
		if c != 0 {
			return sha256.Sum256(children)
		}
	}
	return Hash{}
}

// planTree works out the tree of base b after changes (sorted by key,
// each key once). It only reads b, so forks of one base may hash
// concurrently.
func (b *State) planTree(changes []Change) *treePlan {
	t := &b.tree
	p := &treePlan{leaves: make([]Hash, len(changes)), buckets: map[int][]string{}}
	byBucket := map[int][]int{} // indexes into changes, each list in key order
	for i, c := range changes {
		if c.Value != nil {
			p.leaves[i] = leafHash(c.Key, c.Value)
		}
		bk := bucketOf(c.Key)
		byBucket[bk] = append(byBucket[bk], i)
	}
	var buf []byte
	p.nodes[0] = make(map[int]Hash, len(byBucket))
	for bk, idx := range byBucket { // order does not matter: buckets are independent
		var old []string
		if t.buckets != nil {
			old = t.buckets[bk]
		}
		keys := make([]string, 0, len(old)+len(idx))
		buf = buf[:0]
		i := 0
		keepOld := func(limit string, bounded bool) {
			for i < len(old) && (!bounded || old[i] < limit) {
				leaf := b.leaves[old[i]]
				keys = append(keys, old[i])
				buf = append(buf, leaf[:]...)
				i++
			}
		}
		for _, n := range idx {
			c := changes[n]
			keepOld(c.Key, true)
			if i < len(old) && old[i] == c.Key {
				i++
			}
			if c.Value != nil {
				keys = append(keys, c.Key)
				buf = append(buf, p.leaves[n][:]...)
			}
		}
		keepOld("", false)
		p.buckets[bk] = keys
		p.nodes[0][bk] = digestOrZero(buf)
	}
	for l := 1; l < treeLevels; l++ {
		p.nodes[l] = make(map[int]Hash, len(p.nodes[l-1]))
		for child := range p.nodes[l-1] { // order does not matter: each parent is computed once from all its children
			parent := child / treeFanout
			if _, done := p.nodes[l][parent]; done {
				continue
			}
			p.nodes[l][parent] = b.nodeHash(p, l-1, parent*treeFanout)
		}
	}
	buf = append(buf[:0], hashDomain...)
	for i := 0; i < treeFanout; i++ {
		h := b.treeNode(p, treeLevels-1, i)
		buf = append(buf, h[:]...)
	}
	p.root = sha256.Sum256(buf)
	return p
}

// treeNode is node i of level l after plan p.
func (b *State) treeNode(p *treePlan, l, i int) Hash {
	if h, ok := p.nodes[l][i]; ok {
		return h
	}
	if b.tree.levels[l] == nil {
		return Hash{}
	}
	return b.tree.levels[l][i]
}

// nodeHash hashes the treeFanout nodes of level l from first on.
func (b *State) nodeHash(p *treePlan, l, first int) Hash {
	var buf [treeFanout * len(Hash{})]byte
	for i := 0; i < treeFanout; i++ {
		h := b.treeNode(p, l, first+i)
		copy(buf[i*len(h):], h[:])
	}
	return digestOrZero(buf[:])
}

// applyTree makes plan p (from b.planTree(changes)) b's tree.
func (b *State) applyTree(changes []Change, p *treePlan) {
	b.tree.init()
	if b.leaves == nil {
		b.leaves = make(map[string]Hash, len(changes))
	}
	for i, c := range changes {
		if c.Value == nil {
			delete(b.leaves, c.Key)
		} else {
			b.leaves[c.Key] = p.leaves[i]
		}
	}
	for bk, keys := range p.buckets { // order does not matter: distinct buckets
		b.tree.buckets[bk] = keys
	}
	for l := range p.nodes {
		for i, h := range p.nodes[l] { // order does not matter: distinct nodes
			b.tree.levels[l][i] = h
		}
	}
	root := p.root
	b.appHash = &root
}
