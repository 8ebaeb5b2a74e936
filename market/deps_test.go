package market

import (
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps market pure: no network, files, processes or engines.
func TestDeps(t *testing.T) { testutil.CheckPure(t) }
