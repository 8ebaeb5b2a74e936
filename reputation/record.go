package reputation

import (
	"errors"
	"fmt"

	"github.com/gridmind/gridmind"
)

// PPM is 1.0 in parts per million, the unit of every score.
const PPM = 1_000_000

// Params tune the score. They belong in the ledger's genesis: every
// validator must use the same ones.
type Params struct {
	// HalfLifeBlocks: uptime and work evidence halves every this many blocks.
	HalfLifeBlocks uint64 `json:"half_life_blocks"`
	// SlashHalfLifeBlocks: a slash's penalty halves every this many blocks;
	// longer than HalfLifeBlocks because fraud should be remembered.
	SlashHalfLifeBlocks uint64 `json:"slash_half_life_blocks"`

	// PriorMissedHeartbeats counts as heartbeats expected but not seen, so
	// a node with little evidence has a low uptime until it shows more.
	PriorMissedHeartbeats uint64 `json:"prior_missed_heartbeats"`
	// PriorFinished and PriorFailed are the Beta prior of reliability, in
	// pieces of work: a new node's reliability is PriorFinished /
	// (PriorFinished + PriorFailed).
	PriorFinished uint64 `json:"prior_finished"`
	PriorFailed   uint64 `json:"prior_failed"`
	// RejectWeight: a rejected result (verification mismatch) counts as
	// this many failures, since it is worse than a crash.
	RejectWeight uint64 `json:"reject_weight"`

	// UptimeWeightPPM is uptime's share of the base score; reliability has the rest.
	UptimeWeightPPM uint64 `json:"uptime_weight_ppm"`
	// SlashPenaltyPPM is how much of the score one fresh slash removes.
	SlashPenaltyPPM uint64 `json:"slash_penalty_ppm"`
	// MinMultiplierPPM is the reward multiplier at score 0; it rises
	// linearly to 1.0x at score 1.
	MinMultiplierPPM uint64 `json:"min_multiplier_ppm"`
}

// DefaultParams are tuned for blocks of about a second and heartbeats
// attested every few seconds: evidence halves in a day, slashes in a week,
// a new node scores 0.12 (reliability 0.2 from the prior, uptime 0), and a
// node that stays up and finishes its work approaches 1 within hours.
func DefaultParams() Params {
	return Params{
		HalfLifeBlocks:        86_400,
		SlashHalfLifeBlocks:   7 * 86_400,
		PriorMissedHeartbeats: 100,
		PriorFinished:         1,
		PriorFailed:           4,
		RejectWeight:          3,
		UptimeWeightPPM:       400_000,
		SlashPenaltyPPM:       700_000,
		MinMultiplierPPM:      500_000,
	}
}

// maxHalfLife keeps pow2Neg's doubling of the remainder from overflowing.
const maxHalfLife = 1 << 40

// Validate reports the first unusable parameter, naming it.
func (p Params) Validate() error {
	bad := func(format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "reputation.params", format, args...)
	}
	switch {
	case p.HalfLifeBlocks == 0 || p.HalfLifeBlocks > maxHalfLife:
		return bad("half_life_blocks %d: want 1..%d", p.HalfLifeBlocks, uint64(maxHalfLife))
	case p.SlashHalfLifeBlocks == 0 || p.SlashHalfLifeBlocks > maxHalfLife:
		return bad("slash_half_life_blocks %d: want 1..%d", p.SlashHalfLifeBlocks, uint64(maxHalfLife))
	case p.PriorFinished+p.PriorFailed == 0 || p.PriorFinished > 1_000_000 || p.PriorFailed > 1_000_000:
		return bad("prior_finished %d, prior_failed %d: want 0..1000000 each, not both 0", p.PriorFinished, p.PriorFailed)
	case p.PriorMissedHeartbeats > 1_000_000_000:
		return bad("prior_missed_heartbeats %d: want at most 1e9", p.PriorMissedHeartbeats)
	case p.RejectWeight > 1_000:
		return bad("reject_weight %d: want 0..1000", p.RejectWeight)
	case p.UptimeWeightPPM > PPM:
		return bad("uptime_weight_ppm %d: want 0..%d", p.UptimeWeightPPM, PPM)
	case p.SlashPenaltyPPM > PPM:
		return bad("slash_penalty_ppm %d: want 0..%d", p.SlashPenaltyPPM, PPM)
	case p.MinMultiplierPPM > PPM:
		return bad("min_multiplier_ppm %d: want 0..%d", p.MinMultiplierPPM, PPM)
	}
	return nil
}

// Record is the evidence about one node, as the ledger stores it. The
// decayed fields are in millionths of an event (one heartbeat, one piece
// of work, one slash = 1,000,000) and are valid as of Height; they are
// brought forward lazily whenever new evidence arrives.
type Record struct {
	Height             uint64 `json:"height"`
	HeartbeatsSeen     uint64 `json:"heartbeats_seen"`
	HeartbeatsExpected uint64 `json:"heartbeats_expected"`
	Finished           uint64 `json:"finished"`
	Failed             uint64 `json:"failed"` // failures plus rejections times RejectWeight
	SlashWeight        uint64 `json:"slash_weight"`

	// All-time counts, never decayed, for display.
	TotalFinished uint64 `json:"total_finished"`
	TotalFailed   uint64 `json:"total_failed"`
	TotalRejected uint64 `json:"total_rejected"`
	TotalSlashes  uint64 `json:"total_slashes"`
}

// ErrHeightBackwards is returned for evidence older than the record.
var ErrHeightBackwards = errors.New("reputation: evidence at a height before the record's")

// maxBatch bounds the events one call may add, so units*PPM cannot overflow.
const maxBatch = 1 << 32

// advance decays the record's evidence to height.
func (r *Record) advance(p Params, height uint64) error {
	if height < r.Height {
		return gridmind.E(gridmind.KindInvalid, "reputation.record", "%w: %d < %d", ErrHeightBackwards, height, r.Height)
	}
	elapsed := height - r.Height
	r.HeartbeatsSeen = decay(r.HeartbeatsSeen, elapsed, p.HalfLifeBlocks)
	r.HeartbeatsExpected = decay(r.HeartbeatsExpected, elapsed, p.HalfLifeBlocks)
	r.Finished = decay(r.Finished, elapsed, p.HalfLifeBlocks)
	r.Failed = decay(r.Failed, elapsed, p.HalfLifeBlocks)
	r.SlashWeight = decay(r.SlashWeight, elapsed, p.SlashHalfLifeBlocks)
	r.Height = height
	return nil
}

// ObserveUptime adds an attestation: of expected heartbeats in a window,
// seen were observed by peers.
func (r *Record) ObserveUptime(p Params, height, seen, expected uint64) error {
	if seen > expected || expected > maxBatch {
		return gridmind.E(gridmind.KindInvalid, "reputation.uptime", "seen %d of expected %d heartbeats: want seen <= expected <= %d", seen, expected, uint64(maxBatch))
	}
	if err := r.advance(p, height); err != nil {
		return err
	}
	r.HeartbeatsSeen = addSat(r.HeartbeatsSeen, seen*PPM)
	r.HeartbeatsExpected = addSat(r.HeartbeatsExpected, expected*PPM)
	return nil
}

// AddWork adds the outcome of pieces of work: finished (accepted),
// failed (crashed, timed out) and rejected (failed verification).
func (r *Record) AddWork(p Params, height, finished, failed, rejected uint64) error {
	if finished > maxBatch || failed > maxBatch || rejected > maxBatch {
		return gridmind.E(gridmind.KindInvalid, "reputation.work", "batch of %d/%d/%d events: at most %d each", finished, failed, rejected, uint64(maxBatch))
	}
	if err := r.advance(p, height); err != nil {
		return err
	}
	r.Finished = addSat(r.Finished, finished*PPM)
	r.Failed = addSat(r.Failed, addSat(failed*PPM, mulDiv(rejected*PPM, p.RejectWeight, 1)))
	r.TotalFinished = addSat(r.TotalFinished, finished)
	r.TotalFailed = addSat(r.TotalFailed, failed)
	r.TotalRejected = addSat(r.TotalRejected, rejected)
	return nil
}

// Slash records a slash (proven fraud or misbehaviour).
func (r *Record) Slash(p Params, height uint64) error {
	if err := r.advance(p, height); err != nil {
		return err
	}
	r.SlashWeight = addSat(r.SlashWeight, PPM)
	r.TotalSlashes = addSat(r.TotalSlashes, 1)
	return nil
}

// Score is a node's reputation with the parts that made it, all in ppm.
type Score struct {
	Total        uint64 `json:"total"`         // 0..1e6
	Uptime       uint64 `json:"uptime"`        // seen / (expected + prior missed)
	Reliability  uint64 `json:"reliability"`   // Beta posterior mean of finished vs failed
	SlashPenalty uint64 `json:"slash_penalty"` // share of the score removed by slashes
	Multiplier   uint64 `json:"multiplier"`    // reward multiplier, MinMultiplierPPM..1e6
}

// Score computes the record's score as of height (heights before the
// record's are read as the record's height). It does not change r.
//
//	base  = w*Uptime + (1-w)*Reliability                    w = UptimeWeightPPM
//	Total = base * (1 - SlashPenalty)
//	SlashPenalty = min(1, decayed slashes * SlashPenaltyPPM)
//	Multiplier   = MinMultiplier + (1 - MinMultiplier) * Total
func (r Record) Score(p Params, height uint64) Score {
	if height > r.Height {
		_ = r.advance(p, height) // cannot fail: height moves forward
	}
	var s Score
	s.Uptime = mulDiv(r.HeartbeatsSeen, PPM, addSat(r.HeartbeatsExpected, p.PriorMissedHeartbeats*PPM))
	priorOK, priorBad := p.PriorFinished*PPM, p.PriorFailed*PPM
	s.Reliability = mulDiv(addSat(r.Finished, priorOK), PPM, addSat(addSat(r.Finished, r.Failed), addSat(priorOK, priorBad)))
	s.Uptime, s.Reliability = min(s.Uptime, PPM), min(s.Reliability, PPM)
	s.SlashPenalty = min(mulDiv(r.SlashWeight, p.SlashPenaltyPPM, PPM), PPM)
	w := min(p.UptimeWeightPPM, PPM)
	base := (w*s.Uptime + (PPM-w)*s.Reliability) / PPM
	s.Total = base * (PPM - s.SlashPenalty) / PPM
	s.Multiplier = Multiplier(p, s.Total)
	return s
}

// Multiplier maps a total score to a reward multiplier in ppm: linear from
// MinMultiplierPPM at score 0 to 1e6 (1.0x) at score 1e6. With the
// defaults a new node earns 0.56x and a proven one nearly 1.0x.
func Multiplier(p Params, total uint64) uint64 {
	lo := min(p.MinMultiplierPPM, PPM)
	return lo + (PPM-lo)*min(total, PPM)/PPM
}

// ScaleAmount returns amount * multiplierPPM / 1e6, rounded down (the
// remainder stays in escrow), without overflow.
func ScaleAmount(amount gridmind.Amount, multiplierPPM uint64) gridmind.Amount {
	return gridmind.Amount(mulDiv(uint64(amount), min(multiplierPPM, PPM), PPM))
}

// String is a short human form, "0.873 (uptime 0.990, reliability 0.812, slash 0.000)".
func (s Score) String() string {
	return fmt.Sprintf("%s (uptime %s, reliability %s, slash %s, x%s)",
		ppmString(s.Total), ppmString(s.Uptime), ppmString(s.Reliability), ppmString(s.SlashPenalty), ppmString(s.Multiplier))
}

func ppmString(v uint64) string { return fmt.Sprintf("%d.%03d", v/PPM, v%PPM/1000) }
