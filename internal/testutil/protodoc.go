package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// ProtocolDoc reads docs/PROTOCOL.md from the module root (found from the
// test's directory), for tests that hold the document to the code.
func ProtocolDoc(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			data, err := os.ReadFile(filepath.Join(dir, "docs", "PROTOCOL.md"))
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// DocSection returns the lines after the marker comment <!-- marker --> up
// to the end of the block that follows it: a fenced code block (without
// its fences) or a table.
func DocSection(t testing.TB, doc, marker string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+marker+" -->")
	if !ok {
		t.Fatalf("docs/PROTOCOL.md has no <!-- %s --> block", marker)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(rest))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started, fenced := false, false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !started && strings.TrimSpace(line) == "":
			continue
		case !started:
			started, fenced = true, strings.HasPrefix(line, "```")
			if fenced {
				continue
			}
		case fenced && strings.HasPrefix(line, "```"):
			return out
		case !fenced && strings.TrimSpace(line) == "":
			return out
		}
		out = append(out, line)
	}
	return out
}

// DocVector reads a test vector block of `name: value` lines.
func DocVector(t testing.TB, doc, marker string) map[string]string {
	t.Helper()
	v := map[string]string{}
	for _, line := range DocSection(t, doc, marker) {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: line %q is not `name: value`", marker, line)
		}
		v[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return v
}

// CheckSchema fails t unless the table after <!-- schema:name --> lists
// exactly the JSON fields of typ, in order (the fields of an embedded
// struct in its place, as encoding/json flattens them), and marks the
// omitempty fields, and only those, *omitempty* in its type column.
func CheckSchema(t testing.TB, doc, name string, typ reflect.Type) {
	t.Helper()
	var documented []string
	optional := map[string]bool{}
	for _, row := range DocSection(t, doc, "schema:"+name) {
		cells := strings.Split(row, "|")
		if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "field" {
			continue
		}
		field := strings.Trim(strings.TrimSpace(cells[1]), "`")
		documented = append(documented, field)
		optional[field] = strings.Contains(cells[2], "omitempty")
	}
	fields, omitempty := jsonFields(typ)
	if !slices.Equal(documented, fields) {
		t.Errorf("schema %s: the doc lists %v, the code (%s) has %v", name, documented, typ, fields)
		return
	}
	for _, f := range fields {
		if want := slices.Contains(omitempty, f); optional[f] != want {
			t.Errorf("schema %s: field %s is omitempty in the code: %v, in the doc: %v", name, f, want, optional[f])
		}
	}
}

func jsonFields(typ reflect.Type) (fields, omitempty []string) {
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			inner, innerOmit := jsonFields(f.Type)
			fields, omitempty = append(fields, inner...), append(omitempty, innerOmit...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, name)
		if strings.Contains(opts, "omitempty") {
			omitempty = append(omitempty, name)
		}
	}
	return fields, omitempty
}
