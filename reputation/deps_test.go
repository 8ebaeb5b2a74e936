package reputation

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDeps keeps reputation pure. Its own imports may not reach the
// network, files, processes or the machine; nothing below it may pull in
// a heavy engine or os/exec. (The root package imports net/http for
// HTTPStatus, so net and os appear transitively through it.)
func TestDeps(t *testing.T) {
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, imp := range strings.Fields(string(direct)) {
		if imp == "net" || strings.HasPrefix(imp, "net/") || imp == "os" || strings.HasPrefix(imp, "os/") ||
			imp == "syscall" || imp == "unsafe" || imp == "time" || strings.HasPrefix(imp, "math/rand") {
			t.Errorf("reputation imports %s (forbidden: pure, deterministic package)", imp)
		}
	}
	deps, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, bad := range []string{"os/exec", "github.com/libp2p/", "github.com/cometbft/", "github.com/gomlx/"} {
			if dep == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad)) {
				t.Errorf("reputation depends on %s", dep)
			}
		}
	}
}

// TestNoFloats enforces the integer-only rule on the package's code: the
// ledger runs it on every validator, and floating point is where
// machines could disagree. Tests may use floats to check the integers.
func TestNoFloats(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == "math" || path == "math/big" {
				t.Errorf("%s imports %s; use math/bits", name, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				switch n.Name {
				case "float32", "float64", "complex64", "complex128":
					t.Errorf("%s: %s uses %s", fset.Position(n.Pos()), name, n.Name)
				}
			case *ast.BasicLit:
				if n.Kind == token.FLOAT || n.Kind == token.IMAG {
					t.Errorf("%s: floating-point literal %s", fset.Position(n.Pos()), n.Value)
				}
			}
			return true
		})
	}
}
