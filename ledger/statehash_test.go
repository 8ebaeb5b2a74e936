package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gridmind/gridmind"
)

// referenceHash computes the app hash of a list of entries from scratch,
// straight from the definition in statehash.go, sharing no code with it.
func referenceHash(entries []Change) Hash {
	leaf := func(c Change) []byte {
		var n [binary.MaxVarintLen64]byte
		b := append(n[:binary.PutUvarint(n[:], uint64(len(c.Key)))], c.Key...)
		h := sha256.Sum256(append(b, c.Value...))
		return h[:]
	}
	level := make([][]byte, 1<<16) // entries arrive sorted, so each bucket's leaves are in key order
	for _, c := range entries {
		k := sha256.Sum256([]byte(c.Key))
		bk := int(k[0])<<8 | int(k[1])
		level[bk] = append(level[bk], leaf(c)...)
	}
	digest := func(b []byte) []byte {
		for _, x := range b {
			if x != 0 {
				h := sha256.Sum256(b)
				return h[:]
			}
		}
		return make([]byte, 32)
	}
	hashes := make([][]byte, len(level))
	for i, b := range level {
		hashes[i] = digest(b)
	}
	for len(hashes) > 16 {
		next := make([][]byte, len(hashes)/16)
		for i := range next {
			var b []byte
			for _, h := range hashes[i*16 : i*16+16] {
				b = append(b, h...)
			}
			next[i] = digest(b)
		}
		hashes = next
	}
	b := []byte("gridmind/ledger/state/v2")
	for _, h := range hashes {
		b = append(b, h...)
	}
	return sha256.Sum256(b)
}

// crowdedKeys returns n reputation keys that fall into only four buckets,
// so that buckets hold several entries (a few hundred random keys would
// mostly get one each).
func crowdedKeys(n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("%sN%d", prefixReputation, i)
		if bucketOf(k) < 4 {
			out = append(out, k)
		}
	}
	return out
}

// TestHashIncremental: over random blocks that add, change and delete
// entries (some in crowded buckets), the hash of every fork, of the base
// after Commit, and of a base restored from the entries all equal the
// hash computed from scratch.
func TestHashIncremental(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 100 * grid, "bob": 5})
	rng := rand.New(rand.NewPCG(7, 7))
	keys := crowdedKeys(24)
	for i := 0; i < 200; i++ {
		keys = append(keys, fmt.Sprintf("%sR%d", prefixReputation, i))
	}
	if got := h.base.Hash(); got != referenceHash(h.base.Entries()) {
		t.Fatalf("genesis: hash %s, from scratch %s", got, referenceHash(h.base.Entries()))
	}
	for block := 1; block <= 40; block++ {
		fork := h.base.Fork()
		if _, err := fork.BeginBlock(int64(block), ""); err != nil {
			t.Fatal(err)
		}
		for n := rng.IntN(30); n >= 0; n-- {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				remove(fork, refRep, k)
			} else {
				put(fork, refRep, k, Reputation{Node: gridmind.NodeID(k[len(prefixReputation):]), Attestations: rng.Uint64N(100)})
			}
		}
		if block%5 == 0 { // a fork of a fork sees both layers
			top := fork.Fork()
			put(top, refRep, keys[0], Reputation{Node: "TOP", Slashes: uint64(block)})
			if got, want := top.Hash(), referenceHash(top.Entries()); got != want {
				t.Fatalf("block %d: fork of a fork hashes %s, from scratch %s", block, got, want)
			}
		}
		want := referenceHash(fork.Entries())
		if got := fork.Hash(); got != want {
			t.Fatalf("block %d: fork hashes %s, from scratch %s", block, got, want)
		}
		if err := h.base.Commit(fork); err != nil {
			t.Fatal(err)
		}
		if got := h.base.Hash(); got != want {
			t.Fatalf("block %d: committed base hashes %s, from scratch %s", block, got, want)
		}
		restored, err := Restore(h.base.Entries(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := restored.Hash(); got != want {
			t.Fatalf("block %d: restored base hashes %s, from scratch %s", block, got, want)
		}
	}
}

// TestHashVector pins the app hash of a small genesis, so that a change to
// the hash's definition (which every validator must make at once) is a
// deliberate one.
func TestHashVector(t *testing.T) {
	g := Genesis{ChainID: "vector", Params: DefaultParams(), Accounts: []GenesisAccount{
		{Address: idOf(testKey("alice")), Balance: 1000},
		{Address: idOf(testKey("bob")), Balance: 5, Stake: 7},
	}}
	s, err := NewState(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const want = "f5e678d144f6bffc936135f5fe8f15244f110c125174d13512e8d081899725c5"
	if got := s.Hash().String(); got != want {
		t.Fatalf("genesis hash %s, pinned %s", got, want)
	}
}
