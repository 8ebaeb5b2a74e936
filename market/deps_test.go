package market

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps market pure. Its own imports may not reach the network,
// files, processes or the machine; nothing below it may pull in a heavy
// engine or os/exec. (The root package imports net/http for HTTPStatus, so
// net and os appear among the transitive deps through it; that is why the
// direct imports are checked separately.)
func TestDeps(t *testing.T) {
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, imp := range strings.Fields(string(direct)) {
		if imp == "net" || strings.HasPrefix(imp, "net/") || imp == "os" || strings.HasPrefix(imp, "os/") || imp == "syscall" || imp == "unsafe" {
			t.Errorf("market imports %s (forbidden: pure package)", imp)
		}
	}
	deps, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, bad := range []string{"os/exec", "github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/"} {
			if dep == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad)) {
				t.Errorf("market depends on %s", dep)
			}
		}
	}
}
