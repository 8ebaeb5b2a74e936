package ledger

import (
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/gridmind/gridmind"
)

// appendReceiptJSON appends r as encoding/json writes it (the canonical
// form the app hash covers), without reflection: receipts are most of
// what a block changes, and json.Marshal of them was the largest part of
// Changes. It reports false, having appended nothing, when a string needs
// JSON escaping (only well-formed ids are ever stored; the caller then
// uses encoding/json). TestReceiptJSONMatchesEncodingJSON holds the two
// to the same bytes.
func appendReceiptJSON(b []byte, r *Receipt) ([]byte, bool) {
	// Check every string and size the output in one pass: ids are most of
	// the bytes, and each brings at most 60 of field names and numbers.
	n := 256 + len(r.Job) + len(r.Submitter)
	ok := plainJSON(string(r.Job)) && plainJSON(string(r.Submitter))
	for _, p := range r.Participants {
		n += 40 + len(p.Node)
		ok = ok && plainJSON(string(p.Node))
	}
	for _, p := range r.Payments {
		n += 80 + len(p.Node)
		ok = ok && plainJSON(string(p.Node))
	}
	for _, list := range [2][]gridmind.NodeID{r.Signers, r.Withheld} {
		for _, id := range list {
			n += 3 + len(id)
			ok = ok && plainJSON(string(id))
		}
	}
	if !ok {
		return b, false
	}
	b = slices.Grow(b, n)
	b = append(b, `{"job":"`...)
	b = append(b, r.Job...)
	b = append(b, `","round":`...)
	b = strconv.AppendUint(b, r.Round, 10)
	b = append(b, `,"model_hash":"`...)
	b = hex.AppendEncode(b, r.ModelHash[:])
	b = append(b, `","participants":`...)
	if r.Participants == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range r.Participants {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"node":"`...)
			b = append(b, p.Node...)
			b = append(b, `","work":`...)
			b = strconv.AppendUint(b, p.Work, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"submitter":"`...)
	b = append(b, r.Submitter...)
	b = append(b, '"')
	b = appendIDList(b, `,"signers":`, r.Signers)
	b = appendIDList(b, `,"withheld":`, r.Withheld)
	b = append(b, `,"submitted_height":`...)
	b = strconv.AppendInt(b, r.SubmittedHeight, 10)
	b = append(b, `,"settled":`...)
	b = strconv.AppendBool(b, r.Settled)
	if r.SettledHeight != 0 {
		b = append(b, `,"settled_height":`...)
		b = strconv.AppendInt(b, r.SettledHeight, 10)
	}
	if r.Pot != 0 {
		b = append(b, `,"pot":`...)
		b = strconv.AppendUint(b, uint64(r.Pot), 10)
	}
	if len(r.Payments) > 0 {
		b = append(b, `,"payments":[`...)
		for i, p := range r.Payments {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"node":"`...)
			b = append(b, p.Node...)
			b = append(b, `","amount":`...)
			b = strconv.AppendUint(b, uint64(p.Amount), 10)
			b = append(b, `,"multiplier_ppm":`...)
			b = strconv.AppendUint(b, p.MultiplierPPM, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendIDList appends an omitempty list of ids under name.
func appendIDList(b []byte, name string, ids []gridmind.NodeID) []byte {
	if len(ids) == 0 {
		return b
	}
	b = append(b, name...)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"')
	}
	return append(b, ']')
}

// plainJSON reports whether encoding/json writes s between quotes as it
// is: printable ASCII without the characters it escapes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
