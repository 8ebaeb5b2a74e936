package ledger

import (
	"fmt"
	"strconv"
)

// appendPadded appends n as fmt's "%020d" writes it, without fmt: every
// block builds the keys of its beacon, unbonding and held queues, every
// receipt its own, and fmt.Sprintf was most of that.
func appendPadded(b []byte, n uint64) []byte {
	var digits [20]byte
	for i := range digits {
		digits[i] = '0'
	}
	s := strconv.AppendUint(digits[:0:20], n, 10)
	pad := 20 - len(s)
	if pad <= 0 {
		return append(b, s...)
	}
	b = append(b, "00000000000000000000"[:pad]...)
	return append(b, s...)
}

// heightKey is prefix and a height in 20 zero-padded digits, the form of
// the keys ordered by height (beacons, unbonding and held queues).
func heightKey(prefix string, h int64) string {
	if h < 0 { // no such key is ever stored; keep fmt's form for it anyway
		return fmt.Sprintf("%s%020d", prefix, h)
	}
	b := make([]byte, 0, len(prefix)+20)
	return string(appendPadded(append(b, prefix...), uint64(h)))
}
