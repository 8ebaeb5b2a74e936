// Package verifybench simulates the audit policy of package verify over its
// real draw, committee and policy code, to measure how soon a persistent
// cheater is caught, what the audits cost and how the cheater's balance
// ends against an honest worker's.
//
// `gridmind bench verify` is the command line over Run.
package verifybench

import (
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/verify"
)

// The verification benchmark, as a pure simulation over the real draw,
// committee and policy code: beacons are random 32-byte values from the
// caller's seeded *rand.Rand, everything else is package verify. Re-execution
// itself is not simulated; on the CPU backend it is bitwise, so an audited
// round of a persistent cheater (one that never does the work it commits
// to) mismatches with certainty, and an honest round never does.

// Config sets up the simulation. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Policy verify.Policy
	Params verify.Params
	// Trials of a cheater's first Rounds rounds, for the detection
	// probability.
	Trials int
	Rounds int
	// Auditors is the pool committees are drawn from; ColludingPPM of them
	// side with the cheater (never report its fraud).
	Auditors     int
	ColludingPPM uint64
	// Fleet is the number of workers for the overhead; ReliablePPM of them
	// have a long clean record (1,000 to 5,000 rounds), the rest are new;
	// FleetRounds is how many rounds they run, one of them a persistent
	// cheater (new).
	Fleet       int
	ReliablePPM uint64
	FleetRounds int
	// Segments > 1 re-runs one of that many segments instead of the round.
	Segments int
	// Reward per round and stake of every worker, for RateFor and the
	// balances.
	Reward gridmind.Amount
	Stake  gridmind.Amount
}

// DefaultConfig: the default policy and params, 100 auditors of which
// 20% collude with the cheater (the threat model's share), a fleet of 200
// workers 90% of them reliable, 1 GRID per round against 200 GRID staked.
func DefaultConfig() Config {
	return Config{
		Policy: verify.DefaultPolicy(), Params: verify.DefaultParams(),
		Trials: 20_000, Rounds: 10,
		Auditors: 100, ColludingPPM: 200_000,
		Fleet: 200, ReliablePPM: 900_000, FleetRounds: 50,
		Reward: 1 * gridmind.UnitsPerGRID, Stake: 200 * gridmind.UnitsPerGRID,
	}
}

func (c *Config) defaults() {
	d := DefaultConfig()
	if c.Policy == (verify.Policy{}) {
		c.Policy = d.Policy
	}
	if c.Params == (verify.Params{}) {
		c.Params = d.Params
	}
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.Trials, d.Trials)
	set(&c.Rounds, d.Rounds)
	set(&c.Auditors, d.Auditors)
	set(&c.Fleet, d.Fleet)
	set(&c.FleetRounds, d.FleetRounds)
	if c.Reward == 0 {
		c.Reward = d.Reward
	}
	if c.Stake == 0 {
		c.Stake = d.Stake
	}
}

// Report is what the simulation measured.
type Report struct {
	Config Config `json:"config"`
	// Detection of a persistent cheater within Config.Rounds rounds: a new
	// node, and a node with a long clean record that turns cheater; with
	// the analytic value 1 − (1 − p·q)^n for the new node, where q is the
	// chance that the committee holds a quorum of honest auditors.
	DetectNew           float64 `json:"detect_new"`
	DetectNewAnalytic   float64 `json:"detect_new_analytic"`
	DetectReliable      float64 `json:"detect_reliable"`
	MeanRoundsToCatch   float64 `json:"mean_rounds_to_catch_new"` // among trials that caught it
	HonestQuorumPerDraw float64 `json:"honest_quorum_per_draw"`
	// Overhead = audit compute / useful compute over the fleet's rounds,
	// with whole-round re-execution and (if Segments > 1) one segment.
	Overhead        float64 `json:"overhead"`
	OverheadSegment float64 `json:"overhead_segment,omitempty"`
	MeanRatePPM     float64 `json:"mean_rate_ppm"`
	CheaterCaughtAt int     `json:"cheater_caught_at_round"` // in the fleet run; −1 if never
	// Economics of the fleet's cheater against an honest new worker, over
	// the same rounds: bonded stake + pay at the end.
	RequiredStake  gridmind.Amount `json:"required_stake_at_floor"`
	HonestBalance  gridmind.Amount `json:"honest_balance"`
	CheaterBalance gridmind.Amount `json:"cheater_balance"`
}

func randomBeacon(rng *rand.Rand) verify.Hash {
	var h verify.Hash
	for i := 0; i < len(h); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	return h
}

// benchNode is a deterministic identity for simulation (no key needed:
// the draw only hashes the id).
func benchNode(kind string, i int) gridmind.NodeID {
	return gridmind.NodeID(fmt.Sprintf("sim-%s-%05d", kind, i))
}

// Run runs the simulation with rng (seed it for a reproducible run).
func Run(cfg Config, rng *rand.Rand) (Report, error) {
	cfg.defaults()
	if err := cfg.Policy.Validate(); err != nil {
		return Report{}, err
	}
	if err := cfg.Params.Validate(); err != nil {
		return Report{}, err
	}
	rep := Report{Config: cfg}
	auditors := make([]gridmind.NodeID, cfg.Auditors)
	colluding := map[gridmind.NodeID]bool{}
	for i := range auditors {
		auditors[i] = benchNode("auditor", i)
		if uint64(i) < uint64(cfg.Auditors)*cfg.ColludingPPM/verify.PPM {
			colluding[auditors[i]] = true
		}
	}
	cheater := benchNode("cheater", 0)
	// proven: the cheater's round, drawn with seed, is audited and its
	// committee holds a quorum of honest auditors.
	honestQuorum := func(seed verify.Hash, worker gridmind.NodeID) bool {
		honest := 0
		for _, a := range verify.Committee(seed, worker, auditors, cfg.Params.CommitteeSize) {
			if !colluding[a] {
				honest++
			}
		}
		return honest >= cfg.Params.Quorum
	}

	// Detection within Rounds rounds.
	var caughtNew, caughtReliable, roundsSum, quorums, draws int
	for _, start := range []verify.Record{{}, {Rounds: 5000}} {
		for t := 0; t < cfg.Trials; t++ {
			rec := start
			for r := 0; r < cfg.Rounds; r++ {
				seed := randomBeacon(rng)
				rate := cfg.Policy.RateFor(rec, cfg.Reward, cfg.Stake, cfg.Params.SlashPPM)
				if verify.Audited(seed, cheater, rate) {
					draws++
					if honestQuorum(seed, cheater) {
						quorums++
						if start.Rounds == 0 {
							caughtNew++
							roundsSum += r + 1
						} else {
							caughtReliable++
						}
						break
					}
				}
				rec.Rounds++ // paid and counted as a clean round: nobody proved otherwise
			}
		}
	}
	rep.DetectNew = float64(caughtNew) / float64(cfg.Trials)
	rep.DetectReliable = float64(caughtReliable) / float64(cfg.Trials)
	if caughtNew > 0 {
		rep.MeanRoundsToCatch = float64(roundsSum) / float64(caughtNew)
	}
	if draws > 0 {
		rep.HonestQuorumPerDraw = float64(quorums) / float64(draws)
	}
	// The new node's rate over its first rounds is constant (probation).
	p := float64(cfg.Policy.RateFor(verify.Record{}, cfg.Reward, cfg.Stake, cfg.Params.SlashPPM)) / verify.PPM
	miss := 1.0
	for r := 0; r < cfg.Rounds; r++ {
		miss *= 1 - p*rep.HonestQuorumPerDraw
	}
	rep.DetectNewAnalytic = 1 - miss

	// Overhead over a fleet with one persistent cheater. A spot check is
	// one auditor re-running (the round, or one segment); a mismatch
	// brings in the rest of the committee.
	type worker struct {
		id      gridmind.NodeID
		rec     verify.Record
		cheater bool
		out     bool
	}
	fleet := make([]worker, cfg.Fleet)
	for i := range fleet {
		fleet[i].id = benchNode("worker", i)
		if uint64(i) < uint64(cfg.Fleet)*cfg.ReliablePPM/verify.PPM {
			fleet[i].rec.Rounds = 1000 + uint64(rng.IntN(4001))
		} else {
			fleet[i].rec.Rounds = uint64(rng.IntN(int(cfg.Policy.ProbationRounds)))
		}
	}
	fleet[len(fleet)-1] = worker{id: cheater, cheater: true}
	segmentCost := 1.0
	if cfg.Segments > 1 {
		segmentCost = 1 / float64(cfg.Segments)
	}
	var useful, audit, auditSegment, rateSum float64
	var rates int
	rep.CheaterCaughtAt = -1
	honestBal := cfg.Stake
	cheaterBal := cfg.Stake
	for r := 0; r < cfg.FleetRounds; r++ {
		beacon := randomBeacon(rng)
		for i := range fleet {
			w := &fleet[i]
			if w.out {
				continue
			}
			seed := verify.Seed(beacon, "bench-job", uint64(r))
			rate := cfg.Policy.RateFor(w.rec, cfg.Reward, cfg.Stake, cfg.Params.SlashPPM)
			rateSum += float64(rate)
			rates++
			if !w.cheater {
				useful++
			}
			if !verify.Audited(seed, w.id, rate) {
				w.rec.Rounds++
				if w.cheater {
					cheaterBal += cfg.Reward
				}
				continue
			}
			audit++
			auditSegment += segmentCost
			if !w.cheater {
				w.rec.Rounds++
				continue
			}
			// The spot check mismatches: the rest of the committee re-runs.
			extra := float64(cfg.Params.CommitteeSize - 1)
			audit += extra
			auditSegment += extra * segmentCost
			if honestQuorum(seed, w.id) {
				w.out = true
				rep.CheaterCaughtAt = r
				slash := gridmind.Amount(mulDivPPM(uint64(cfg.Stake), cfg.Params.SlashPPM))
				cheaterBal -= min(slash, cheaterBal)
			} else {
				cheaterBal += cfg.Reward // a colluding committee covered for it
				w.rec.Rounds++
			}
		}
		honestBal += cfg.Reward
	}
	if useful > 0 {
		rep.Overhead = audit / useful
		if cfg.Segments > 1 {
			rep.OverheadSegment = auditSegment / useful
		}
	}
	if rates > 0 {
		rep.MeanRatePPM = rateSum / float64(rates)
	}
	rep.RequiredStake = verify.RequiredStake(cfg.Reward, cfg.Policy.MinRatePPM, cfg.Params.SlashPPM)
	rep.HonestBalance, rep.CheaterBalance = honestBal, cheaterBal
	return rep, nil
}

// mulDivPPM is a·ppm/10⁶ without overflow in the product (ppm ≤ 10⁶).
func mulDivPPM(a, ppm uint64) uint64 {
	hi, lo := bits.Mul64(a, min(ppm, verify.PPM))
	q, _ := bits.Div64(hi, lo, verify.PPM)
	return q
}
