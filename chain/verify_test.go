package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

// Points of small order and a non-canonical encoding: where ed25519
// implementations are known to disagree.
var edgeKeys = [][]byte{
	make([]byte, 32), // y = 0
	{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},                                                                                                 // identity
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // y = -1
	{0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // y = p+1, non-canonical
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}, // order 8
}

func TestFastVerifyMatchesStdlib(t *testing.T) {
	msg := []byte("gridmind")
	priv := testKey("verify")
	pub := priv.Public().(ed25519.PublicKey)
	good := ed25519.Sign(priv, msg)
	cases := []struct {
		name     string
		pub, sig []byte
	}{
		{"valid", pub, good},
		{"other message", pub, ed25519.Sign(priv, []byte("other"))},
		{"flipped bit", pub, flip(good, 10)},
		{"S not reduced", pub, addL(good)},
		{"short signature", pub, good[:63]},
	}
	for i, k := range edgeKeys {
		for j, s := range [][]byte{make([]byte, 64), append(append([]byte(nil), edgeKeys[(i+1)%len(edgeKeys)]...), make([]byte, 32)...), good} {
			cases = append(cases, struct {
				name     string
				pub, sig []byte
			}{name: "edge key " + string(rune('a'+i)) + string(rune('0'+j)), pub: k, sig: s})
		}
	}
	for _, c := range cases {
		want := ed25519.Verify(ed25519.PublicKey(c.pub), msg, c.sig)
		if got := FastVerify(ed25519.PublicKey(c.pub), msg, c.sig); got != want {
			t.Errorf("%s: FastVerify %v, crypto/ed25519 %v", c.name, got, want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// addL adds the group order to S (the last 32 bytes, little-endian): the
// same signature in non-canonical form, which both must refuse.
func addL(sig []byte) []byte {
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	c := append([]byte(nil), sig...)
	carry := 0
	for i := 0; i < 32; i++ {
		v := int(c[32+i]) + int(l[i]) + carry
		c[32+i] = byte(v)
		carry = v >> 8
	}
	return c
}

// FuzzFastVerify: on any key, message and signature, FastVerify agrees
// with crypto/ed25519 (a disagreement between validators would fork).
func FuzzFastVerify(f *testing.F) {
	priv := testKey("fuzz-verify")
	msg := []byte("message")
	f.Add([]byte(priv.Public().(ed25519.PublicKey)), msg, ed25519.Sign(priv, msg))
	for _, k := range edgeKeys {
		f.Add(k, msg, make([]byte, 64))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			h := sha256.Sum256(pub)
			pub = h[:]
		}
		want := len(sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
		if got := FastVerify(ed25519.PublicKey(pub), msg, sig); got != want {
			t.Fatalf("FastVerify %v, crypto/ed25519 %v", got, want)
		}
	})
}
