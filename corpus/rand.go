package corpus

import "math/bits"

// splitmix64 is Steele, Lea and Flood's generator: tiny, fast, and fully
// specified here so that shard and batch choices are the same bytes on
// every node and every Go release.
type splitmix64 struct{ state uint64 }

func (r *splitmix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a number in [0, n) for n > 0 by the multiply-high method;
// the bias (n/2^64) is far below anything training could notice.
func (r *splitmix64) below(n uint64) uint64 {
	hi, _ := bits.Mul64(r.next(), n)
	return hi
}
