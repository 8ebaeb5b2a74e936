package gridmind

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// protocolDoc is the wire-protocol document whose vectors and schemas the
// tests below hold to the code.
const protocolDoc = "docs/PROTOCOL.md"

func readProtocolDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatalf("reading %s: %v", protocolDoc, err)
	}
	return string(data)
}

// section returns the lines after the marker comment up to the end of the
// block that follows it (a fenced code block or a table).
func section(t *testing.T, doc, marker string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- "+marker+" -->")
	if !ok {
		t.Fatalf("%s has no <!-- %s --> block", protocolDoc, marker)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(rest))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started, fenced := false, false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !started && strings.TrimSpace(line) == "":
			continue
		case !started:
			started, fenced = true, strings.HasPrefix(line, "```")
			if fenced {
				continue
			}
		case fenced && strings.HasPrefix(line, "```"):
			return out
		case !fenced && strings.TrimSpace(line) == "":
			return out
		}
		out = append(out, line)
	}
	return out
}

// TestProtocolVector recomputes the document's envelope test vector from
// its key seed and fields: any change to the signing bytes, the JSON
// encoding or the identity derivation fails here (or the doc is wrong).
func TestProtocolVector(t *testing.T) {
	v := map[string]string{}
	for _, line := range section(t, readProtocolDoc(t), "vector:envelope") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("vector line %q is not `name: value`", line)
		}
		v[k] = strings.TrimSpace(val)
	}
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
	doc := readProtocolDoc(t)
	for name, typ := range map[string]reflect.Type{
		"Envelope":    reflect.TypeFor[Envelope](),
		"Heartbeat":   reflect.TypeFor[Heartbeat](),
		"Hardware":    reflect.TypeFor[Hardware](),
		"GPU":         reflect.TypeFor[GPU](),
		"EnergyState": reflect.TypeFor[EnergyState](),
		"ServedModel": reflect.TypeFor[ServedModel](),
	} {
		var documented []string
		for _, row := range section(t, doc, "schema:"+name) {
			cells := strings.Split(row, "|")
			if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "field" {
				continue
			}
			documented = append(documented, strings.Trim(strings.TrimSpace(cells[1]), "`"))
		}
		var fields []string
		var omitempty []string
		for f := range typ.Fields() {
			tag := f.Tag.Get("json")
			jsonName, opts, _ := strings.Cut(tag, ",")
			if jsonName == "-" || !f.IsExported() {
				continue
			}
			fields = append(fields, jsonName)
			if strings.Contains(opts, "omitempty") {
				omitempty = append(omitempty, jsonName)
			}
		}
		if !slices.Equal(documented, fields) {
			t.Errorf("schema %s: the doc lists %v, the code has %v", name, documented, fields)
			continue
		}
		// Optional fields are marked as such.
		for _, row := range section(t, doc, "schema:"+name) {
			for _, f := range omitempty {
				if strings.Contains(row, "`"+f+"`") && !strings.Contains(row, "omitempty") {
					t.Errorf("schema %s: field %s is omitempty in the code but not in the doc", name, f)
				}
			}
		}
	}
}

// TestProtocolDocMentions: the root package's constants appear in the
// document (app/TestProtocolIDsAreDocumented checks the other packages').
func TestProtocolDocMentions(t *testing.T) {
	doc := readProtocolDoc(t)
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
