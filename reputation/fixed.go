package reputation

import (
	"math/bits"
)

// Fixed-point helpers. Everything here is integer arithmetic so the
// results are the same bytes on every machine.

// q32One is 1.0 in Q32 fixed point.
const q32One = uint64(1) << 32

// halvingRoots[i] is 2^(-2^-(i+1)) in Q32: 2^-1/2, 2^-1/4, 2^-1/8, ...
// Each is the integer square root of the previous one scaled by 2^32, so
// the table is derived by integer arithmetic alone rather than copied in.
var halvingRoots = func() [fracBits]uint64 {
	var t [fracBits]uint64
	prev := q32One / 2 // 2^-1
	for i := range t {
		prev = isqrt(prev << 32)
		t[i] = prev
	}
	return t
}()

// fracBits is the precision of the fractional part of an exponent: 2^-30
// of a half-life, far below one block for any sensible half-life.
const fracBits = 30

// isqrt is floor(sqrt(x)) by bisection; used only to build halvingRoots.
func isqrt(x uint64) uint64 {
	lo, hi := uint64(0), uint64(1)<<32
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if hi2, lo2 := bits.Mul64(mid, mid); hi2 == 0 && lo2 <= x {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// pow2Neg returns 2^(-num/den) in Q32 for 0 <= num < den, from the binary
// expansion of num/den: each 1 bit at position i multiplies by 2^(-2^-i).
func pow2Neg(num, den uint64) uint64 {
	f := q32One
	for i := 0; i < fracBits && num != 0; i++ {
		num <<= 1
		if num >= den {
			num -= den
			f = mulQ32(f, halvingRoots[i])
		}
	}
	return f
}

// mulQ32 is v * f / 2^32 without overflow (f <= 2^32, so the result fits).
func mulQ32(v, f uint64) uint64 {
	hi, lo := bits.Mul64(v, f)
	return hi<<32 | lo>>32
}

// decay returns v after elapsed blocks of exponential decay with the given
// half-life; a zero half-life means no decay.
func decay(v, elapsed, halfLife uint64) uint64 {
	if v == 0 || elapsed == 0 || halfLife == 0 {
		return v
	}
	whole := elapsed / halfLife
	if whole >= 64 {
		return 0
	}
	v >>= whole
	return mulQ32(v, pow2Neg(elapsed%halfLife, halfLife))
}

// mulDiv is a*b/d rounded down, saturating at MaxUint64, 0 when d is 0.
func mulDiv(a, b, d uint64) uint64 {
	if d == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return maxUint64
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}

// addSat is a+b saturating at MaxUint64: evidence can never wrap around.
func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return maxUint64
	}
	return s
}

const maxUint64 = ^uint64(0)
