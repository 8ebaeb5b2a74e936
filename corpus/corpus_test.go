package corpus

import (
	"bytes"
	"compress/gzip"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// sampleText is deterministic text of about n characters with enough
// variety to tell windows apart.
func sampleText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(" of the sample\n")
	}
	return b.Bytes()[:n]
}

func TestFromTextSplit(t *testing.T) {
	tests := []struct {
		size     int
		wantEval float64 // fraction of the text in the evaluation split
	}{
		{MinTokens, 0.05},
		{50_000, 0.05},
		{1_000_000, 0.05},
	}
	for _, tt := range tests {
		c, err := FromText("sample", sampleText(tt.size))
		if err != nil {
			t.Fatal(err)
		}
		if c.TrainTokens()+c.EvalTokens() != tt.size {
			t.Fatalf("size %d: train %d + eval %d != total", tt.size, c.TrainTokens(), c.EvalTokens())
		}
		frac := float64(c.EvalTokens()) / float64(tt.size)
		if frac < tt.wantEval*0.8 || frac > tt.wantEval*1.2 {
			t.Errorf("size %d: eval fraction %.3f, want about %.2f", tt.size, frac, tt.wantEval)
		}
	}
}

func TestFromTextTooSmall(t *testing.T) {
	_, err := FromText("tiny", []byte("hello"))
	if gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), "need at least") {
		t.Fatalf("got %v, want an invalid-input error naming the minimum", err)
	}
}

func TestHash(t *testing.T) {
	a1, _ := FromText("a", sampleText(5000))
	a2, _ := FromText("other name", sampleText(5000))
	b, _ := FromText("b", sampleText(5001))
	if a1.Hash() != a2.Hash() {
		t.Error("same text gave different hashes")
	}
	if a1.Hash() == b.Hash() {
		t.Error("different text gave the same hash")
	}
	if len(a1.Hash()) != 64 {
		t.Errorf("hash %q is not hex SHA-256", a1.Hash())
	}
}

func TestDefault(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.TrainTokens() < 3_000_000 || c.EvalTokens() < 150_000 {
		t.Fatalf("default corpus smaller than expected: train %d eval %d", c.TrainTokens(), c.EvalTokens())
	}
	again, _ := Default()
	if again != c {
		t.Error("Default decoded the embedded corpus twice")
	}
	if !strings.Contains(DefaultLicense, "The Go Authors") {
		t.Error("DefaultLicense does not hold the Go licence")
	}
	if len(defaultGzip) > 1_500_000 {
		t.Errorf("embedded corpus is %d bytes gzipped, budget is 1.5 MB", len(defaultGzip))
	}
}

// TestDefaultDecodedLazily checks that the corpus Default decodes on first
// use (through gunzip's presized buffer) is the one a plain read of the
// embedded stream gives.
func TestDefaultDecodedLazily(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(defaultGzip))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want, err := FromText("go-stdlib", text)
	if err != nil {
		t.Fatal(err)
	}
	lazy := &Corpus{name: "go-stdlib", decode: decodeDefault}
	if got := lazy.Hash(); got != want.Hash() {
		t.Errorf("lazy hash %s, want %s", got, want.Hash())
	}
	if !bytes.Equal(lazy.train, want.train) || !bytes.Equal(lazy.eval, want.eval) {
		t.Errorf("lazy streams differ: train %d eval %d tokens, want %d and %d", len(lazy.train), len(lazy.eval), len(want.train), len(want.eval))
	}
}

// TestOnlyLoadUsesOS keeps the package pure apart from load.go: the
// sharding and batching that every node must agree on cannot depend on
// the machine.
func TestOnlyLoadUsesOS(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"net", "net/http", "os/exec", "syscall", "time", "math/rand", "math/rand/v2"}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "gen_default.go" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "os" && name != "load.go" {
				t.Errorf("%s imports os; only load.go may", name)
			}
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}

func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"os/exec", "github.com/gomlx/", "github.com/libp2p/", "github.com/cometbft/"} {
			if dep == bad || strings.HasPrefix(dep, bad) {
				t.Errorf("corpus depends on %s", dep)
			}
		}
	}
}
