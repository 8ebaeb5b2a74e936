package verify

import (
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps verify pure: no network, files, processes, engines or
// clock; randomness only as a seeded *rand.Rand handed in (bench.go).
func TestDeps(t *testing.T) { testutil.CheckPure(t, "time", "crypto/rand", "sync") }
