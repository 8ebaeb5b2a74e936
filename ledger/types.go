package ledger

import (
	"slices"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/reputation"
)

// PPM is one million parts per million: a multiplier of 1.0.
const PPM = 1_000_000

// Account is a ledger account, named by the node id of its key.
type Account struct {
	Address   gridmind.NodeID `json:"address"`
	Balance   gridmind.Amount `json:"balance"`
	Nonce     uint64          `json:"nonce"` // the nonce its next transaction must carry
	Stake     gridmind.Amount `json:"stake"`
	Unbonding []Unbonding     `json:"unbonding,omitempty"`
}

// Unbonding is unstaked value waiting to return to the balance.
type Unbonding struct {
	Amount        gridmind.Amount `json:"amount"`
	ReleaseHeight int64           `json:"release_height"`
}

// UnbondingTotal sums the account's unbonding entries.
func (a *Account) UnbondingTotal() gridmind.Amount {
	var t gridmind.Amount
	for _, u := range a.Unbonding {
		t += u.Amount
	}
	return t
}

func (a Account) clone() Account {
	a.Unbonding = slices.Clone(a.Unbonding)
	return a
}

// Provider is a registered provider and its standing offer.
type Provider struct {
	Offer            gridmind.Offer `json:"offer"`
	RegisteredHeight int64          `json:"registered_height"`
	UpdatedHeight    int64          `json:"updated_height"`
	ActiveLeases     uint64         `json:"active_leases"`
	// LeaseFloors: for each active lease, the stake it was granted on
	// and its job's pot; the provider may not unstake below stakeFloor
	// while it holds them.
	LeaseFloors []LeaseFloor `json:"lease_floors,omitempty"`
}

// LeaseFloor is the stake a lease on Job requires of its provider, and
// what one round of Job pays at most.
type LeaseFloor struct {
	Job   JobID           `json:"job"`
	Stake gridmind.Amount `json:"stake"`
	Pot   gridmind.Amount `json:"pot,omitempty"`
}

func (p Provider) clone() Provider {
	p.Offer.Hardware.GPUs = slices.Clone(p.Offer.Hardware.GPUs)
	p.LeaseFloors = slices.Clone(p.LeaseFloors)
	return p
}

// stakeFloor is the least stake p must keep: the highest floor of its
// active leases, and more than the pots of one round of each of its jobs
// together. One stake backs every lease, and a cheater leased on several
// jobs at once could cheat in a round of each before the first proof
// takes its stake: the stake must exceed all of those rounds' pay.
func (p *Provider) stakeFloor() gridmind.Amount {
	var highest, pots gridmind.Amount
	for _, l := range p.LeaseFloors {
		highest = max(highest, l.Stake)
		pots = satAmount(pots, l.Pot)
	}
	if len(p.LeaseFloors) > 0 {
		pots = satAmount(pots, 1) // more than, not as much as
	}
	return max(highest, pots)
}

// JobState is where a job is in its life.
type JobState string

// Job states.
const (
	JobOpen      JobState = "open"      // posted, no lease yet
	JobRunning   JobState = "running"   // at least one lease
	JobCompleted JobState = "completed" // every round settled
	JobCancelled JobState = "cancelled" // cancelled by the requester
	JobExpired   JobState = "expired"   // closed by anyone after its deadline or too long without progress
)

// Lease binds a provider to a job from StartHeight until EndHeight (0 while
// active).
type Lease struct {
	Provider    gridmind.NodeID `json:"provider"`
	StartHeight int64           `json:"start_height"`
	// FromRound is the first round the provider agreed to take part in;
	// rounds before it are not counted against it.
	FromRound uint64 `json:"from_round,omitempty"`
	EndHeight int64  `json:"end_height,omitempty"`
}

// Active reports whether the lease has not ended.
func (l Lease) Active() bool { return l.EndHeight == 0 }

// Job is a posted job and its escrow. Budget = Escrow + Paid + Refunded at
// all times.
type Job struct {
	ID           JobID            `json:"id"`
	Requester    gridmind.NodeID  `json:"requester"`
	Spec         gridmind.JobSpec `json:"spec"`
	State        JobState         `json:"state"`
	Escrow       gridmind.Amount  `json:"escrow"`
	Paid         gridmind.Amount  `json:"paid"`
	Refunded     gridmind.Amount  `json:"refunded"`
	Size         JobSize          `json:"size"`
	PostedHeight int64            `json:"posted_height"`
	EndedHeight  int64            `json:"ended_height,omitempty"`
	// ProgressHeight is the last height at which the job moved (posted,
	// leased, receipted, settled); MaxIdleBlocks after it anyone may
	// close the job.
	ProgressHeight int64    `json:"progress_height"`
	Leases         []Lease  `json:"leases,omitempty"`
	RoundsSettled  uint64   `json:"rounds_settled"`
	Pending        []uint64 `json:"pending,omitempty"` // rounds submitted but not settled, ascending
}

func (j Job) clone() Job {
	j.Leases = slices.Clone(j.Leases)
	j.Pending = slices.Clone(j.Pending)
	j.Spec.RegionsAllowed = slices.Clone(j.Spec.RegionsAllowed)
	j.Spec.RegionsExcluded = slices.Clone(j.Spec.RegionsExcluded)
	return j
}

func (j *Job) activeLease(p gridmind.NodeID) bool {
	for _, l := range j.Leases {
		if l.Provider == p && l.Active() {
			return true
		}
	}
	return false
}

func (j *Job) activeLeases() int {
	n := 0
	for _, l := range j.Leases {
		if l.Active() {
			n++
		}
	}
	return n
}

// NextRound is the round whose receipt the ledger takes next: rounds are
// receipted in order, one after another.
func (j *Job) NextRound() uint64 { return j.RoundsSettled + uint64(len(j.Pending)) }

// Open reports whether the job still takes leases and receipts.
func (j *Job) Open() bool { return j.State == JobOpen || j.State == JobRunning }

// Payment is what one participant was paid for a round.
type Payment struct {
	Node          gridmind.NodeID `json:"node"`
	Amount        gridmind.Amount `json:"amount"`
	MultiplierPPM uint64          `json:"multiplier_ppm"`
}

// Receipt is a submitted round receipt and, once settled, its payments.
type Receipt struct {
	Job          JobID           `json:"job"`
	Round        uint64          `json:"round"`
	ModelHash    Hash            `json:"model_hash"`
	Participants []Participation `json:"participants"`
	Submitter    gridmind.NodeID `json:"submitter"`
	// Signers are the leased providers whose signatures carried the
	// receipt (empty when the requester submitted it).
	Signers []gridmind.NodeID `json:"signers,omitempty"`
	// Withheld are participants whose payment for this round was stopped
	// by evidence filed inside the dispute window; their share returns to
	// the requester.
	Withheld        []gridmind.NodeID `json:"withheld,omitempty"`
	SubmittedHeight int64             `json:"submitted_height"`
	Settled         bool              `json:"settled"`
	SettledHeight   int64             `json:"settled_height,omitempty"`
	Pot             gridmind.Amount   `json:"pot,omitempty"` // what the round could pay at a multiplier of 1.0
	Payments        []Payment         `json:"payments,omitempty"`
}

func (r Receipt) clone() Receipt {
	r.Participants = slices.Clone(r.Participants)
	r.Payments = slices.Clone(r.Payments)
	r.Signers = slices.Clone(r.Signers)
	r.Withheld = slices.Clone(r.Withheld)
	return r
}

// Reputation holds the raw, on-ledger counters that reputation scores are
// computed from. The ledger only counts; package reputation interprets.
type Reputation struct {
	Node           gridmind.NodeID `json:"node"`
	RoundsFinished uint64          `json:"rounds_finished"` // settled rounds it took part in
	RoundsFailed   uint64          `json:"rounds_failed"`   // settled rounds of its jobs it held a lease for but missed
	Slashes        uint64          `json:"slashes"`
	SlashedTotal   gridmind.Amount `json:"slashed_total"`
	BeatsSeen      uint64          `json:"beats_seen"`     // heartbeats peers attested seeing
	BeatsExpected  uint64          `json:"beats_expected"` // heartbeats peers expected
	Attestations   uint64          `json:"attestations"`   // observations received
	// LastAttestEpoch is the last epoch this node attested as an observer
	// (+1, so that zero means never).
	LastAttestEpoch uint64 `json:"last_attest_epoch,omitempty"`
	// UptimeEpoch and UptimeWeight: the stake weight of the attestations
	// this node received in its latest attested epoch, capped per epoch by
	// Params.UptimeWeightCap (UptimeEpoch is +1, so zero means never).
	UptimeEpoch  uint64 `json:"uptime_epoch,omitempty"`
	UptimeWeight uint64 `json:"uptime_weight,omitempty"`
	// Record is the same evidence, decayed by block height the way
	// package reputation scores it (old events fade), as of Record.Height.
	// The counters above are all-time, for display.
	Record reputation.Record `json:"record"`
}

// ReputationParams are the fixed rules the ledger's reputation records
// follow; like the ledger's other hooks they are code, the same on every
// validator.
var ReputationParams = reputation.DefaultParams()

// Score is the node's reputation at height (never earlier than the
// record's own height).
func (r Reputation) Score(height int64) reputation.Score {
	h := uint64(max(height, 0))
	return r.Record.Score(ReputationParams, max(h, r.Record.Height))
}

func (r Reputation) clone() Reputation { return r }

// SlashRecord is a slash that happened, keyed by the hash of its evidence.
type SlashRecord struct {
	EvidenceHash Hash            `json:"evidence_hash"`
	Offender     gridmind.NodeID `json:"offender"`
	Slasher      gridmind.NodeID `json:"slasher"`
	Height       int64           `json:"height"`
	FractionPPM  uint64          `json:"fraction_ppm"`
	Amount       gridmind.Amount `json:"amount"`
	Reason       string          `json:"reason,omitempty"`
}

func (s SlashRecord) clone() SlashRecord { return s }

// unbondQueue lists the accounts with unbonding entries released at one
// height, in the order they unstaked.
type unbondQueue struct {
	Accounts []gridmind.NodeID `json:"accounts"`
}

func (q unbondQueue) clone() unbondQueue {
	q.Accounts = slices.Clone(q.Accounts)
	return q
}

// Meta is the chain-wide part of the state.
type Meta struct {
	ChainID       string          `json:"chain_id"`
	Height        int64           `json:"height"` // the block being executed, or last executed
	GenesisSupply gridmind.Amount `json:"genesis_supply"`
	Minted        gridmind.Amount `json:"minted"`
	// Burned is the sum of transaction fees, taken out of the supply.
	Burned    gridmind.Amount `json:"burned"`
	SlashPool gridmind.Amount `json:"slash_pool"`
	// Time is the time of the block being executed (or last executed) in
	// Unix seconds, as consensus agreed it; never earlier than the block
	// before.
	Time       int64       `json:"time"`
	Params     Params      `json:"params"`
	Validators []Validator `json:"validators,omitempty"`
}

func (m Meta) clone() Meta {
	m.Params = m.Params.clone()
	m.Validators = slices.Clone(m.Validators)
	return m
}

// Validator ties a consensus key address (hex, as CometBFT prints it) to the
// ledger account that receives its block rewards.
type Validator struct {
	Address string          `json:"address"`
	Account gridmind.NodeID `json:"account"`
}
