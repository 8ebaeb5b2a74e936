package corpus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gridmind/gridmind"
)

func write(t *testing.T, path string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	text := sampleText(4000)
	write(t, filepath.Join(dir, "a.txt"), text)
	c, err := Load(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FromText("x", text)
	if c.Hash() != want.Hash() {
		t.Fatal("loaded file encodes differently from its text")
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	part := sampleText(3000)
	write(t, filepath.Join(dir, "b", "two.md"), append([]byte("SECOND\n"), part...))
	write(t, filepath.Join(dir, "a.txt"), append([]byte("FIRST\n"), part...))
	write(t, filepath.Join(dir, ".git", "config"), []byte("HIDDEN\n"))
	write(t, filepath.Join(dir, "image.png"), []byte{0x89, 'P', 'N', 'G', 0, 0, 0xff})
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	all := Decode(u8to32(append(append([]uint8{}, c.train...), c.eval...)))
	if strings.Contains(all, "HIDDEN") || strings.Contains(all, "PNG") {
		t.Error("hidden or binary file was included")
	}
	first, second := strings.Index(all, "FIRST"), strings.Index(all, "SECOND")
	if first < 0 || second < 0 || first > second {
		t.Errorf("files not in lexical order: FIRST at %d, SECOND at %d", first, second)
	}
	again, _ := Load(dir)
	if again.Hash() != c.Hash() {
		t.Error("loading the same directory twice gave different corpora")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bin"), []byte{1, 2, 0, 3})
	write(t, filepath.Join(dir, "onlybinary", "x.bin"), []byte{0, 0, 0})
	write(t, filepath.Join(dir, "small.txt"), []byte("too short"))
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		kind       gridmind.Kind
		says       string
	}{
		{"missing", filepath.Join(dir, "nope"), gridmind.KindNotFound, "no such file"},
		{"binary file", filepath.Join(dir, "bin"), gridmind.KindInvalid, "not UTF-8 text"},
		{"dir of binaries", filepath.Join(dir, "onlybinary"), gridmind.KindInvalid, "no text files"},
		{"empty dir", filepath.Join(dir, "empty"), gridmind.KindInvalid, "no text files"},
		{"too small", filepath.Join(dir, "small.txt"), gridmind.KindInvalid, "need at least"},
	}
	for _, tt := range tests {
		_, err := Load(tt.path)
		if gridmind.KindOf(err) != tt.kind || err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: got %v, want %s error saying %q", tt.name, err, tt.kind, tt.says)
		}
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"z.txt":     {Data: sampleText(2000)},
		"dir/a.txt": {Data: sampleText(2000)},
	}
	c, err := LoadFS(fsys, "mapfs")
	if err != nil {
		t.Fatal(err)
	}
	// Each file gets the newline it lacks, so files do not run together.
	if got := c.TrainTokens() + c.EvalTokens(); got != 4002 {
		t.Fatalf("got %d characters, want 4002", got)
	}
}

func u8to32(ids []uint8) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
