package train

import (
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps train pure: no network, files, processes or engines
// (time arrives as arguments; the package only computes with durations).
func TestDeps(t *testing.T) { testutil.CheckPure(t) }
