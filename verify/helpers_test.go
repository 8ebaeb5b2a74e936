package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/gridmind/gridmind"
)

// testKey is a deterministic key for test identity i.
func testKey(i int) (ed25519.PrivateKey, gridmind.NodeID) {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("verify-test-key"), uint64(i)))
	key := ed25519.NewKeyFromSeed(seed[:])
	return key, gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
}

func h(s string) Hash { return sha256.Sum256([]byte(s)) }

// signedCommitment is worker i's commitment for a round of job "job-1".
func signedCommitment(t testing.TB, i int, segments uint32) Commitment {
	t.Helper()
	key, id := testKey(i)
	c := Commitment{
		Job: "job-1", Round: 7, Worker: id, Start: h("theta-7"), Shard: ShardID("job-1", 7, i, 4), Steps: 8,
		OptBefore: h("opt0"), OptAfter: h("opt1"), ResidualBefore: h("res0"), ResidualAfter: h("res1"), Delta: h("delta"),
		SegmentSteps: segments,
	}
	if segments > 0 {
		for j := uint32(0); j < (8+segments-1)/segments; j++ {
			c.Checkpoints = append(c.Checkpoints, h("ckpt"+string(rune('a'+j))))
		}
	}
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	return c
}

func signedResult(t testing.TB, auditor int, c *Commitment, p Part, got Hash) Result {
	t.Helper()
	key, id := testKey(auditor)
	r := NewResult(id, c, p, ModeBitwise, got, 0)
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	return r
}
