package train

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps train pure. The root package gridmind imports net/http
// (for HTTPStatus), which drags in net and os; those are subtracted, and
// this package's own direct imports are checked on their own.
func TestDeps(t *testing.T) {
	list := func(args ...string) []string {
		out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Skipf("go list unavailable: %v", err)
		}
		return strings.Fields(string(out))
	}
	forbidden := func(p string) bool {
		switch p {
		case "net", "os", "os/exec", "net/http", "syscall":
			return true
		}
		for _, prefix := range []string{"github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/", "net/"} {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		}
		return false
	}
	root := map[string]bool{}
	for _, p := range list("-deps", "github.com/gridmind/gridmind") {
		root[p] = true
	}
	for _, p := range list("-deps", "github.com/gridmind/gridmind/train") {
		if forbidden(p) && !root[p] {
			t.Errorf("train depends on %s", p)
		}
	}
	for _, p := range list("-f", `{{join .Imports " "}}`, "github.com/gridmind/gridmind/train") {
		if forbidden(p) {
			t.Errorf("train imports %s", p)
		}
	}
}
