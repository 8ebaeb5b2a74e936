package ledger

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gridmind/gridmind"
)

// The app hash covers each receipt's encoding/json bytes, so the
// hand-written encoder must write exactly those, for every shape a
// receipt takes (nil, empty and full lists; zero and extreme numbers) and
// must hand strings that need escaping back to encoding/json.
func TestReceiptJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	strs := []string{"", "job-1", "12D3KooWAbc", "a<b", "q\"uote", "back\\slash", "tab\t", "é", "\x7f", "&amp", "ok~"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	num := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MaxUint64
		default:
			return rng.Uint64N(1 << 40)
		}
	}
	ids := func() []gridmind.NodeID {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []gridmind.NodeID{}
		}
		out := make([]gridmind.NodeID, 1+rng.IntN(3))
		for i := range out {
			out[i] = gridmind.NodeID(str())
		}
		return out
	}
	fast := 0
	for i := 0; i < 5000; i++ {
		r := Receipt{Job: JobID(str()), Round: num(), Submitter: gridmind.NodeID(str()), Signers: ids(), Withheld: ids(),
			SubmittedHeight: int64(num() >> 1), Settled: rng.IntN(2) == 0, Pot: gridmind.Amount(num())}
		if rng.IntN(2) == 0 {
			r.SettledHeight = -int64(num() >> 2)
		} else {
			r.SettledHeight = int64(num() >> 1)
		}
		for k := range r.ModelHash {
			r.ModelHash[k] = byte(rng.IntN(256))
		}
		switch rng.IntN(3) {
		case 1:
			r.Participants = []Participation{}
		case 2:
			for range 1 + rng.IntN(4) {
				r.Participants = append(r.Participants, Participation{Node: gridmind.NodeID(str()), Work: num()})
			}
		}
		switch rng.IntN(3) {
		case 1:
			r.Payments = []Payment{}
		case 2:
			for range 1 + rng.IntN(4) {
				r.Payments = append(r.Payments, Payment{Node: gridmind.NodeID(str()), Amount: gridmind.Amount(num()), MultiplierPPM: num()})
			}
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalEntry(&r); !bytes.Equal(got, want) {
			t.Fatalf("receipt %+v:\n got %s\nwant %s", r, got, want)
		}
		if b, ok := appendReceiptJSON(nil, &r); ok {
			fast++
			if !bytes.Equal(b, want) {
				t.Fatalf("fast path of %+v:\n got %s\nwant %s", r, b, want)
			}
		}
	}
	if fast < 100 {
		t.Errorf("only %d of 5000 receipts took the fast path", fast)
	}
}

func benchReceipt() *Receipt {
	r := &Receipt{Job: "0123456789abcdef0123456789abcdef", Round: 42, Submitter: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
		SubmittedHeight: 123456, Settled: true, SettledHeight: 123466, Pot: 3_600_000}
	for i := range 5 {
		id := gridmind.NodeID("12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2X" + string(rune('a'+i)))
		r.Participants = append(r.Participants, Participation{Node: id, Work: 1000})
		r.Payments = append(r.Payments, Payment{Node: id, Amount: 700_000, MultiplierPPM: 1_000_000})
	}
	return r
}

func BenchmarkReceiptJSON(b *testing.B) {
	r := benchReceipt()
	b.ReportAllocs()
	for b.Loop() {
		marshalEntry(r)
	}
}

func BenchmarkReceiptEncodingJSON(b *testing.B) {
	r := benchReceipt()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}
