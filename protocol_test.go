package gridmind

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/internal/testutil"
)

// protocolDoc is the wire-protocol document whose vectors and schemas the
// tests below hold to the code.
const protocolDoc = "docs/PROTOCOL.md"

func TestProtocolVector(t *testing.T) {
	v := testutil.DocVector(t, testutil.ProtocolDoc(t), "vector:envelope")
	seed, err := hex.DecodeString(v["seed"])
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("seed %q: %v", v["seed"], err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	check := func(name, got string) {
		t.Helper()
		if want := v[name]; got != want {
			t.Errorf("%s:\n got  %s\n doc  %s", name, got, want)
		}
	}
	check("public key", hex.EncodeToString(pub))
	check("peer id bytes", hex.EncodeToString(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, pub...)))
	check("node id", string(NodeIDFromPublicKey(pub)))
	seq, err := strconv.ParseUint(v["seq"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(v["time"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	data, err := SignEnvelope(key, v["type"], seq, time.UnixMilli(ms), json.RawMessage(v["body"]))
	if err != nil {
		t.Fatal(err)
	}
	check("envelope", string(data))
	env, err := OpenEnvelope([]byte(v["envelope"]), time.UnixMilli(ms), time.Second)
	if err != nil {
		t.Fatalf("the doc's envelope does not open: %v", err)
	}
	check("signing bytes", hex.EncodeToString(env.signingBytes()))
	check("signature", hex.EncodeToString(env.Sig))
	if !ed25519.Verify(pub, mustHex(t, v["signing bytes"]), mustHex(t, v["signature"])) {
		t.Error("the doc's signature does not verify over the doc's signing bytes")
	}
	var hb Heartbeat
	if err := env.Decode(&hb); err != nil {
		t.Errorf("the vector's body is not a strict heartbeat: %v", err)
	}
	if uint64(float64(seq)) == seq {
		t.Error("the vector's seq is exactly representable as a double; it should show why seq is a string")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProtocolSchemas: each schema table lists exactly the JSON fields of
// the Go type it names, in order.
func TestProtocolSchemas(t *testing.T) {
	doc := testutil.ProtocolDoc(t)
	for name, typ := range map[string]reflect.Type{
		"Envelope":    reflect.TypeFor[Envelope](),
		"Heartbeat":   reflect.TypeFor[Heartbeat](),
		"Hardware":    reflect.TypeFor[Hardware](),
		"GPU":         reflect.TypeFor[GPU](),
		"EnergyState": reflect.TypeFor[EnergyState](),
		"ServedModel": reflect.TypeFor[ServedModel](),
	} {
		testutil.CheckSchema(t, doc, name, typ)
	}
}

// TestProtocolDocMentions: the root package's constants appear in the
// document (app/TestProtocolIDsAreDocumented checks the other packages').
func TestProtocolDocMentions(t *testing.T) {
	doc := testutil.ProtocolDoc(t)
	for _, s := range []string{envelopeDomain, "/gridmind/presence/1.0.0", strconv.Itoa(MaxEnvelopeBytes / 1024 * 1024)} {
		if !strings.Contains(doc, s) && !strings.Contains(doc, thousands(s)) {
			t.Errorf("%s does not mention %q", protocolDoc, s)
		}
	}
	if !bytes.Contains([]byte(doc), []byte("`seq` | **string**")) {
		t.Error("the doc does not say seq is a string")
	}
}

// thousands writes a decimal string with comma separators, as the doc does.
func thousands(s string) string {
	if _, err := strconv.Atoi(s); err != nil || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
