package ledger

import (
	"crypto/ed25519"
	"testing"

	"github.com/gridmind/gridmind"
)

// fuzzState is a chain with a running job: two leased providers, round 0
// receipted, so every transaction type has something to act on.
func fuzzState(t testing.TB) (*harness, JobID) {
	h := jobHarness(t.(*testing.T), Options{})
	h.t = t
	job := h.postJob(gridmind.JobSpec{Name: "j", Workers: 3, Rounds: 4, Budget: 40 * grid})
	h.must("req", h.lease(job, "req", "p1", 0))
	h.must("req", h.lease(job, "req", "p2", 0))
	h.must("req", receipt(job, 0, h.id("p1"), h.id("p2")))
	return h, job
}

var fuzzSigners = []string{"req", "p1", "p2", "p3", "judge"}

// FuzzApplyTx signs arbitrary bodies of every type with real keys (so
// they pass the signature check and reach the handlers) and applies them
// to a state with a job in flight: nothing may panic, nothing may be an
// internal error, a refusal changes nothing (the harness checks), the
// supply invariant holds afterwards, and the blocks after it (held rounds
// settling by themselves) begin without error.
func FuzzApplyTx(f *testing.F) {
	h, job := fuzzState(&testing.T{})
	p1, p2 := h.id("p1"), h.id("p2")
	seeds := []struct {
		signer byte
		body   Body
	}{
		{0, receipt(job, 1, p1, p2)},
		{1, h.signed(receipt(job, 1, p1), "p1", "p2")},
		{0, &SettleRound{Job: job, Round: 0}},
		{2, &CloseJob{Job: job}},
		{0, &CancelJob{Job: job}},
		{4, &Dispute{Job: job, Round: 0, Offender: p1, Evidence: []byte("x")}},
		{0, h.lease(job, "req", "p3", 1)},
		{1, &AttestUptime{Epoch: 0, Observations: []Observation{{Node: p2, Seen: 1, Expected: 2}}}},
		{0, &PostJob{Spec: gridmind.JobSpec{Workers: 1, Rounds: 1, Budget: 1}, Size: testSize}},
		{0, &Transfer{To: p1, Amount: 1}},
		{4, &RoundEvidence{Evidence: h.equivocation(job, 0, "p1")}},
		{3, &RoundEvidence{Evidence: h.equivocation(job, 1, "p2")}},
	}
	for _, s := range seeds {
		e := encoder{}
		s.body.encode(&e)
		f.Add(s.signer, byte(s.body.Type()), e.buf)
	}
	f.Fuzz(func(t *testing.T, signer, typ byte, body []byte) {
		h, _ := fuzzState(t)
		name := fuzzSigners[int(signer)%len(fuzzSigners)]
		key := h.key(name)
		e := encoder{}
		e.byte1(wireVersion)
		e.byte1(typ)
		e.str(testChain)
		e.fixed(key.Public().(ed25519.PublicKey))
		e.uvarint(h.nonces[h.id(name)])
		e.fixed(body)
		raw := append(e.buf, ed25519.Sign(key, signingBytes(e.buf))...)
		h.begin("")
		r := h.applyRaw(raw) // fails the test on an internal error or a refusal that changed state
		_ = r
		if err := h.fork.CheckInvariant(); err != nil {
			t.Fatal(err)
		}
		h.end()
		// Run past every dispute window: whatever the transaction left to
		// settle by itself (held rounds of an ended job) must settle
		// without breaking a block.
		h.emptyBlocks(int(h.state().Params().SettleDelayBlocks) + 1)
	})
}
