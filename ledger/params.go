package ledger

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gridmind/gridmind"
)

// Params are the chain's rules; they are fixed at genesis and part of the
// state (so of the app hash).
type Params struct {
	// UnbondingBlocks is how many blocks unstaked value waits before it
	// returns to the balance; during that time it can still be slashed.
	UnbondingBlocks int64 `json:"unbonding_blocks"`
	// MaxUnbonding bounds the unbonding entries of one account.
	MaxUnbonding int `json:"max_unbonding"`
	// MinProviderStake is the least stake a provider needs to be leased
	// (a lease also needs more than the job's per-round pot), and below
	// which a provider with active leases may not unstake.
	MinProviderStake gridmind.Amount `json:"min_provider_stake"`
	// MinAttestStake is the stake an observer needs to attest uptime.
	MinAttestStake gridmind.Amount `json:"min_attest_stake"`
	// SettleDelayBlocks is the dispute window: how many blocks after its
	// receipt a round may be settled (by anyone). Evidence filed inside it
	// stops the offender's payment for the round and slashes its stake.
	SettleDelayBlocks int64 `json:"settle_delay_blocks"`
	// MaxIdleBlocks: a job with no progress (lease, receipt, settlement)
	// for this many blocks may be closed by anyone (0: never).
	MaxIdleBlocks int64 `json:"max_idle_blocks"`
	// TxFee is what every accepted transaction costs its sender; fees are
	// burned (see docs/ARCHITECTURE.md for why).
	TxFee gridmind.Amount `json:"tx_fee"`
	// EpochBlocks is the length of an uptime epoch in blocks: attestations
	// name the current epoch, height / EpochBlocks.
	EpochBlocks int64 `json:"epoch_blocks"`
	// MaxAttestWeight caps the weight of one observer's attestation: its
	// stake in units of MinAttestStake (1 GRID when that is 0), at most this.
	MaxAttestWeight uint64 `json:"max_attest_weight"`
	// UptimeWeightCap caps the total attestation weight a node's uptime
	// record takes in one epoch, however many observers attest it.
	UptimeWeightCap uint64 `json:"uptime_weight_cap"`
	// DisputeSlashPPM is the part of an offender's stake that upheld
	// evidence against one of its rounds takes (parts per million).
	DisputeSlashPPM uint64 `json:"dispute_slash_ppm"`
	// BlockReward is minted to the proposer's account every block (0: no
	// minting).
	BlockReward gridmind.Amount `json:"block_reward"`
	// Slashers may send Slash transactions. Until verification makes
	// evidence self-proving, slashing needs an authorized sender.
	Slashers []gridmind.NodeID `json:"slashers,omitempty"`
}

// DefaultParams are the rules a new chain gets unless its genesis says
// otherwise.
func DefaultParams() Params {
	return Params{
		UnbondingBlocks:   100,
		MaxUnbonding:      16,
		MinProviderStake:  10 * gridmind.UnitsPerGRID,
		MinAttestStake:    1 * gridmind.UnitsPerGRID,
		SettleDelayBlocks: 10,
		MaxIdleBlocks:     3000,
		TxFee:             1000, // 0.001 GRID
		EpochBlocks:       600,
		MaxAttestWeight:   10,
		UptimeWeightCap:   30,
		DisputeSlashPPM:   PPM,
	}
}

func (p Params) clone() Params {
	p.Slashers = slices.Clone(p.Slashers)
	return p
}

func (p *Params) validate() error {
	switch {
	case p.UnbondingBlocks < 0 || p.UnbondingBlocks > 1<<40:
		return fmt.Errorf("unbonding blocks %d out of range", p.UnbondingBlocks)
	case p.MaxUnbonding < 1 || p.MaxUnbonding > 1024:
		return fmt.Errorf("max unbonding %d, want 1 to 1024", p.MaxUnbonding)
	case p.SettleDelayBlocks < 0 || p.SettleDelayBlocks > 1<<40:
		return fmt.Errorf("settle delay %d out of range", p.SettleDelayBlocks)
	case p.MaxIdleBlocks < 0 || p.MaxIdleBlocks > 1<<40:
		return fmt.Errorf("max idle blocks %d out of range", p.MaxIdleBlocks)
	case p.MaxIdleBlocks > 0 && p.MaxIdleBlocks <= p.SettleDelayBlocks:
		return fmt.Errorf("max idle blocks %d must exceed the settle delay %d, or receipted rounds could be refunded before they can settle", p.MaxIdleBlocks, p.SettleDelayBlocks)
	case p.EpochBlocks < 1 || p.EpochBlocks > 1<<40:
		return fmt.Errorf("epoch blocks %d, want 1 to 2^40", p.EpochBlocks)
	case p.MaxAttestWeight < 1 || p.MaxAttestWeight > 1000:
		return fmt.Errorf("max attest weight %d, want 1 to 1000", p.MaxAttestWeight)
	case p.UptimeWeightCap < 1 || p.UptimeWeightCap > 1_000_000:
		return fmt.Errorf("uptime weight cap %d, want 1 to 1000000", p.UptimeWeightCap)
	case p.DisputeSlashPPM > PPM:
		return fmt.Errorf("dispute slash %d ppm, at most %d", p.DisputeSlashPPM, PPM)
	}
	for _, s := range p.Slashers {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("slasher: %w", err)
		}
	}
	return nil
}

// GenesisAccount is an account funded at genesis.
type GenesisAccount struct {
	Address gridmind.NodeID `json:"address"`
	Balance gridmind.Amount `json:"balance"`
	Stake   gridmind.Amount `json:"stake,omitempty"`
}

// Genesis is the initial state of a chain. chain/ stores it as the
// CometBFT genesis document's app_state.
type Genesis struct {
	ChainID    string           `json:"chain_id"`
	Params     Params           `json:"params"`
	Accounts   []GenesisAccount `json:"accounts"`
	Validators []Validator      `json:"validators,omitempty"`
}

// Options are the deterministic hooks the ledger calls. They are code, not
// state, so every node must be built with the same ones.
type Options struct {
	// Multiplier scales a participant's round payment by its reputation,
	// in parts per million. Nil means DefaultMultiplier (1.0 for everyone).
	// Results above PPM are treated as PPM: a round never pays more than
	// its pot; what is not paid stays in escrow for the requester.
	Multiplier func(Reputation) uint64
	// Evidence checks a slash's evidence; nil accepts any evidence from an
	// authorized slasher.
	Evidence func(offender gridmind.NodeID, evidence []byte) error
}

// DefaultMultiplier pays everyone in full. Package reputation will provide
// the real one; the lead wires it through Options.Multiplier.
func DefaultMultiplier(Reputation) uint64 { return PPM }

func (o *Options) multiplier(r Reputation) uint64 {
	f := o.Multiplier
	if f == nil {
		f = DefaultMultiplier
	}
	if m := f(r); m < PPM {
		return m
	}
	return PPM
}

// ErrSupply is returned when a state breaks the supply invariant.
var ErrSupply = errors.New("ledger: supply invariant broken")
