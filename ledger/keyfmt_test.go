package ledger

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// The keys fix the order of entries in the app hash, so the fast
// formatting must write exactly what fmt wrote.
func TestKeysMatchFmt(t *testing.T) {
	heights := []int64{-7, 0, 1, 9, 10, 86400, 1 << 40, math.MaxInt64}
	for _, h := range heights {
		if got, want := beaconKey(h), fmt.Sprintf("%s%020d", prefixBeacon, h); got != want {
			t.Errorf("beaconKey(%d) = %q, want %q", h, got, want)
		}
		if got, want := unbondKey(h), fmt.Sprintf("%s%020d", prefixUnbond, h); got != want {
			t.Errorf("unbondKey(%d) = %q, want %q", h, got, want)
		}
		if got, want := heldKey(h), fmt.Sprintf("%s%020d", prefixHeld, h); got != want {
			t.Errorf("heldKey(%d) = %q, want %q", h, got, want)
		}
	}
	for _, r := range []uint64{0, 1, 12345, math.MaxInt64, math.MaxUint64} {
		if got, want := receiptKey("job-x", r), fmt.Sprintf("%s%s/%020d", prefixReceipt, "job-x", r); got != want {
			t.Errorf("receiptKey(%d) = %q, want %q", r, got, want)
		}
	}
}

// Reading an entry by node id builds its key on the stack: the sim reads
// every idle node's reputation each step, and production every
// participant's at settlement.
func TestLookupDoesNotAllocate(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 10 * grid})
	fork := h.base.Fork()
	id := h.id("alice")
	fork.setReputation(Reputation{Node: id, RoundsFinished: 3})
	if got := fork.Reputation(id).RoundsFinished; got != 3 {
		t.Fatalf("reputation read back %d rounds, want 3", got)
	}
	if n := testing.AllocsPerRun(100, func() { fork.Reputation(id) }); n != 0 {
		t.Errorf("Reputation allocates %.0f times a read, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { fork.Reputation(h.id("nobody")) }); n != 0 {
		t.Errorf("Reputation of an unknown node allocates %.0f times, want 0", n)
	}
}

// A fork that spans many blocks (the sim commits once a simulated day)
// keeps only the beacons still in a dispute window, lists no deletion of
// a beacon it added and dropped itself, and commits to the hash it
// reported.
func TestLongForkDropsItsOwnBeacons(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 10 * grid})
	long := h.base.Fork()
	for height := int64(1); height <= 40; height++ {
		if _, err := long.BeginBlock(height, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range long.Changes() {
		if strings.HasPrefix(c.Key, prefixBeacon) && c.Value == nil {
			t.Errorf("the fork lists the deletion of %s, which it added itself", c.Key)
		}
	}
	want := long.Hash()
	if err := h.base.Commit(long); err != nil {
		t.Fatal(err)
	}
	if got := h.base.Hash(); got != want {
		t.Fatalf("hash after commit %s, fork said %s", got, want)
	}
	var heights []int64
	for _, e := range h.base.Entries() {
		if strings.HasPrefix(e.Key, prefixBeacon) {
			var r VerifyRecord
			if err := strictUnmarshal(e.Value, &r); err != nil {
				t.Fatal(err)
			}
			heights = append(heights, r.Height)
		}
	}
	keep := DefaultParams().SettleDelayBlocks + 1
	if int64(len(heights)) != keep || heights[0] != 40-keep+1 {
		t.Errorf("beacons of heights %v kept, want the last %d", heights, keep)
	}
	if _, ok := h.base.AuditBeacon(38); !ok {
		t.Error("the beacon of block 39 is gone")
	}
}
