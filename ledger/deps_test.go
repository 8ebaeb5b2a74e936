package ledger

import (
	"os/exec"
	"strings"
	"testing"
)

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

// TestDeps keeps the ledger pure. Its own imports may not reach the
// network, files, processes, clocks or randomness, and nothing it pulls
// in may be an engine (libp2p, CometBFT, GoMLX). The transitive closure
// does contain "os" and "net": fmt imports os, and the root package
// imports net/http for HTTPStatus; so the closure is checked against the
// root package's, and the ledger may add none of the forbidden packages.
func TestDeps(t *testing.T) {
	forbiddenDirect := map[string]bool{
		"net": true, "os": true, "os/exec": true, "io/fs": true, "syscall": true, "unsafe": true,
		"time": true, "math/rand": true, "math/rand/v2": true, "crypto/rand": true, "sync": true,
		"github.com/cometbft/cometbft": true,
	}
	for _, imp := range goList(t, "-f", `{{join .Imports "\n"}}`, ".") {
		if forbiddenDirect[imp] || strings.Contains(imp, "/cometbft/") || strings.Contains(imp, "libp2p") || strings.Contains(imp, "gomlx") {
			t.Errorf("ledger imports %s directly (forbidden: pure package)", imp)
		}
	}
	rootDeps := map[string]bool{}
	for _, d := range goList(t, "-deps", "..") {
		rootDeps[d] = true
	}
	forbidden := []string{"net", "os", "os/exec", "github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/"}
	for _, dep := range goList(t, "-deps", ".") {
		for _, f := range forbidden {
			match := dep == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f))
			if match && !rootDeps[dep] {
				t.Errorf("ledger pulls in %s (forbidden: pure package)", dep)
			}
		}
	}
}
