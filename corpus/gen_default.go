//go:build ignore

// gen_default builds data/gostd.txt.gz, the default training corpus, from
// the Go standard library source of the Go toolchain that runs it.
//
//	cd corpus && go run gen_default.go
//
// The package list is fixed and every directory's non-test .go files are
// read in lexical order, so two runs with the same Go release produce the
// same bytes. The gzip stream carries no name or time for the same reason.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// packages is chosen for variety (text processing, parsers, encoders,
// maths, concurrency) while staying a few MB; platform-specific packages
// such as os and net are left out so the text does not depend on GOOS.
var packages = []string{
	"bufio", "bytes", "container/heap", "container/list", "container/ring",
	"context", "encoding/base64", "encoding/binary", "encoding/csv",
	"encoding/hex", "encoding/json", "encoding/xml", "errors", "flag", "fmt",
	"go/ast", "go/format", "go/parser", "go/printer", "go/scanner", "go/token",
	"hash/crc32", "hash/fnv", "image", "image/color", "image/png", "io",
	"log", "maps", "math", "math/big", "math/bits", "mime", "path",
	"path/filepath", "regexp", "regexp/syntax", "slices", "sort", "strconv",
	"strings", "sync", "text/scanner", "text/tabwriter", "text/template",
	"text/template/parse", "time", "unicode/utf8", "compress/flate",
	"compress/gzip", "compress/zlib", "archive/tar", "go/doc", "go/build",
	"go/types", "encoding/gob",
}

func main() {
	src := filepath.Join(runtime.GOROOT(), "src")
	sorted := append([]string(nil), packages...)
	sort.Strings(sorted)
	var text bytes.Buffer
	files := 0
	for _, pkg := range sorted {
		matches, err := filepath.Glob(filepath.Join(src, filepath.FromSlash(pkg), "*.go"))
		if err != nil {
			log.Fatal(err)
		}
		sort.Strings(matches)
		for _, path := range matches {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			body, err := os.ReadFile(path)
			if err != nil {
				log.Fatal(err)
			}
			rel, _ := filepath.Rel(src, path)
			fmt.Fprintf(&text, "// ==> src/%s <==\n", filepath.ToSlash(rel))
			text.Write(body)
			if len(body) > 0 && body[len(body)-1] != '\n' {
				text.WriteByte('\n')
			}
			files++
		}
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		log.Fatal(err)
	}
	zw.Comment = runtime.Version()
	if _, err := zw.Write(text.Bytes()); err != nil {
		log.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("data", "gostd.txt.gz"), out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	license, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "LICENSE"))
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("data", "LICENSE-go"), license, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d files, %d bytes, %d gzipped\n", runtime.Version(), files, text.Len(), out.Len())
}
