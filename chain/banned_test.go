package chain

import (
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

// TestBannedQuery: the ban list is a query path, empty on a chain where no
// inference fraud was proven (the ledger's tests cover what fills it).
func TestBannedQuery(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	h.block(h.tx("alice", 0, &ledger.Transfer{To: idOf(testKey("bob")), Amount: grid}))
	v, err := h.app.query(PathBanned, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := v.([]ledger.VerifyRecord); !ok || len(got) != 0 {
		t.Fatalf("banned %#v, want an empty list of records", v)
	}
}

// TestInferenceDrawQuery: a receipt that does not decode is a bad query;
// one whose beacon is not decided yet (no block later than it) is not
// found, so an auditor asks again later.
func TestInferenceDrawQuery(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	h.block()
	h.block()
	if _, err := h.app.query(PathInferenceDraw, []byte("not a receipt")); ledger.CodeOf(err) != ledger.CodeInvalid {
		t.Fatalf("garbage: %v, want invalid", err)
	}
	key := testKey("server")
	rc := verify.ServedReceipt{RequestID: "r", Model: "m", Server: idOf(key), Client: idOf(testKey("client")),
		TokensOut: 3, TimeMs: 4_000_000_000_000, Seed: 1}
	if err := rc.Sign(key); err != nil {
		t.Fatal(err)
	}
	_, err := h.app.query(PathInferenceDraw, rc.Encode())
	if ledger.CodeOf(err) != ledger.CodeNotFound || !strings.Contains(err.Error(), "not decided") {
		t.Fatalf("a receipt newer than every block: %v, want not found (not decided yet)", err)
	}
}
