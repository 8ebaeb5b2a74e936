package ledger

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestAdversaryEarnsNoMoreThanItsShare runs many seeded jobs in which an
// honest requester receipts and settles rounds while one of its leased
// providers ("adv") and that provider's sybil (staked, never leased) send
// every transaction their keys can sign, in any order: receipts of rounds
// they did not do (alone, ahead, with each other's signatures), early
// settlements, early closes and cancels, leases, uptime for each other in
// epochs of their choosing, disputes, transfers. After every block the
// supply invariant holds (the harness checks it); at the end the
// adversary's two keys together hold no more than they started with plus
// the honest share of the rounds the requester named adv in, and the job
// completed with every other µGRID back with the requester or paid to the
// honest providers.
func TestAdversaryEarnsNoMoreThanItsShare(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { adversarialJob(t, seed) })
	}
}

func adversarialJob(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := DefaultParams()
	p.SettleDelayBlocks = 2
	p.MaxIdleBlocks = 12
	p.EpochBlocks = 3
	p.Slashers = nil
	h := newHarness(t, p, Options{}, map[string]gridmind.Amount{
		"req": 1000 * grid, "h1": 100 * grid, "h2": 100 * grid, "adv": 100 * grid, "sybil": 100 * grid,
	})
	send := func(name string, body Body) TxResult {
		r := h.applyRaw(h.sign(name, body))
		if r.Code == CodeOK {
			h.nonces[h.id(name)]++
		}
		return r
	}
	fees := map[string]gridmind.Amount{}
	sendCounted := func(name string, body Body) TxResult {
		r := send(name, body)
		if r.Code == CodeOK {
			fees[name] += p.TxFee
		}
		return r
	}
	h.begin("")
	for _, n := range []string{"h1", "h2", "adv", "sybil"} {
		for _, b := range []Body{&Stake{Amount: 20 * grid}, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 1}}} {
			if r := sendCounted(n, b); r.Code != CodeOK {
				t.Fatalf("%s: %s", n, r.Log)
			}
		}
	}
	h.end()
	holdings := func() gridmind.Amount {
		var sum gridmind.Amount
		for _, n := range []string{"adv", "sybil"} {
			a := h.state().Account(h.id(n))
			sum += a.Balance + a.Stake + a.UnbondingTotal
		}
		return sum + fees["adv"] + fees["sybil"]
	}
	start := holdings()
	const rounds = 6
	h.begin("")
	jobRes := send("req", &PostJob{Spec: gridmind.JobSpec{Name: "j", Workers: 3, Rounds: rounds, Budget: 60 * grid}, Size: testSize})
	if jobRes.Code != CodeOK {
		t.Fatal(jobRes.Log)
	}
	job := JobID(jobRes.Data)
	for _, n := range []string{"h1", "h2", "adv"} {
		if r := send("req", h.lease(job, "req", n, 0)); r.Code != CodeOK {
			t.Fatalf("lease %s: %s", n, r.Log)
		}
	}
	h.end()
	adv, sybil, h1, h2 := h.id("adv"), h.id("sybil"), h.id("h1"), h.id("h2")
	var honestShare gridmind.Amount
	named := map[uint64]int{} // round → contributors, when adv was one

	for block := 0; block < 200; block++ {
		h.begin("")
		j, _ := h.state().Job(job)
		if !j.Open() {
			h.end()
			break
		}
		// The adversary moves first in the block, then the requester.
		for n := rng.IntN(4); n > 0; n-- {
			who, other := "adv", sybil
			if rng.IntN(2) == 0 {
				who, other = "sybil", adv
			}
			sendCounted(who, adversaryBody(h, rng, j, adv, other, h1))
		}
		j, _ = h.state().Job(job)
		if !j.Open() {
			h.end()
			break
		}
		if len(j.Pending) > 0 {
			send("req", &SettleRound{Job: job, Round: j.Pending[0]}) // may wait for its window
		} else if next := j.NextRound(); next < rounds {
			contributors := []gridmind.NodeID{h1, h2}
			if rng.IntN(2) == 0 {
				contributors = append(contributors, adv)
				named[next] = len(contributors)
			}
			if r := send("req", receipt(job, next, contributors...)); r.Code != CodeOK {
				t.Fatalf("honest receipt of round %d: %s", next, r.Log)
			}
		}
		h.end()
	}
	j, _ := h.state().Job(job)
	if j.State != JobCompleted {
		t.Fatalf("job is %s after 200 blocks: %+v", j.State, j)
	}
	for _, n := range named { // sums commute: the order does not matter
		honestShare += 10 * grid / gridmind.Amount(n)
	}
	if gain := holdings() - start; holdings() > start+honestShare {
		t.Fatalf("adversary gained %s, its honest share is %s", gain, honestShare)
	}
	if r := h.state().Reputation(adv); r.UptimeWeight > p.UptimeWeightCap {
		t.Fatalf("adversary's uptime weight %d exceeds the cap", r.UptimeWeight)
	}
}

// adversaryBody is one transaction the adversary might try.
// other is the adversary's key that is not sending.
func adversaryBody(h *harness, rng *rand.Rand, j Job, adv, other, victim gridmind.NodeID) Body {
	next := j.NextRound()
	switch rng.IntN(11) {
	case 0:
		return receipt(j.ID, next+uint64(rng.IntN(3)), adv)
	case 1:
		return h.signed(receipt(j.ID, next, adv), "adv")
	case 2:
		return h.signed(receipt(j.ID, next, adv), "adv", "sybil")
	case 3:
		round := next
		if len(j.Pending) > 0 {
			round = j.Pending[0]
		}
		return &SettleRound{Job: j.ID, Round: round}
	case 4:
		return &CloseJob{Job: j.ID}
	case 5:
		return &CancelJob{Job: j.ID}
	case 6:
		return h.lease(j.ID, "adv", "sybil", next)
	case 7:
		return &AttestUptime{Epoch: rng.Uint64N(4) + h.fork.Epoch() - min(h.fork.Epoch(), 1), Observations: []Observation{{Node: other, Seen: 10, Expected: 10}}}
	case 8:
		return &Dispute{Job: j.ID, Round: next - min(next, 1), Offender: victim, Evidence: []byte("lies")}
	case 9:
		return &Transfer{To: other, Amount: 1 + gridmind.Amount(rng.IntN(3))*grid}
	}
	return &Unstake{Amount: grid}
}
