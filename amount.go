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

// PerGFLOP prints a as a price per work unit, the one way every view shows
// a price: "20 µGRID/GFLOP" (a work unit is one GFLOP, WorkUnitFLOP).
func (a Amount) PerGFLOP() string { return fmt.Sprintf("%d µGRID/GFLOP", uint64(a)) }

// ParseAmount reads an amount the way every command, config file and job
// spec writes one: a bare number is GRID ("12", "12.5", "12.5GRID",
// "12.5 GRID"); a u or µ suffix means whole µGRID ("1500u", "1500 µGRID",
// "1500ugrid"). Negative amounts, unknown units and more than six decimals
// are errors that say so.
func ParseAmount(s string) (Amount, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("amount is empty; %s", amountForms)
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("amount %q is negative; amounts are 0 or more (%s)", s, amountForms)
	}
	end := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	number, unit := t, ""
	if end >= 0 {
		number, unit = t[:end], strings.TrimSpace(t[end:])
	}
	if number == "" {
		return 0, fmt.Errorf("amount %q is not a number; %s", s, amountForms)
	}
	switch strings.ToLower(unit) {
	case "", "grid":
		return parseGRID(s, number)
	case "u", "µ", "μ", "ugrid", "µgrid", "μgrid": // µ: the micro sign and the Greek mu
		v, err := strconv.ParseUint(number, 10, 64)
		if err != nil {
			if strings.Contains(number, ".") {
				return 0, fmt.Errorf("amount %q: µGRID are whole; write %s GRID for a fraction of a GRID or drop the decimals", s, number)
			}
			return 0, fmt.Errorf("amount %q: too large", s)
		}
		return Amount(v), nil
	}
	if r := []rune(unit)[0]; strings.ContainsAny(unit, "0123456789") || r != 'µ' && r != 'μ' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
		return 0, fmt.Errorf("amount %q is not a number; %s", s, amountForms)
	}
	return 0, fmt.Errorf("amount %q: unknown unit %q; %s", s, unit, amountForms)
}

// amountForms ends every ParseAmount error: what an amount looks like.
const amountForms = "write GRID as 12, 12.5 or 12.5 GRID, or µGRID as 1500u or 1500 µGRID"

// parseGRID reads a decimal number of GRID with at most six decimals.
func parseGRID(s, number string) (Amount, error) {
	whole, frac, hasFrac := strings.Cut(number, ".")
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		if whole == "" || strings.Contains(frac, ".") {
			return 0, fmt.Errorf("amount %q is not a number; %s", s, amountForms)
		}
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	if w > uint64(math.MaxUint64/UnitsPerGRID) {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	total := Amount(w) * UnitsPerGRID
	if !hasFrac {
		return total, nil
	}
	if len(frac) == 0 {
		return 0, fmt.Errorf("amount %q: a digit must follow the point", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("amount %q: at most six decimals (1 µGRID = 0.000001 GRID)", s)
	}
	f, err := strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is not a number; %s", s, amountForms)
	}
	total, ok := total.AddChecked(Amount(f))
	if !ok {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	return total, nil
}
