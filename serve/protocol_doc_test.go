package serve

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testutil"
)

// TestProtocolDocInferSchemas: the inference messages in docs/PROTOCOL.md
// list exactly the Go types' JSON fields.
func TestProtocolDocInferSchemas(t *testing.T) {
	doc := testutil.ProtocolDoc(t)
	for name, typ := range map[string]reflect.Type{
		"InferMessage": reflect.TypeFor[Message](),
		"InferRequest": reflect.TypeFor[WireRequest](),
		"InferDone":    reflect.TypeFor[WireDone](),
		"InferError":   reflect.TypeFor[WireError](),
		"Receipt":      reflect.TypeFor[Receipt](),
	} {
		testutil.CheckSchema(t, doc, name, typ)
	}
}

// TestProtocolDocReceiptVector recomputes the receipt vector from its two
// fixed keys: the request hash, the output hash, the signing bytes, both
// signatures, the receipt's JSON, and one message's frame.
func TestProtocolDocReceiptVector(t *testing.T) {
	v := testutil.DocVector(t, testutil.ProtocolDoc(t), "vector:receipt")
	key := func(name string) ed25519.PrivateKey {
		seed, err := hex.DecodeString(v[name])
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("%s %q: %v", name, v[name], err)
		}
		return ed25519.NewKeyFromSeed(seed)
	}
	skey, ckey := key("server seed"), key("client seed")
	id := func(k ed25519.PrivateKey) gridmind.NodeID {
		return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
	}
	check := func(name, got string) {
		t.Helper()
		if want := v[name]; got != want {
			t.Errorf("%s:\n got  %s\n doc  %s", name, got, want)
		}
	}
	check("client id", string(id(ckey)))
	var req WireRequest
	if err := gridmind.DecodeStrict([]byte(v["request"]), &req); err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("the vector's request is not valid on the wire: %v", err)
	}
	check("request hash", RequestHash(req))
	var output string
	if err := json.Unmarshal([]byte(v["output"]), &output); err != nil {
		t.Fatal(err)
	}
	check("output hash", OutputHash(output))
	r := Receipt{RequestID: req.ID, Model: req.Model, Server: id(skey), Client: id(ckey), TokensIn: 5, TokensOut: 8,
		TimeMs: 1733471000000, RequestHash: RequestHash(req), Seed: req.Seed, OutputHash: OutputHash(output)}
	if err := r.SignServer(skey); err != nil {
		t.Fatal(err)
	}
	if err := r.SignClient(ckey); err != nil {
		t.Fatal(err)
	}
	check("server signing", hex.EncodeToString(r.signingBytes("server")))
	check("server sig", hex.EncodeToString(r.ServerSig))
	check("client sig", hex.EncodeToString(r.ClientSig))
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	check("receipt", string(got))
	// The doc's receipt, as a client in another language would read it,
	// verifies; the client's signing bytes are the server's with its role.
	var doc Receipt
	if err := gridmind.DecodeStrict([]byte(v["receipt"]), &doc); err != nil {
		t.Fatal(err)
	}
	if err := doc.Verify(); err != nil {
		t.Errorf("the doc's receipt does not verify: %v", err)
	}
	server := hex.EncodeToString(r.signingBytes("server"))
	client := hex.EncodeToString(r.signingBytes("client"))
	if want := bytes.Replace([]byte(server), []byte("00000006736572766572"), []byte("00000006636c69656e74"), 1); string(want) != client {
		t.Error("the client's signing bytes are not the server's with the role client")
	}
	var frame bytes.Buffer
	if err := WriteMessage(&frame, &Message{Type: MsgToken, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	check("token frame", hex.EncodeToString(frame.Bytes()))
}
