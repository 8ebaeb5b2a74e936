package verify

import (
	"fmt"

	"github.com/gridmind/gridmind"
)

// Params are the rules of audits and fraud proofs. The ledger holds one
// set as code (ledger.FraudParams), the same on every validator.
type Params struct {
	// CommitteeSize k is how many auditors Committee draws for a round;
	// Quorum m is how many of them must agree for a verdict. 2m > k, so a
	// committee cannot reach both verdicts on the same work.
	CommitteeSize int `json:"committee_size"`
	Quorum        int `json:"quorum"`
	// Mode is how results are compared; TolerancePPM is the line in
	// ModeTolerance (relative L2 distance of Δ, ppm) and must be 0 in
	// ModeBitwise.
	Mode         Mode   `json:"mode"`
	TolerancePPM uint64 `json:"tolerance_ppm"`
	// Segments lets audits re-run one drawn segment instead of the round.
	Segments bool `json:"segments"`
	// SlashPPM is the fraction f of the offender's bonded stake a proven
	// fraud takes; AuditorSharePPM of that goes to the auditors whose
	// results proved it, the rest is burned.
	SlashPPM        uint64 `json:"slash_ppm"`
	AuditorSharePPM uint64 `json:"auditor_share_ppm"`
	// FalseAccusationFine is what an accuser loses from its stake, to the
	// accused, when its proof does not prove fraud.
	FalseAccusationFine gridmind.Amount `json:"false_accusation_fine"`
	// MinAuditorStake is the stake an auditor needs for its result to count
	// and an accuser needs to file a proof.
	MinAuditorStake gridmind.Amount `json:"min_auditor_stake"`
	// WindowBlocks: a proof must be filed within this many blocks after the
	// round's receipt; later it is stale.
	WindowBlocks int64 `json:"window_blocks"`
}

// DefaultParams: five auditors, three agreeing, bitwise, whole rounds; a
// proven fraud takes the whole bonded stake, a fifth of it to the auditors.
// Five rather than three because a fifth of the auditors may side with the
// cheater (the threat model): a committee of five holds three honest
// members with probability 0.94, one of three holds two with 0.90, and
// that factor multiplies every audit's chance of proving a fraud. Only the
// spot check costs compute unless it finds a mismatch.
func DefaultParams() Params {
	return Params{
		CommitteeSize: 5, Quorum: 3, Mode: ModeBitwise,
		SlashPPM: PPM, AuditorSharePPM: 200_000,
		FalseAccusationFine: 1 * gridmind.UnitsPerGRID,
		MinAuditorStake:     1 * gridmind.UnitsPerGRID,
		WindowBlocks:        100,
	}
}

// MaxCommittee bounds CommitteeSize (and so the results in a proof).
const MaxCommittee = 16

// Validate checks that the params are consistent.
func (p *Params) Validate() error {
	switch {
	case p.CommitteeSize < 1 || p.CommitteeSize > MaxCommittee:
		return fmt.Errorf("verify: committee of %d, want 1 to %d", p.CommitteeSize, MaxCommittee)
	case p.Quorum < 1 || p.Quorum > p.CommitteeSize || 2*p.Quorum <= p.CommitteeSize:
		return fmt.Errorf("verify: quorum %d of %d, want more than half and at most all", p.Quorum, p.CommitteeSize)
	case p.Mode != ModeBitwise && p.Mode != ModeTolerance:
		return fmt.Errorf("verify: unknown mode %d", p.Mode)
	case p.Mode == ModeBitwise && p.TolerancePPM != 0:
		return fmt.Errorf("verify: a tolerance of %d ppm in bitwise mode", p.TolerancePPM)
	case p.Mode == ModeTolerance && p.TolerancePPM == 0:
		return fmt.Errorf("verify: tolerance mode needs a tolerance above 0 (or use bitwise)")
	case p.SlashPPM == 0 || p.SlashPPM > PPM:
		return fmt.Errorf("verify: slash of %d ppm, want 1 to %d", p.SlashPPM, PPM)
	case p.AuditorSharePPM > PPM:
		return fmt.Errorf("verify: auditor share of %d ppm, at most %d", p.AuditorSharePPM, PPM)
	case p.WindowBlocks < 1:
		return fmt.Errorf("verify: window of %d blocks, want at least 1", p.WindowBlocks)
	}
	return nil
}
