package corpus

// This is the only file of the package that touches the operating system:
// it reads the user's --data FILE|DIR. Everything after the bytes are in
// memory is pure.

import (
	"os"

	"github.com/gridmind/gridmind"
)

// Load reads the user's training text from a file or, recursively, from
// every text file under a directory. A directory's files are read in
// lexical path order so every node builds the same corpus; hidden files
// and directories (".git") are skipped, and so are files that are not
// UTF-8 text (or contain NUL bytes). A named file that is not text is an
// error rather than skipped.
func Load(p string) (*Corpus, error) {
	const op = "corpus.load"
	info, err := os.Stat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, gridmind.E(gridmind.KindNotFound, op, "no such file or directory: %s", p)
		}
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	if !info.IsDir() {
		if info.Size() > MaxLoadBytes {
			return nil, gridmind.E(gridmind.KindInvalid, op, "%s is %d bytes, more than the %d byte limit", p, info.Size(), MaxLoadBytes)
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
		}
		if !isText(body) {
			return nil, gridmind.E(gridmind.KindInvalid, op, "%s is not UTF-8 text", p)
		}
		return FromText(p, body)
	}
	return loadFS(op, os.DirFS(p), p)
}
