package gridmind

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// bigBase58Decode is the math/big decoder base58Decode replaced, kept as
// the reference it must agree with.
func bigBase58Decode(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > 128 {
		return nil, errBase58
	}
	n := new(big.Int)
	zeros := 0
	for zeros < len(s) && s[zeros] == base58Alphabet[0] {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		v := base58Index[s[i]]
		if v < 0 {
			return nil, errBase58
		}
		n.Mul(n, big.NewInt(58))
		n.Add(n, big.NewInt(int64(v)))
	}
	body := n.Bytes()
	out := make([]byte, zeros+len(body))
	copy(out[zeros:], body)
	return out, nil
}

func TestBase58DecodeMatchesBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", "1", "11", "z", strings.Repeat("z", 128), strings.Repeat("z", 129), strings.Repeat("1", 128), "0", "1O", "abcI"}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for range rng.IntN(130) {
			switch rng.IntN(20) {
			case 0:
				b.WriteByte('1')
			case 1:
				b.WriteByte(byte(rng.IntN(256))) // mostly not base58
			default:
				b.WriteByte(base58Alphabet[rng.IntN(58)])
			}
		}
		inputs = append(inputs, b.String())
	}
	for i := 0; i < 2000; i++ { // real node ids and their round trip
		raw := make([]byte, 1+rng.IntN(90))
		for k := range raw {
			raw[k] = byte(rng.IntN(256))
		}
		if rng.IntN(4) == 0 {
			raw[0] = 0
		}
		inputs = append(inputs, base58Encode(raw))
	}
	for _, in := range inputs {
		got, err := base58Decode(in)
		want, werr := bigBase58Decode(in)
		if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("base58Decode(%q) = %x, %v; want %x, %v", in, got, err, want, werr)
		}
		if err == nil && len(in) <= 100 && base58Encode(got) != in {
			t.Fatalf("base58Encode(base58Decode(%q)) = %q", in, base58Encode(got))
		}
	}
}

func BenchmarkNodeIDPublicKey(b *testing.B) {
	id := NodeIDFromPublicKey(bytes.Repeat([]byte{7}, 32))
	for b.Loop() {
		if _, err := id.PublicKey(); err != nil {
			b.Fatal(err)
		}
	}
}
