package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
	"github.com/gridmind/gridmind/train"
	"github.com/gridmind/gridmind/verify"
)

// AuditReport is the verification part of the story: the cheater the demo
// planted, what the auditors found, and what the ledger did about it.
type AuditReport struct {
	Cheater    gridmind.NodeID `json:"cheater,omitempty"`
	Shirk      int             `json:"shirk_steps,omitempty"` // inner steps it skipped per round (its Δ scaled up to hide it)
	RatePPM    uint64          `json:"rate_ppm"`              // share of rounds spot-checked
	SpotChecks int             `json:"spot_checks"`           // rounds re-executed by their committee's first member
	Cleared    int             `json:"cleared"`               // honest rounds reproduced bit for bit
	Mismatches int             `json:"mismatches"`            // re-executions that did not reproduce the commitment
	// HonestMismatches of them were of an honest worker's round (none,
	// when re-execution is bitwise deterministic).
	HonestMismatches int `json:"honest_mismatches"`
	// The first fraud proof accepted by the ledger.
	ProvenRound   uint64          `json:"proven_round,omitempty"`
	ProofHeight   int64           `json:"proof_height,omitempty"`
	Agreeing      int             `json:"agreeing,omitempty"`       // auditors whose results proved it
	Committee     int             `json:"committee,omitempty"`      // of a committee this large
	ReceiptHeight int64           `json:"receipt_height,omitempty"` // the proven round's receipt
	ProofSeconds  float64         `json:"proof_seconds,omitempty"`  // spot check started → proof committed
	Slashed       gridmind.Amount `json:"slashed,omitempty"`        // taken from the cheater's stake
	StakeAfter    gridmind.Amount `json:"stake_after"`
	Excluded      bool            `json:"excluded"`                 // its lease on the job ended by the proof
	ScreenCaught  bool            `json:"screen_caught"`            // the reducers' screen rejected it (the demo's cheat is built to pass)
	AuditorReward gridmind.Amount `json:"auditor_reward,omitempty"` // the agreeing auditors' share of the slash
}

// plantCheater makes round 0's leader shirk: it trains half the inner
// steps and scales its Δ up, a cheat the reducers' screen lets through
// (its update points the right way and has the right size) but a
// re-execution does not reproduce. Being ready first, the cheater as
// leader waits a share of its own training time for the others; an honest
// leader still training round 0 has no such time yet and waits only the
// protocol's minimum, which on a loaded machine left every honest worker
// out of round 0. (The crash candidate is the last honest participant.)
func (s *story) plantCheater(p *market.Placement) {
	if s.o.NoCheat || len(p.Chosen) == 0 {
		return
	}
	active := p.Chosen[:min(s.o.Workers, len(p.Chosen))]
	cheater := train.LeaderOf(slices.Sorted(slices.Values(active)), 0, 0)
	for _, prov := range s.net.Providers {
		if prov != nil && prov.Node.ID() == cheater {
			prov.Provider.SetShirk(s.o.InnerSteps / 2)
			s.rep.Audit.Cheater, s.rep.Audit.Shirk = cheater, s.o.InnerSteps/2
			fmt.Fprintf(s.out, "  ☠ %s is a cheater: it trains %d of its %d inner steps and scales its Δ up to look like a full round (the reducers' screen cannot tell)\n",
				s.name(cheater), s.o.InnerSteps-s.rep.Audit.Shirk, s.o.InnerSteps)
			return
		}
	}
}

// audit tells an audit's steps as they happen.
func (s *story) audit(e jobs.AuditEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.rep.Audit
	first := !e.Member // the spot check, not a member's re-run
	switch e.Kind {
	case jobs.AuditCleared:
		if first {
			a.SpotChecks++
			a.Cleared++
			if a.Cleared == 1 {
				fmt.Fprintf(s.out, "  🔍 audit: %s re-ran %s's round %d from its committed state (%s): bit-for-bit equal, cleared\n",
					s.name(e.Auditor), s.name(e.Worker), e.Round, e.Took.Round(time.Millisecond))
			}
		}
	case jobs.AuditMismatch:
		a.Mismatches++
		if e.Worker != a.Cheater {
			a.HonestMismatches++
		}
		if first {
			a.SpotChecks++
			fmt.Fprintf(s.out, "  🔍 audit: %s re-ran %s's round %d: its commitment does not reproduce; asking the rest of the committee (%d)\n",
				s.name(e.Auditor), s.name(e.Worker), e.Round, len(e.Committee))
		}
	case jobs.AuditProven:
		if a.ProofHeight != 0 {
			return
		}
		a.ProvenRound, a.ProofHeight, a.Agreeing, a.Committee = e.Round, e.Height, e.Agreeing, len(e.Committee)
		a.ReceiptHeight, a.ProofSeconds = e.ReceiptHeight, e.Elapsed.Seconds()
		fmt.Fprintf(s.out, "  ⚖ fraud proof on the ledger at height %d (the round's receipt: %d; %.1fs from the spot check's start): %d of %d auditors reproduced the same other output for %s's round %d; the ledger judged it without running a model\n",
			e.Height, e.ReceiptHeight, a.ProofSeconds, e.Agreeing, len(e.Committee), s.name(e.Worker), e.Round)
	case jobs.AuditFailed:
		why := e.Text
		if i := strings.IndexAny(why, "\n"); i >= 0 {
			why = why[:i]
		}
		if strings.Contains(why, "dial") {
			why = "the worker is unreachable"
		}
		fmt.Fprintf(s.out, "  ! audit of %s's round %d by %s did not finish: %s\n", s.name(e.Worker), e.Round, s.name(e.Auditor), why)
	}
}

// settleAudit fills the report's ledger side of the audit and tells it.
func (s *story) settleAudit(ctx context.Context, job ledger.JobID, results []jobs.RoundResult) {
	a := &s.rep.Audit
	if a.Cheater == "" {
		return
	}
	c := s.net.Requester.Chain
	for _, r := range results {
		for _, rep := range r.Reports {
			a.ScreenCaught = a.ScreenCaught || slices.Contains(rep.Rejected, a.Cheater)
		}
	}
	if slashes, err := c.Slashes(ctx); err == nil {
		for _, sl := range slashes {
			if sl.Offender == a.Cheater {
				a.Slashed += sl.Amount
			}
		}
	}
	a.AuditorReward = gridmind.Amount(uint64(a.Slashed) * ledger.FraudParams.AuditorSharePPM / verify.PPM)
	if acct, err := c.Account(ctx, a.Cheater); err == nil {
		a.StakeAfter = acct.Stake
	}
	if j, err := c.Job(ctx, job); err == nil {
		for _, l := range j.Leases {
			if l.Provider == a.Cheater && !l.Active() {
				a.Excluded = true
			}
		}
	}
	if a.ProofHeight == 0 {
		fmt.Fprintf(s.out, "  ! the cheater %s was not proven within the job (%d spot checks)\n", s.name(a.Cheater), a.SpotChecks)
		return
	}
	fmt.Fprintf(s.out, "  ⚖ %s slashed %s of its stake (%s left; %s to the agreeing auditors, the rest burned), its pay for round %d withheld, excluded from the job: %v\n",
		s.name(a.Cheater), a.Slashed, a.StakeAfter, a.AuditorReward, a.ProvenRound, a.Excluded)
	fmt.Fprintf(s.out, "  audits: %d spot checks, %d honest rounds reproduced bit for bit and cleared, %d mismatching re-runs (%d of an honest worker's round)\n",
		a.SpotChecks, a.Cleared, a.Mismatches, a.HonestMismatches)
}

// The demo audits every round (a new node is audited in 45% of its rounds
// under verify.DefaultPolicy; forcing 100% makes the short demo catch its
// cheater for certain), within a dispute window long enough for a
// committee to re-run a round on two busy cores.
const (
	auditRatePPM      = verify.PPM
	auditWindowBlocks = 60
)

// auditWindow is the dispute window in blocks: auditWindowBlocks, or on a
// slow machine enough time for an auditor and then its committee to
// re-run a round (each about twice round 0's head start, firstWait, since
// a re-run competes with training for the cores) at two blocks a second,
// the most a loaded 2-core machine was seen to make (at load 20-30 the
// fixed 60 blocks closed before any fraud proof got in).
func auditWindow(firstWait time.Duration) int64 {
	return max(auditWindowBlocks, int64(2*4*firstWait.Seconds()))
}
