package chain

import (
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
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
