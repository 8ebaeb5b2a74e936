package route

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps route pure: no network, files, processes or heavy engines.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"net", "os", "os/exec", "github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("route imports %s (forbidden: pure package)", dep)
			}
		}
	}
}
