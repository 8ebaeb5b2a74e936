package corpus

import (
	"unicode/utf8"
)

// The vocabulary is fixed so that a model trained on one corpus can read
// any other text: id 0 is Unknown (any character outside the set; it also
// pads short prompts), 1 is tab, 2 is newline, and 3..97 are the printable
// ASCII characters ' ' through '~' in order. Carriage returns are dropped
// so CRLF text encodes like LF text.
const (
	Unknown   int32 = 0
	Tab       int32 = 1
	Newline   int32 = 2
	VocabSize       = 3 + ('~' - ' ' + 1) // 98
)

// unknownText is what Decode writes for the Unknown id.
const unknownText = "\uFFFD"

// tokenOf maps a rune to its id; ok is false for carriage returns, which
// are skipped.
func tokenOf(r rune) (id int32, ok bool) {
	switch {
	case r == '\r':
		return 0, false
	case r == '\t':
		return Tab, true
	case r == '\n':
		return Newline, true
	case r >= ' ' && r <= '~':
		return 3 + r - ' ', true
	default:
		return Unknown, true
	}
}

// encodeBytes encodes text into compact ids (every id fits a byte).
// Invalid UTF-8 decodes as one RuneError per bad byte, i.e. one Unknown.
func encodeBytes(text []byte) []uint8 {
	out := make([]uint8, 0, len(text))
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		text = text[size:]
		if id, ok := tokenOf(r); ok {
			out = append(out, uint8(id))
		}
	}
	return out
}

// Encode maps text to token ids, one per character (rune).
func Encode(text string) []int32 {
	out := make([]int32, 0, len(text))
	for _, r := range text {
		if id, ok := tokenOf(r); ok {
			out = append(out, id)
		}
	}
	return out
}

// DecodeToken returns the text of one id; ids outside the vocabulary read
// as Unknown.
func DecodeToken(id int32) string {
	switch {
	case id == Tab:
		return "\t"
	case id == Newline:
		return "\n"
	case id >= 3 && id < VocabSize:
		return string(rune(' ' + id - 3))
	default:
		return unknownText
	}
}

// Decode maps ids back to text. Decode(Encode(s)) == s for text made of
// tab, newline and printable ASCII.
func Decode(ids []int32) string {
	buf := make([]byte, 0, len(ids))
	for _, id := range ids {
		buf = append(buf, DecodeToken(id)...)
	}
	return string(buf)
}
