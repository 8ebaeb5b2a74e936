package corpus

import (
	"bytes"
	"io/fs"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

// MaxLoadBytes bounds what Load reads, so a mistaken --data / does not
// try to read a whole disk into memory.
const MaxLoadBytes = 512 << 20

// LoadFS is Load for a directory tree given as an fs.FS (an embed.FS, a
// zip, fstest.MapFS); name is only for messages.
func LoadFS(fsys fs.FS, name string) (*Corpus, error) {
	return loadFS("corpus.load_fs", fsys, name)
}

func loadFS(op string, fsys fs.FS, name string) (*Corpus, error) {
	text, err := readTextTree(fsys)
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%s: %w", name, err)
	}
	return FromText(name, text)
}

// readTextTree concatenates the text files of fsys in lexical path order,
// each ending in a newline.
func readTextTree(fsys fs.FS) ([]byte, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(path.Base(name), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files) // WalkDir is lexical per directory; make the whole order explicit
	var text bytes.Buffer
	used := 0
	for _, name := range files {
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		if !isText(body) {
			continue
		}
		if text.Len()+len(body) > MaxLoadBytes {
			return nil, gridmind.E(gridmind.KindInvalid, "", "text files add up to more than the %d byte limit", MaxLoadBytes)
		}
		text.Write(body)
		if len(body) > 0 && body[len(body)-1] != '\n' {
			text.WriteByte('\n')
		}
		used++
	}
	if used == 0 {
		return nil, gridmind.E(gridmind.KindInvalid, "", "no text files among %d files", len(files))
	}
	return text.Bytes(), nil
}

// isText accepts UTF-8 without NUL bytes, which rejects images, archives
// and compiled binaries while accepting source code and prose.
func isText(body []byte) bool {
	return bytes.IndexByte(body, 0) < 0 && utf8.Valid(body)
}
