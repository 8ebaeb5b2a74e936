package reputation

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestDeps keeps reputation pure and deterministic: no network, files,
// processes, engines, clock or randomness.
func TestDeps(t *testing.T) { testutil.CheckPure(t, "time", "math/rand", "math/rand/") }

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
