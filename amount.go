package gridmind

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is a quantity of the GRID token in its smallest unit (µGRID).
// Money is never a float: 1 GRID = 1,000,000 µGRID.
type Amount uint64

// UnitsPerGRID is the number of smallest units in one GRID.
const UnitsPerGRID Amount = 1_000_000

// AddChecked returns a+b, or false when the sum would overflow.
func (a Amount) AddChecked(b Amount) (Amount, bool) {
	if b > math.MaxUint64-a {
		return 0, false
	}
	return a + b, true
}

// SubChecked returns a-b, or false when b > a.
func (a Amount) SubChecked(b Amount) (Amount, bool) {
	if b > a {
		return 0, false
	}
	return a - b, true
}

// String prints the amount in GRID with up to six decimals ("12.5 GRID").
func (a Amount) String() string {
	whole := a / UnitsPerGRID
	frac := a % UnitsPerGRID
	if frac == 0 {
		return fmt.Sprintf("%d GRID", whole)
	}
	f := strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	return fmt.Sprintf("%d.%s GRID", whole, f)
}

// ParseAmount reads "12", "12.5", "12.5GRID", "12.5 GRID" (GRID) or
// "1500u" / "1500ugrid" (smallest units).
func ParseAmount(s string) (Amount, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	t = strings.TrimSpace(strings.TrimSuffix(t, "grid"))
	if strings.HasSuffix(t, "u") || strings.HasSuffix(t, "µ") {
		v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSuffix(t, "u"), "µ"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: want a whole number of µGRID", s)
		}
		return Amount(v), nil
	}
	whole, frac, hasFrac := strings.Cut(t, ".")
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: want a number of GRID such as 12 or 12.5", s)
	}
	if w > uint64(math.MaxUint64/UnitsPerGRID) {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	total := Amount(w) * UnitsPerGRID
	if hasFrac {
		if len(frac) == 0 || len(frac) > 6 {
			return 0, fmt.Errorf("amount %q: at most six decimals", s)
		}
		f, err := strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: bad decimals", s)
		}
		var ok bool
		if total, ok = total.AddChecked(Amount(f)); !ok {
			return 0, fmt.Errorf("amount %q: too large", s)
		}
	}
	return total, nil
}
