package ledger

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestAdversaryEarnsNoMoreThanItsShare runs many seeded jobs in which an
// honest requester receipts and settles rounds while one of its leased
// providers ("adv") and that provider's sybil (staked, never leased by the
// honest requester) send every transaction their keys can sign, in any
// order: receipts of rounds they did not do (alone, ahead, with each
// other's signatures, with an honest worker's co-signature over another
// round or another contributor list), early settlements, early closes and
// cancels, leases of honest providers onto a job of their own (with forged
// or replayed acceptances), uptime for each other in epochs of their
// choosing, disputes, forged training evidence against an honest worker,
// transfers. The honest workers co-sign each round's
// receipt as the requester plans it, as jobs/ does, and the adversary may
// relay those. In some seeds the job has a deadline, so the adversary may
// close it the moment it passes; in some rounds adv cheats and the
// chain's slasher files evidence inside the round's dispute window.
//
// After every block the supply invariant holds (the harness checks it).
// At the end: the job ended with its whole escrow accounted for; the
// adversary's keys together hold no more than they started with plus the
// honest share of the rounds the requester named adv in and no evidence
// was filed against; no round with evidence paid adv anything; the honest
// providers were never leased by the adversary, never recorded as failing
// a round, never slashed; adv's uptime weight stays under the cap.
func TestAdversaryEarnsNoMoreThanItsShare(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 40
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { adversarialJob(t, seed) })
	}
}

// adversary is the state of one adversarial run.
type adversary struct {
	h                        *harness
	rng                      *rand.Rand
	adv, sybil, h1, h2       gridmind.NodeID
	honestJob, ownJob        JobID                        // ownJob: the first job adv posted
	ownJobs                  []JobID                      // every job either key posted
	plan                     map[uint64][]gridmind.NodeID // round → contributors the requester will name
	lastCosigned             *SubmitReceipt               // an honest co-signed receipt of an earlier round
	honestLeaseAcceptance    []byte                       // h1's acceptance of the honest job
	honestLeaseAcceptanceTop int64                        // its ValidUntil
}

func adversarialJob(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	p := DefaultParams()
	p.SettleDelayBlocks = 2
	p.MaxIdleBlocks = 12
	p.EpochBlocks = 3
	p.Slashers = []gridmind.NodeID{idOf(testKey("judge"))}
	h := newHarness(t, p, Options{}, map[string]gridmind.Amount{
		"req": 1000 * grid, "h1": 100 * grid, "h2": 100 * grid, "adv": 100 * grid, "sybil": 100 * grid, "judge": grid,
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
	now := int64(1_000)
	nextBlock := func() { now++; h.beginAt(now) }
	nextBlock()
	for _, n := range []string{"h1", "h2", "adv", "sybil"} {
		for _, b := range []Body{&Stake{Amount: 20 * grid}, &RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 1}}} {
			if r := sendCounted(n, b); r.Code != CodeOK {
				t.Fatalf("%s: %s", n, r.Log)
			}
		}
	}
	h.end()
	a := &adversary{h: h, rng: rng, adv: h.id("adv"), sybil: h.id("sybil"), h1: h.id("h1"), h2: h.id("h2"), plan: map[uint64][]gridmind.NodeID{}}
	// What the adversary's keys hold, escrow of their own jobs included.
	holdings := func() gridmind.Amount {
		var sum gridmind.Amount
		for _, n := range []string{"adv", "sybil"} {
			acct := h.state().Account(h.id(n))
			sum += acct.Balance + acct.Stake + acct.UnbondingTotal
		}
		for _, id := range a.ownJobs {
			j, _ := h.state().Job(id)
			sum += j.Escrow
		}
		return sum + fees["adv"] + fees["sybil"]
	}
	start := holdings()
	const rounds = 6
	spec := gridmind.JobSpec{Name: "j", Workers: 3, Rounds: rounds, Budget: 60 * grid}
	deadline := rng.IntN(2) == 0
	if deadline { // the job may run out of time half way
		spec.DeadlineUnix = now + 8 + int64(rng.IntN(20))
	}
	nextBlock()
	jobRes := send("req", &PostJob{Spec: spec, Size: testSize})
	if jobRes.Code != CodeOK {
		t.Fatal(jobRes.Log)
	}
	job := JobID(jobRes.Data)
	a.honestJob = job
	for _, n := range []string{"h1", "h2", "adv"} {
		l := h.lease(job, "req", n, 0)
		if n == "h1" {
			a.honestLeaseAcceptance, a.honestLeaseAcceptanceTop = l.Acceptance, l.ValidUntil
		}
		if r := send("req", l); r.Code != CodeOK {
			t.Fatalf("lease %s: %s", n, r.Log)
		}
	}
	h.end()

	named := map[uint64]int{}       // round → contributors, when adv was one
	cheated := map[uint64]bool{}    // rounds in which adv cheats
	disputed := map[uint64]bool{}   // rounds the slasher filed evidence for
	receiptAt := map[uint64]int64{} // round → height of its receipt
	for block := 0; block < 200; block++ {
		nextBlock()
		j, _ := h.state().Job(job)
		if !j.Open() && len(j.Pending) == 0 {
			h.end()
			break
		}
		// The requester plans the next round's contributors before the
		// block, and the honest workers co-sign that plan.
		if next := j.NextRound(); j.Open() && next < rounds && a.plan[next] == nil {
			contributors := []gridmind.NodeID{a.h1, a.h2}
			if rng.IntN(2) == 0 {
				contributors = append(contributors, a.adv)
				cheated[next] = rng.IntN(3) == 0
			}
			slices.Sort(contributors)
			a.plan[next] = contributors
		}
		// The adversary moves first in the block. Once the deadline has
		// passed it is keen to close the job, before evidence lands.
		if deadline && now >= spec.DeadlineUnix && rng.IntN(2) == 0 {
			sendCounted("adv", &CloseJob{Job: job})
		}
		for n := rng.IntN(4); n > 0; n-- {
			who, other := "adv", a.sybil
			if rng.IntN(2) == 0 {
				who, other = "sybil", a.adv
			}
			r := sendCounted(who, a.body(j, other))
			if pj, ok := r.jobPosted(); ok {
				a.ownJobs = append(a.ownJobs, pj)
				if who == "adv" && a.ownJob == "" {
					a.ownJob = pj
				}
			}
			j, _ = h.state().Job(job)
		}
		// The slasher files evidence for a round adv cheated in, inside
		// its window (the block after its receipt).
		for round, at := range receiptAt {
			if cheated[round] && !disputed[round] && at < h.height {
				// A proof withholds the offender's pay in every round of the
				// job still in its window, so a later round may already be.
				r := send("judge", &Dispute{Job: job, Round: round, Offender: a.adv, Evidence: []byte(fmt.Sprintf("round %d", round))})
				if rc, _ := h.state().Receipt(job, round); r.Code != CodeOK && !(r.Code == CodeConflict && slices.Contains(rc.Withheld, a.adv)) {
					t.Fatalf("evidence against round %d filed at height %d (receipt at %d): %s", round, h.height, at, r.Log)
				}
				disputed[round] = true
			}
		}
		j, _ = h.state().Job(job)
		switch next := j.NextRound(); {
		case len(j.Pending) > 0:
			send("req", &SettleRound{Job: job, Round: j.Pending[0]}) // may wait for its window
		case j.Open() && next < rounds:
			if r := send("req", receipt(job, next, a.plan[next]...)); r.Code != CodeOK {
				t.Fatalf("honest receipt of round %d: %s", next, r.Log)
			}
		}
		// Note the rounds receipted in this block, whoever sent them.
		for _, r := range h.state().Receipts(job) {
			if _, seen := receiptAt[r.Round]; seen {
				continue
			}
			receiptAt[r.Round] = r.SubmittedHeight
			var got []gridmind.NodeID
			for _, p := range r.Participants {
				got = append(got, p.Node)
			}
			if !slices.Equal(got, a.plan[r.Round]) {
				t.Fatalf("round %d receipted with %v, the requester planned %v", r.Round, got, a.plan[r.Round])
			}
			if slices.Contains(got, a.adv) {
				named[r.Round] = len(got)
			}
		}
		h.end()
	}
	j, _ := h.state().Job(job)
	switch {
	case j.Open() || len(j.Pending) > 0 || j.Escrow != 0:
		t.Fatalf("job not finished after 200 blocks: %+v", j)
	case j.State != JobCompleted && !(deadline && j.State == JobExpired):
		t.Fatalf("job ended %s (deadline %v)", j.State, deadline)
	}
	var honestShare gridmind.Amount
	for round, n := range named { // sums commute: the order does not matter
		if !disputed[round] {
			honestShare += 10 * grid / gridmind.Amount(n)
		}
	}
	if gain := holdings() - start; holdings() > start+honestShare {
		t.Fatalf("adversary gained %s, its honest share is %s", gain, honestShare)
	}
	for round := range disputed {
		r, _ := h.state().Receipt(job, round)
		for _, pay := range r.Payments {
			if pay.Node == a.adv && pay.Amount != 0 {
				t.Fatalf("adv was paid %s for round %d despite the evidence filed in its window", pay.Amount, round)
			}
		}
	}
	for _, victim := range []gridmind.NodeID{a.h1, a.h2} {
		if rep := h.state().Reputation(victim); rep.RoundsFailed != 0 || rep.Slashes != 0 {
			t.Fatalf("honest provider %s: %d failed rounds, %d slashes", victim.Short(), rep.RoundsFailed, rep.Slashes)
		}
		if a.ownJob != "" {
			if own, _ := h.state().Job(a.ownJob); own.activeLease(victim) || slices.ContainsFunc(own.Leases, func(l Lease) bool { return l.Provider == victim }) {
				t.Fatalf("the adversary leased honest provider %s without its consent", victim.Short())
			}
		}
	}
	if r := h.state().Reputation(a.adv); r.UptimeWeight > p.UptimeWeightCap {
		t.Fatalf("adversary's uptime weight %d exceeds the cap", r.UptimeWeight)
	}
}

// jobPosted returns the id of the job a PostJob result created.
func (r TxResult) jobPosted() (JobID, bool) {
	if r.Code != CodeOK || len(r.Data) == 0 {
		return "", false
	}
	id := JobID(r.Data)
	return id, id.validate() == nil
}

// body is one transaction the adversary might try. other is the
// adversary's key that is not sending.
func (a *adversary) body(j Job, other gridmind.NodeID) Body {
	h, rng := a.h, a.rng
	next := j.NextRound()
	plan := a.plan[next] // nil until the requester plans the round
	switch rng.IntN(18) {
	case 0:
		return receipt(j.ID, next+uint64(rng.IntN(3)), a.adv)
	case 1:
		return h.signed(receipt(j.ID, next, a.adv), "adv")
	case 2:
		return h.signed(receipt(j.ID, next, a.adv), "adv", "sybil")
	case 3:
		round := next
		if len(j.Pending) > 0 {
			round = j.Pending[rng.IntN(len(j.Pending))]
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
		return &Dispute{Job: j.ID, Round: next - min(next, 1), Offender: a.h1, Evidence: []byte("lies")}
	case 9:
		return &Transfer{To: other, Amount: 1 + gridmind.Amount(rng.IntN(3))*grid}
	case 10:
		if plan == nil { // the honest workers sign nothing they were not asked to
			return &Unstake{Amount: grid}
		}
		// The planned receipt with an honest worker's co-signature and
		// its own: a legitimate relay of what the workers agreed.
		r := h.signed(receipt(j.ID, next, plan...), "adv", "h1")
		a.lastCosigned = r
		return r
	case 11:
		if plan == nil {
			return &Unstake{Amount: grid}
		}
		// An honest co-signature over the plan, carried on a receipt that
		// drops the other honest worker and keeps adv.
		forged := h.signed(receipt(j.ID, next, a.adv, a.h1), "adv", "h1")
		forged.Signatures = h.signed(receipt(j.ID, next, plan...), "adv", "h1").Signatures
		return forged
	case 12:
		// An honest co-signature of an earlier round, replayed.
		if a.lastCosigned == nil {
			return &Unstake{Amount: grid}
		}
		replay := *a.lastCosigned
		replay.Round = next
		return &replay
	case 13:
		if a.ownJob == "" {
			return &PostJob{Spec: gridmind.JobSpec{Name: "bait", Workers: 2, Rounds: 2, Budget: 4 * grid}, Size: testSize}
		}
		// Lease an honest provider onto its own job with an acceptance it
		// forged, or with the one the provider gave the honest requester.
		l := &AssignLease{Job: a.ownJob, Provider: a.h1, ValidUntil: a.honestLeaseAcceptanceTop, Acceptance: a.honestLeaseAcceptance}
		if rng.IntN(2) == 0 {
			l.Acceptance = SignLeaseAcceptance(h.key("adv"), testChain, a.ownJob, a.adv, 0, l.ValidUntil)
		}
		return l
	case 14:
		if a.ownJob == "" {
			return &Unstake{Amount: grid}
		}
		// Receipt its own job's round naming an honest provider (to mark
		// it failed, or pay it nothing), or its sybil.
		own, _ := h.state().Job(a.ownJob)
		names := [][]gridmind.NodeID{{a.h1}, {a.sybil}, {a.h1, a.sybil}}[rng.IntN(3)]
		return receipt(a.ownJob, own.NextRound(), names...)
	case 15:
		if a.ownJob == "" {
			return &Unstake{Amount: grid}
		}
		return h.lease(a.ownJob, "adv", "sybil", 0)
	case 16:
		// Training evidence framing an honest worker: headers the
		// adversary signed itself, passed off as h1's.
		ev := h.equivocation(j.ID, next-min(next, 1), "adv")
		ev.Offender, ev.A.Reducer, ev.B.Reducer = a.h1, a.h1, a.h1
		return &RoundEvidence{Evidence: ev}
	}
	return &Unstake{Amount: grid}
}
