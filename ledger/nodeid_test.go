package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestNodeIDOfMatchesRoot(t *testing.T) {
	keys := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), append(make([]byte, 31), 1), append([]byte{1}, make([]byte, 31)...)}
	for i := 0; i < 20000; i++ {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		keys = append(keys, h[:])
	}
	for _, k := range keys {
		want := gridmind.NodeIDFromPublicKey(ed25519.PublicKey(k))
		if got := nodeIDOf(k); got != want {
			t.Fatalf("key %x: got %s, want %s", k, got, want)
		}
	}
}

func BenchmarkNodeIDOf(b *testing.B) {
	k := sha256.Sum256([]byte("k"))
	for i := 0; i < b.N; i++ {
		nodeIDOf(k[:])
	}
}

func BenchmarkNodeIDRoot(b *testing.B) {
	k := sha256.Sum256([]byte("k"))
	for i := 0; i < b.N; i++ {
		gridmind.NodeIDFromPublicKey(k[:])
	}
}
