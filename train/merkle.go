package train

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/bits"
)

// This file holds the commitment a worker makes to its pseudo-gradient
// before it sends any part: a Merkle root over the vector's quantization
// blocks. The split into parts depends on the announced membership, which
// the worker does not know when it commits, but every part is a run of
// whole blocks, so one root covers every possible split: a part travels
// with a range proof (the hashes of the subtrees outside it), and its
// reducer recomputes the root from the part's decoded values and the proof.
// A part that does not lead to the root the sender signed is evidence.

// leafHasher hashes leaves one after the other with one hash state and
// one buffer. Leaves are hashed from the decoded float32 values, not the
// encoded bytes: two encodings of the same values are the same contribution.
type leafHasher struct {
	h   hash.Hash
	buf []byte
}

func (l *leafHasher) leaf(index int, values []float32) Hash {
	if l.h == nil {
		l.h = sha256.New()
	}
	l.h.Reset()
	var b [5]byte
	b[0] = 0
	binary.LittleEndian.PutUint32(b[1:], uint32(index))
	l.h.Write(b[:])
	l.buf = appendFloats(l.buf[:0], values)
	l.h.Write(l.buf)
	var out Hash
	l.h.Sum(out[:0])
	return out
}

func nodeHash(left, right Hash) Hash {
	var b [65]byte
	b[0] = 1
	copy(b[1:], left[:])
	copy(b[33:], right[:])
	return Hash(sha256.Sum256(b[:]))
}

// splitPoint is where a node covering n > 1 leaves divides: the largest
// power of two below n, as in RFC 6962, so no padding is needed.
func splitPoint(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// BlockLeaves hashes the blocks of values (blockSize elements each, the
// last one possibly shorter).
func BlockLeaves(values []float32, blockSize int) []Hash {
	_, leaves := partLeaves(values, 0, blockSize)
	return leaves
}

// QuantizedLeaves is BlockLeaves of q's dequantized values, block by
// block through one block of scratch: a worker commits to what receivers
// decode without writing the whole decoded vector out and reading it back.
func QuantizedLeaves(q Quantized) ([]Hash, error) {
	if err := q.checkBlocks(); err != nil {
		return nil, err
	}
	bs := q.BlockSize
	leaves := make([]Hash, len(q.Scales))
	scratch := make([]float32, min(bs, len(q.Values)))
	var lh leafHasher
	for b, scale := range q.Scales {
		values := q.Values[b*bs : min((b+1)*bs, len(q.Values))]
		out := scratch[:len(values)]
		dequantizeBlock(out, values, scale)
		leaves[b] = lh.leaf(b, out)
	}
	return leaves, nil
}

func subtreeRoot(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return Hash{}
	case 1:
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return nodeHash(subtreeRoot(leaves[:k]), subtreeRoot(leaves[k:]))
}

// MerkleRoot is the root over leaves (the zero hash for none).
func MerkleRoot(leaves []Hash) Hash { return subtreeRoot(leaves) }

// RangeProof returns the hashes needed to recompute the root from the
// leaves [from, to): one per maximal subtree outside the range, in
// left-to-right order.
func RangeProof(leaves []Hash, from, to int) []Hash {
	var proof []Hash
	var walk func(lo, hi int)
	walk = func(lo, hi int) {
		switch {
		case to <= lo || from >= hi || from == to:
			proof = append(proof, subtreeRoot(leaves[lo:hi]))
		case from <= lo && hi <= to:
		default:
			k := lo + splitPoint(hi-lo)
			walk(lo, k)
			walk(k, hi)
		}
	}
	if len(leaves) > 0 {
		walk(0, len(leaves))
	}
	return proof
}

// MaxProofHashes bounds a range proof: two per tree level.
const MaxProofHashes = 2 * 64

var errProof = errors.New("train: range proof does not fit")

// RootFromRange recomputes the root of a tree of total leaves from the
// leaves [from, from+len(rangeLeaves)) and their proof.
func RootFromRange(total, from int, rangeLeaves []Hash, proof []Hash) (Hash, error) {
	to := from + len(rangeLeaves)
	if total <= 0 || from < 0 || to > total || len(proof) > MaxProofHashes {
		return Hash{}, fmt.Errorf("%w: leaves [%d, %d) of %d", errProof, from, to, total)
	}
	var walk func(lo, hi int) (Hash, error)
	walk = func(lo, hi int) (Hash, error) {
		switch {
		case to <= lo || from >= hi || from == to:
			if len(proof) == 0 {
				return Hash{}, fmt.Errorf("%w: too few hashes", errProof)
			}
			h := proof[0]
			proof = proof[1:]
			return h, nil
		case from <= lo && hi <= to:
			return subtreeRoot(rangeLeaves[lo-from : hi-from]), nil
		default:
			k := lo + splitPoint(hi-lo)
			l, err := walk(lo, k)
			if err != nil {
				return Hash{}, err
			}
			r, err := walk(k, hi)
			if err != nil {
				return Hash{}, err
			}
			return nodeHash(l, r), nil
		}
	}
	root, err := walk(0, total)
	if err != nil {
		return Hash{}, err
	}
	if len(proof) != 0 {
		return Hash{}, fmt.Errorf("%w: %d hashes left over", errProof, len(proof))
	}
	return root, nil
}

// partLeaves hashes the blocks of a part that starts at element lo: a
// part is a run of whole blocks, so its first block's index is lo/blockSize.
func partLeaves(values []float32, lo, blockSize int) (first int, leaves []Hash) {
	first = lo / blockSize
	leaves = make([]Hash, NumBlocks(len(values), blockSize))
	var lh leafHasher
	for i := range leaves {
		leaves[i] = lh.leaf(first+i, values[i*blockSize:min((i+1)*blockSize, len(values))])
	}
	return first, leaves
}
