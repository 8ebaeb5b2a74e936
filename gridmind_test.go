package gridmind

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestNodeIDRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		seed := make([]byte, ed25519.SeedSize)
		rng.Read(seed)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		id := NodeIDFromPublicKey(pub)
		if !strings.HasPrefix(string(id), "12D3KooW") {
			t.Fatalf("ed25519 peer ids start with 12D3KooW, got %s", id)
		}
		got, err := id.PublicKey()
		if err != nil || !bytes.Equal(got, pub) {
			t.Fatalf("round trip of %s: %v", id, err)
		}
	}
}

func TestNodeIDRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "0OIl", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", strings.Repeat("z", 500)} {
		if err := NodeID(s).Validate(); err == nil {
			t.Errorf("Validate(%q) accepted garbage", s)
		}
	}
}

func TestAmountParseAndString(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		str  string
	}{
		{"12", 12_000_000, "12 GRID"},
		{"12.5", 12_500_000, "12.5 GRID"},
		{"0.000001", 1, "0.000001 GRID"},
		{"3 GRID", 3_000_000, "3 GRID"},
		{"1500u", 1500, "0.0015 GRID"},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if got.String() != tt.str {
			t.Errorf("String(%d) = %q, want %q", got, got.String(), tt.str)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.2345678", "1.", "99999999999999999999"} {
		if _, err := ParseAmount(bad); err == nil {
			t.Errorf("ParseAmount(%q) accepted", bad)
		}
	}
	if _, ok := Amount(1 << 63).AddChecked(1 << 63); ok {
		t.Error("AddChecked missed an overflow")
	}
	if _, ok := Amount(1).SubChecked(2); ok {
		t.Error("SubChecked went negative")
	}
}

func TestEnvelope(t *testing.T) {
	key := testKey(1)
	now := time.Unix(1_700_000_000, 0)
	data, err := SignEnvelope(key, "heartbeat", 7, now, map[string]int{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	env, err := OpenEnvelope(data, now.Add(time.Second), 30*time.Second)
	if err != nil {
		t.Fatalf("valid envelope refused: %v", err)
	}
	if env.Seq != 7 || env.From != NodeIDFromPublicKey(key.Public().(ed25519.PublicKey)) {
		t.Fatalf("fields lost: %+v", env)
	}

	// Forged: a body changed after signing, and a message signed by another key under our name.
	tampered := bytes.Replace(data, []byte(`{"x":1}`), []byte(`{"x":2}`), 1)
	if _, err := OpenEnvelope(tampered, now, 30*time.Second); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: got %v, want ErrBadSignature", err)
	}
	other, _ := SignEnvelope(testKey(2), "heartbeat", 7, now, map[string]int{"x": 1})
	forged := bytes.Replace(other, []byte(NodeIDFromPublicKey(testKey(2).Public().(ed25519.PublicKey))), []byte(env.From), 1)
	if _, err := OpenEnvelope(forged, now, 30*time.Second); !errors.Is(err, ErrBadSignature) {
		t.Errorf("forged sender: got %v, want ErrBadSignature", err)
	}
	if _, err := OpenEnvelope(data, now.Add(time.Minute), 30*time.Second); !errors.Is(err, ErrStale) {
		t.Errorf("old envelope: got %v, want ErrStale", err)
	}
	for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"type":"x"}`), bytes.Repeat([]byte("a"), MaxEnvelopeBytes+1)} {
		if _, err := OpenEnvelope(junk, now, 30*time.Second); !errors.Is(err, ErrMalformed) {
			t.Errorf("junk %q: got %v, want ErrMalformed", shorten(string(junk)), err)
		}
	}
}

func FuzzOpenEnvelope(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	good, _ := SignEnvelope(testKey(1), "heartbeat", 1, now, Heartbeat{Version: "1"})
	f.Add(good)
	f.Add([]byte(`{"type":"heartbeat","from":"12D3KooW","seq":1,"time":0,"body":{},"sig":""}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := OpenEnvelope(data, now, 30*time.Second)
		if err == nil {
			var hb Heartbeat
			_ = env.Decode(&hb)
		}
	})
}

func TestErrorKinds(t *testing.T) {
	err := E(KindNotFound, "ledger", "account %s", "x")
	wrapped := E(KindOther, "cli", "query: %w", err)
	if KindOf(wrapped) != KindNotFound || ExitCode(wrapped) != 3 {
		t.Fatalf("kind lost through wrapping: %v %d", KindOf(wrapped), ExitCode(wrapped))
	}
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 {
		t.Fatal("plain errors map to 1, nil to 0")
	}
}
