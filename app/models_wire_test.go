package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/gomlx"
)

func TestReadModelHeader(t *testing.T) {
	good, err := json.Marshal(modelHeader{Hash: "ab", Config: gomlx.Config{}, Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, input string
		ok          bool
	}{
		{"header then checkpoint", string(good) + "\nCHECKPOINT", true},
		{"no newline", string(good), false},
		{"endless line", strings.Repeat("x", maxModelHeaderBytes+10) + "\n", false},
		{"unknown field", `{"hash":"ab","size":1,"extra":1}` + "\n", false},
		{"trailing value", `{"hash":"ab","size":1} {}` + "\n", false},
		{"holder's error", `{"hash":"ab","size":0,"error":"model not held here"}` + "\n", false},
		{"zero size", `{"hash":"ab","size":0}` + "\n", false},
		{"size over the bound", `{"hash":"ab","size":268435457}` + "\n", false},
		{"negative size", `{"hash":"ab","size":-1}` + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tt.input), 4096)
			hdr, err := readModelHeader(r)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok {
				rest := new(bytes.Buffer)
				_, _ = rest.ReadFrom(r)
				if hdr.Size != 1000 || rest.String() != "CHECKPOINT" {
					t.Errorf("header %+v, then %q", hdr, rest)
				}
			}
		})
	}
}

// FuzzModelHeader: whatever a holder sends, the header reader never
// panics, never reads more than its bound, and accepts only a size the
// checkpoint bound allows.
func FuzzModelHeader(f *testing.F) {
	good, _ := json.Marshal(modelHeader{Hash: "ab", Size: 10})
	f.Add(append(good, '\n'))
	f.Add([]byte(`{"hash":"ab","size":0,"error":"model not held here"}` + "\n"))
	f.Add([]byte("{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		hdr, err := readModelHeader(bufio.NewReaderSize(src, 4096))
		if err != nil {
			return
		}
		if hdr.Size <= 0 || hdr.Size > maxModelBytes || hdr.Error != "" {
			t.Fatalf("accepted header %+v", hdr)
		}
		if consumed := len(data) - src.Len(); consumed > maxModelHeaderBytes+4096 {
			t.Fatalf("read %d bytes for a header", consumed)
		}
	})
}
