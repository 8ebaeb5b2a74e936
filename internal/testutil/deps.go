// Package testutil holds helpers shared by gridmind's tests.
package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// pureForbiddenDeps may appear nowhere below a pure package: no network,
// no processes, none of the heavy engines (each has its one adapter).
var pureForbiddenDeps = []string{"net", "net/", "os/exec", "github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/"}

// pureForbiddenImports may not be imported by a pure package itself
// (the standard library's fmt brings os in transitively, which is fine).
var pureForbiddenImports = []string{"os", "os/", "syscall", "unsafe"}

// CheckPure fails t unless the package in the current directory is pure:
// it imports none of pureForbiddenImports (nor any of extraImports, e.g.
// "time" for a package that must not read the clock), and nothing below it
// reaches the network, processes or an engine. It runs `go list`.
func CheckPure(t *testing.T, extraImports ...string) {
	t.Helper()
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, imp := range strings.Fields(string(direct)) {
		if matches(imp, pureForbiddenImports) || matches(imp, extraImports) {
			t.Errorf("imports %s (forbidden in a pure package)", imp)
		}
	}
	deps, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, dep := range strings.Fields(string(deps)) {
		if matches(dep, pureForbiddenDeps) {
			t.Errorf("depends on %s (forbidden below a pure package)", dep)
		}
	}
}

// matches reports whether path is one of patterns, where a pattern ending
// in "/" stands for every path under it.
func matches(path string, patterns []string) bool {
	for _, p := range patterns {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}
