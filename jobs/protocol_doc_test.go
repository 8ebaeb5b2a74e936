package jobs

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

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/testutil"
)

// TestProtocolDocJobSchemas: the job and audit messages in
// docs/PROTOCOL.md list exactly the Go types' JSON fields, and every
// envelope type the job plane sends is documented.
func TestProtocolDocJobSchemas(t *testing.T) {
	doc := testutil.ProtocolDoc(t)
	for name, typ := range map[string]reflect.Type{
		"Announce":     reflect.TypeFor[Announce](),
		"JobSpec":      reflect.TypeFor[gridmind.JobSpec](),
		"ModelConfig":  reflect.TypeFor[gomlx.Config](),
		"Join":         reflect.TypeFor[Join](),
		"LeaseRequest": reflect.TypeFor[LeaseRequest](),
		"Resend":       reflect.TypeFor[Resend](),
		"Report":       reflect.TypeFor[Report](),
		"ReceiptSig":   reflect.TypeFor[ReceiptSig](),
		"JobAck":       reflect.TypeFor[ack](),
		"AuditFetch":   reflect.TypeFor[AuditFetch](),
		"AuditCheck":   reflect.TypeFor[AuditCheck](),
	} {
		testutil.CheckSchema(t, doc, name, typ)
	}
	for _, typ := range []string{typeAnnounce, typeJoin, typeLease, typeResend, typeReport, typeReceiptSig, typeAck, typeAuditFetch, typeAuditCheck} {
		if !strings.Contains(doc, "`"+typ+"`") {
			t.Errorf("envelope type %s is not in docs/PROTOCOL.md", typ)
		}
	}
	if !strings.Contains(doc, "`"+ProtocolAudit+"`") {
		t.Errorf("%s is not in docs/PROTOCOL.md", ProtocolAudit)
	}
	if !strings.Contains(doc, "| "+thousands(maxFrame)+" (one envelope) |") {
		t.Errorf("the job frame bound %d is not in §3.1's table", maxFrame)
	}
}

// TestProtocolDocJobFrame recomputes the job-frame vector: the envelope
// from the fixed key and fields, and its frame on the job protocol.
func TestProtocolDocJobFrame(t *testing.T) {
	v := testutil.DocVector(t, testutil.ProtocolDoc(t), "vector:job-frame")
	seed, err := hex.DecodeString(v["seed"])
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("seed %q: %v", v["seed"], err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	seq, err := strconv.ParseUint(v["seq"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.ParseInt(v["time"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if v["type"] != typeJoin {
		t.Fatalf("the vector is a %s, the test knows %s", v["type"], typeJoin)
	}
	var body Join
	if err := json.Unmarshal([]byte(v["body"]), &body); err != nil {
		t.Fatal(err)
	}
	data, err := gridmind.SignEnvelope(key, typeJoin, seq, time.UnixMilli(ms), body)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != v["envelope"] {
		t.Errorf("envelope:\n got %s\n doc %s", data, v["envelope"])
	}
	var frame bytes.Buffer
	if err := writeFrame(&frame, []byte(v["envelope"])); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(frame.Bytes()[:4]); got != v["frame header"] {
		t.Errorf("frame header: got %s, doc %s", got, v["frame header"])
	}
	// And a receiver takes the documented bytes as a join.
	got, err := readFrame(&frame)
	if err != nil {
		t.Fatal(err)
	}
	env, err := gridmind.OpenEnvelope(got, time.UnixMilli(ms), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var j Join
	if err := decodeStrict(env, &j); err != nil || j != body {
		t.Errorf("the vector's body decodes to %+v (%v)", j, err)
	}
}

// thousands writes n with comma separators, as the doc does.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
