package energy

import (
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

func TestParseProfile(t *testing.T) {
	for _, p := range Presets(12) {
		got, err := ParseProfile(p.Document())
		if err != nil || got != p {
			t.Fatalf("%s: %+v, %v", p.Name, got, err)
		}
		if got.Hash() != p.Hash() || len(p.Hash()) != 64 {
			t.Fatalf("hash %q", p.Hash())
		}
	}
	a, b := Presets(2)[0], Presets(2)[1]
	if a.Hash() == b.Hash() {
		t.Error("different profiles share a hash")
	}
	tests := []struct{ doc, want string }{
		{`{"zone":"GB","busy_w":100,"gpu":1}`, `unknown field "gpu"`},
		{`{"zone":"GB","busy_w":100} {}`, "trailing data"},
		{`{"zone":"XX","busy_w":100}`, `zone "XX"`},
		{`{"zone":"GB","busy_w":"lots"}`, "busy_w"},
		{`[`, "unexpected EOF"},
		{strings.Repeat(" ", MaxProfileBytes+1), "at most"},
	}
	for _, tt := range tests {
		_, err := ParseProfile([]byte(tt.doc))
		if gridmind.KindOf(err) != gridmind.KindInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseProfile(%.40q) = %v, want an invalid-input error containing %q", tt.doc, err, tt.want)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	f.Add(Presets(8)[5].Document())
	f.Add([]byte(`{"zone":"GB","busy_w":1e308,"idle_w":-0}`))
	f.Add([]byte(`{"zone":"AU-NSW","southern":true,"solar_peak_kw":5,"solar_trace":"almeria","busy_w":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile(data)
		if err != nil {
			return
		}
		// Anything accepted builds a site and round-trips unchanged.
		if _, err := NewSite(p); err != nil {
			t.Fatalf("accepted profile %s does not build: %v", data, err)
		}
		back, err := ParseProfile(p.Document())
		if err != nil || back != p {
			t.Fatalf("round trip of %s: %+v, %v", data, back, err)
		}
	})
}
