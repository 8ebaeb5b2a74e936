package verify

import (
	"fmt"
	"math/big"

	"github.com/gridmind/gridmind"
)

// Policy is the adaptive audit rate, after BOINC's adaptive replication: a
// node earns fewer audits by a clean record, and loses that at once on a
// proven fault. The rate never reaches zero.
type Policy struct {
	// NewRatePPM is the rate of a node in probation: new, or proven wrong
	// within its last FaultMemoryRounds rounds.
	NewRatePPM uint64 `json:"new_rate_ppm"`
	// MinRatePPM is the floor for the most reliable nodes (> 0).
	MinRatePPM uint64 `json:"min_rate_ppm"`
	// ProbationRounds is how many clean rounds a node serves at NewRatePPM;
	// after that its rate falls as NewRatePPM·ProbationRounds/clean rounds.
	ProbationRounds uint64 `json:"probation_rounds"`
	// FaultMemoryRounds: after a proven fault the node's clean rounds start
	// again from zero, and it is in probation for at least this many.
	FaultMemoryRounds uint64 `json:"fault_memory_rounds"`
}

// DefaultPolicy audits a new node 45% of its rounds (a persistent cheater
// is caught within 10 rounds with probability 1 − 0.55¹⁰ = 99.7% when every
// auditor is honest, 99.6% when a fifth of them side with it), halves that
// by 40 clean rounds, falls to the floor of 1% by 900, and never goes
// lower. With most of a fleet at the floor the audit compute stays under
// 5% of the useful compute (gridmind bench verify).
func DefaultPolicy() Policy {
	return Policy{NewRatePPM: 450_000, MinRatePPM: 10_000, ProbationRounds: 20, FaultMemoryRounds: 100}
}

// Validate checks the policy.
func (p *Policy) Validate() error {
	switch {
	case p.MinRatePPM == 0:
		return fmt.Errorf("verify: a minimum audit rate of 0 would let reliable nodes go unchecked forever")
	case p.MinRatePPM > p.NewRatePPM || p.NewRatePPM > PPM:
		return fmt.Errorf("verify: rates must satisfy 0 < min %d ≤ new %d ≤ %d ppm", p.MinRatePPM, p.NewRatePPM, PPM)
	case p.ProbationRounds == 0:
		return fmt.Errorf("verify: probation of 0 rounds")
	}
	return nil
}

// Record is what the policy knows of a node: its settled rounds and its
// proven faults (both from the ledger).
type Record struct {
	Rounds           uint64 `json:"rounds"`             // rounds it finished, all time
	Faults           uint64 `json:"faults"`             // proven frauds, all time
	RoundsSinceFault uint64 `json:"rounds_since_fault"` // rounds finished since its last fault
}

// clean is the record's clean streak.
func (r Record) clean() uint64 {
	if r.Faults == 0 {
		return r.Rounds
	}
	return min(r.RoundsSinceFault, r.Rounds)
}

// Rate is the node's audit rate in ppm from its record alone.
func (p Policy) Rate(r Record) uint64 {
	clean := r.clean()
	probation := p.ProbationRounds
	if r.Faults > 0 {
		probation = max(probation, p.FaultMemoryRounds)
	}
	if clean < probation {
		return p.NewRatePPM
	}
	rate := p.NewRatePPM * p.ProbationRounds / clean // ≤ NewRate: clean ≥ ProbationRounds
	return max(rate, p.MinRatePPM)
}

// RateFor is the rate a node is audited at on a job: its record's rate,
// raised to what the economics require for the pay per round and the
// node's stake (RequiredRatePPM), so that cheating has a negative expected
// gain for every node on every job.
func (p Policy) RateFor(r Record, rewardPerRound, stake gridmind.Amount, slashPPM uint64) uint64 {
	return max(p.Rate(r), RequiredRatePPM(rewardPerRound, stake, slashPPM))
}

// The economics. A worker that skips the work of a round and is paid r for
// it anyway gains at most r (it may even be paid before the proof lands);
// if audited (probability p) it loses f·S of its stake S. Its expected
// gain per cheated round is therefore at most r − p·f·S, negative exactly
// when
//
//	S > r / (p·f)
//
// RequiredStake gives the smallest such S for a rate, RequiredRatePPM the
// smallest such rate for a stake. (When the proof lands before settlement
// the ledger withholds the round's pay as well, which only lowers the
// cheater's gain: (1−p)·r − p·f·S.)

// RequiredStake is the smallest stake S with p·f·S > r, for audit rate
// ratePPM and slash fraction slashPPM; 0 when either is 0 (no stake is
// enough without audits or slashing: the caller must refuse).
func RequiredStake(reward gridmind.Amount, ratePPM, slashPPM uint64) gridmind.Amount {
	if ratePPM == 0 || slashPPM == 0 {
		return 0
	}
	// S > r·10¹²/(p·f)  ⇒  S = floor(r·10¹²/(p·f)) + 1
	num := new(big.Int).Mul(new(big.Int).SetUint64(uint64(reward)), big.NewInt(PPM*PPM))
	den := new(big.Int).Mul(new(big.Int).SetUint64(min(ratePPM, PPM)), new(big.Int).SetUint64(min(slashPPM, PPM)))
	q := num.Quo(num, den)
	q.Add(q, big.NewInt(1))
	if !q.IsUint64() {
		return gridmind.Amount(^uint64(0))
	}
	return gridmind.Amount(q.Uint64())
}

// RequiredRatePPM is the smallest audit rate (ppm) with p·f·S > r for
// stake S; PPM (audit every round) when even that is not enough or the
// stake is 0. Auditing every round still makes cheating lose: a cheater
// audited every round is never paid for a cheated round it is caught in
// before settlement.
func RequiredRatePPM(reward, stake gridmind.Amount, slashPPM uint64) uint64 {
	if reward == 0 {
		return 0
	}
	if stake == 0 || slashPPM == 0 {
		return PPM
	}
	// p > r·10¹²/(f·S)  ⇒  p = floor(r·10¹²/(f·S)) + 1
	num := new(big.Int).Mul(new(big.Int).SetUint64(uint64(reward)), big.NewInt(PPM*PPM))
	den := new(big.Int).Mul(new(big.Int).SetUint64(uint64(stake)), new(big.Int).SetUint64(min(slashPPM, PPM)))
	q := num.Quo(num, den)
	q.Add(q, big.NewInt(1))
	if !q.IsUint64() || q.Uint64() > PPM {
		return PPM
	}
	return q.Uint64()
}

// ExpectedGain is a cheater's expected gain per cheated round in µGRID,
// r − p·f·S (paid before it is caught: the worst case for the network),
// exactly, as a fraction.
func ExpectedGain(reward, stake gridmind.Amount, ratePPM, slashPPM uint64) *big.Rat {
	loss := new(big.Int).Mul(new(big.Int).SetUint64(uint64(stake)), new(big.Int).SetUint64(min(ratePPM, PPM)))
	loss.Mul(loss, new(big.Int).SetUint64(min(slashPPM, PPM)))
	lossRat := new(big.Rat).SetFrac(loss, big.NewInt(PPM*PPM))
	return new(big.Rat).Sub(new(big.Rat).SetInt(new(big.Int).SetUint64(uint64(reward))), lossRat)
}

// Draw reports whether worker's round, drawn with seed, is audited at the
// rate its record (and, through RateFor, its stake) calls for; callers
// that know the pay and stake should use Audited with RateFor.
func (p Policy) Draw(seed Hash, worker gridmind.NodeID, r Record) bool {
	return Audited(seed, worker, p.Rate(r))
}
