package diloco

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/internal/testutil"
)

// TestProtocolDocTraining: the training body's schema and the stream
// vector in docs/PROTOCOL.md match the code.
func TestProtocolDocTraining(t *testing.T) {
	doc := testutil.ProtocolDoc(t)
	testutil.CheckSchema(t, doc, "TrainBody", reflect.TypeFor[controlBody]())
	if !strings.Contains(doc, "| `"+envelopeType+"` |") {
		t.Errorf("envelope type %q is not in the topic table", envelopeType)
	}
	v := testutil.DocVector(t, doc, "vector:train-stream")
	payload, err := hex.DecodeString(v["payload"])
	if err != nil {
		t.Fatal(err)
	}
	tr := &P2PTransport{job: v["job"]}
	var stream bytes.Buffer
	if err := tr.writeHeader(&stream); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&stream, payload); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(stream.Bytes()); got != v["stream bytes"] {
		t.Errorf("stream bytes:\n got %s\n doc %s", got, v["stream bytes"])
	}
}
