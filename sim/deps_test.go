package sim

import (
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps sim pure: no network, files, processes or engines.
func TestDeps(t *testing.T) { testutil.CheckPure(t) }
