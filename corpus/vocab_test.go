package corpus

import (
	"slices"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name, text string
		ids        []int32
		back       string
	}{
		{"empty", "", []int32{}, ""},
		{"ascii", "a Z~", []int32{3 + 'a' - ' ', 3, 3 + 'Z' - ' ', 97}, "a Z~"},
		{"tab newline", "\tx\n", []int32{Tab, 3 + 'x' - ' ', Newline}, "\tx\n"},
		{"crlf drops cr", "a\r\nb", []int32{3 + 'a' - ' ', Newline, 3 + 'b' - ' '}, "a\nb"},
		{"non-ascii rune is one unknown", "é", []int32{Unknown}, "\uFFFD"},
		{"control char is unknown", "\x01", []int32{Unknown}, "\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Encode(tt.text)
			if !slices.Equal(got, tt.ids) {
				t.Fatalf("Encode(%q) = %v, want %v", tt.text, got, tt.ids)
			}
			if back := Decode(got); back != tt.back {
				t.Fatalf("Decode = %q, want %q", back, tt.back)
			}
			fromBytes := encodeBytes([]byte(tt.text))
			for i, id := range fromBytes {
				if int32(id) != got[i] {
					t.Fatalf("encodeBytes differs from Encode at %d: %d vs %d", i, id, got[i])
				}
			}
		})
	}
}

func TestVocabularyCoversPrintableASCII(t *testing.T) {
	if VocabSize != 98 {
		t.Fatalf("VocabSize = %d, want 98", VocabSize)
	}
	seen := map[int32]bool{}
	for r := rune(' '); r <= '~'; r++ {
		ids := Encode(string(r))
		if len(ids) != 1 || ids[0] < 3 || ids[0] >= VocabSize || seen[ids[0]] {
			t.Fatalf("rune %q encodes to %v", r, ids)
		}
		seen[ids[0]] = true
		if Decode(ids) != string(r) {
			t.Fatalf("rune %q does not round-trip", r)
		}
	}
	for _, id := range []int32{-1, VocabSize, 1000} {
		if DecodeToken(id) != unknownText {
			t.Errorf("DecodeToken(%d) = %q, want the unknown marker", id, DecodeToken(id))
		}
	}
}

func TestInvalidUTF8IsUnknownPerByte(t *testing.T) {
	got := encodeBytes([]byte{'a', 0xff, 0xfe, 'b'})
	want := []uint8{3 + 'a' - ' ', 0, 0, 3 + 'b' - ' '}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
