package gridmind

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
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
		{" 50 ", 50_000_000, "50 GRID"},
		{"50GRID", 50_000_000, "50 GRID"},
		{"50 grid", 50_000_000, "50 GRID"},
		{"50u", 50, "0.00005 GRID"},
		{"50 u", 50, "0.00005 GRID"},
		{"50µGRID", 50, "0.00005 GRID"},
		{"50 µGRID", 50, "0.00005 GRID"},
		{"50 μGRID", 50, "0.00005 GRID"}, // Greek mu, not the micro sign
		{"50ugrid", 50, "0.00005 GRID"},
		{"50µ", 50, "0.00005 GRID"},
		{"0", 0, "0 GRID"},
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
	for _, bad := range []struct{ in, want string }{
		{"", "empty"},
		{"x", "not a number"},
		{"GRID", "not a number"},
		{"-1", "negative"},
		{"-5 GRID", "negative"},
		{"1.2345678", "at most six decimals"},
		{"1.", "a digit must follow the point"},
		{"1.2.3", "not a number"},
		{"1,000", "not a number"},
		{"5e3", "not a number"},
		{"99999999999999999999", "too large"},
		{"99999999999999999999u", "too large"},
		{"18446744073710 GRID", "too large"},
		{"12.5u", "µGRID are whole"},
		{"50 GRD", `unknown unit "GRD"`},
		{"50 mGRID", `unknown unit "mGRID"`},
		{"50 USD", `unknown unit "USD"`},
	} {
		_, err := ParseAmount(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseAmount(%q) = %v, want an error saying %q", bad.in, err, bad.want)
		}
	}
	if got := Amount(20).PerGFLOP(); got != "20 µGRID/GFLOP" {
		t.Errorf("PerGFLOP = %q", got)
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
	f.Add([]byte(`{"type":"heartbeat","from":"12D3KooW","seq":"1","time":0,"body":{},"sig":""}`))
	f.Add([]byte(`{"type":"heartbeat","from":"12D3KooW","seq":1,"time":0,"body":{},"sig":""}`))
	f.Add(bytes.Replace(good, []byte(`"body":`), []byte(`"extra":1,"body":`), 1))
	f.Add(append(bytes.Clone(good), []byte(` {}`)...))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := OpenEnvelope(data, now, 30*time.Second)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrStale) {
				t.Fatalf("error without a kind receivers count: %v", err)
			}
			return
		}
		// Whatever was accepted is exactly what its signer signed:
		// re-encoding it gives an envelope that opens to the same thing.
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		env2, err := OpenEnvelope(again, now, 30*time.Second)
		if err != nil || env2.Seq != env.Seq || env2.Type != env.Type || !bytes.Equal(env2.Sig, env.Sig) {
			t.Fatalf("accepted envelope does not survive re-encoding: %v", err)
		}
		var hb Heartbeat
		_ = env.Decode(&hb)
	})
}

// FuzzEnvelopeDecode: a body decodes strictly or fails with ErrMalformed,
// never a panic, and never with a field it does not know.
func FuzzEnvelopeDecode(f *testing.F) {
	for _, s := range []string{`{"version":"1"}`, `{"version":"1","evil":true}`, `{"version":"1"} {}`, `[]`, `null`, `{"addrs":["a"],"energy":{"solar_watts":1e308}}`, `{"hardware":{"gpus":[{"name":"x","extra":1}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env := &Envelope{Type: "heartbeat", Body: body}
		var hb Heartbeat
		err := env.Decode(&hb)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
		if err == nil && bytes.Contains(body, []byte(`"evil"`)) && !bytes.Contains(body, []byte(`\"evil`)) {
			var probe map[string]json.RawMessage
			if json.Unmarshal(body, &probe) == nil {
				if _, ok := probe["evil"]; ok {
					t.Fatalf("unknown field accepted: %s", body)
				}
			}
		}
	})
}

func TestEnvelopeIsStrict(t *testing.T) {
	key := testKey(1)
	now := time.Unix(1_700_000_000, 0)
	good, err := SignEnvelope(key, "heartbeat", 1, now, map[string]int{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"unknown field":   bytes.Replace(good, []byte(`"body":`), []byte(`"extra":1,"body":`), 1),
		"trailing data":   append(bytes.Clone(good), []byte(` {}`)...),
		"numeric seq":     bytes.Replace(good, []byte(`"seq":"1"`), []byte(`"seq":1`), 1),
		"seq not decimal": bytes.Replace(good, []byte(`"seq":"1"`), []byte(`"seq":"0x1"`), 1),
		"no body":         bytes.Replace(good, []byte(`"body":{"x":1},`), nil, 1),
		"two values":      append(append([]byte{}, good...), good...),
	}
	for name, data := range bad {
		if _, err := OpenEnvelope(data, now, 30*time.Second); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	env, err := OpenEnvelope(good, now, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Y int }
	if err := env.Decode(&v); !errors.Is(err, ErrMalformed) {
		t.Errorf("body with an unknown field decoded: %v", err)
	}
	var w struct{ X int }
	if err := env.Decode(&w); err != nil || w.X != 1 {
		t.Errorf("good body: %v %+v", err, w)
	}
	if err := (&Envelope{Body: []byte(`{"X":1} {"X":2}`)}).Decode(&w); !errors.Is(err, ErrMalformed) {
		t.Errorf("body with trailing data decoded: %v", err)
	}
}

// A sequence number above 2^53 (a nanosecond clock) survives a parser
// that reads every number as a double, as JavaScript's does: the envelope
// is re-serialised from generic values and still verifies.
func TestSeqSurvivesDoubleParsers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	seq := uint64(now.UnixNano()) + 1 // odd, above 2^53: not a double
	data, err := SignEnvelope(testKey(1), "heartbeat", seq, now, map[string]any{"x": 1, "s": "é"})
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any // numbers become float64
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	env, err := OpenEnvelope(again, now, 30*time.Second)
	if err != nil {
		t.Fatalf("re-serialised envelope refused: %v", err)
	}
	if env.Seq != seq {
		t.Fatalf("seq %d, want %d", env.Seq, seq)
	}
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
