package ledger

import (
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps the ledger pure and deterministic: no network, files,
// processes or engines below it, and no clock, randomness or goroutine
// synchronization in its own code.
func TestDeps(t *testing.T) {
	testutil.CheckPure(t, "io/fs", "time", "math/rand", "math/rand/", "crypto/rand", "sync")
}
