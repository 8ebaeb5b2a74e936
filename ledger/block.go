package ledger

import (
	"fmt"
	"math"
	"slices"

	"github.com/gridmind/gridmind"
)

// NewState builds the base state of a new chain from its genesis, at
// height 0. Accounts must be distinct and the supply must fit in 64 bits.
func NewState(g Genesis, opts Options) (*State, error) {
	if l := len(g.ChainID); l == 0 || l > MaxChainIDBytes {
		return nil, fmt.Errorf("ledger: genesis: chain id must have 1 to %d bytes", MaxChainIDBytes)
	}
	if err := g.Params.validate(); err != nil {
		return nil, fmt.Errorf("ledger: genesis: %w", err)
	}
	s := &State{opts: &opts}
	var supply gridmind.Amount
	seen := map[gridmind.NodeID]bool{}
	for _, ga := range g.Accounts {
		if err := ga.Address.Validate(); err != nil {
			return nil, fmt.Errorf("ledger: genesis account: %w", err)
		}
		if seen[ga.Address] {
			return nil, fmt.Errorf("ledger: genesis: account %s listed twice", ga.Address)
		}
		seen[ga.Address] = true
		var ok bool
		if supply, ok = supply.AddChecked(ga.Balance); ok {
			supply, ok = supply.AddChecked(ga.Stake)
		}
		if !ok {
			return nil, fmt.Errorf("ledger: genesis: total supply overflows 64 bits")
		}
		put(s, refAcct, prefixAccount+string(ga.Address), Account{Address: ga.Address, Balance: ga.Balance, Stake: ga.Stake})
	}
	for _, v := range g.Validators {
		if err := v.Account.Validate(); err != nil {
			return nil, fmt.Errorf("ledger: genesis validator %s: %w", v.Address, err)
		}
	}
	put(s, refMeta, keyMeta, Meta{
		ChainID: g.ChainID, GenesisSupply: supply, Params: g.Params.clone(),
		Validators: slices.Clone(g.Validators),
	})
	// Build the leaves of the base from a full listing of its entries.
	var all []Change
	for _, k := range sortedKeys(s) {
		all = append(all, Change{Key: k, Value: s.encodeKey(k)})
	}
	s.applyLeaves(all, nil)
	s.initSupply()
	return s, nil
}

// sortedKeys lists the keys of a base that has no leaves yet.
func sortedKeys(s *State) []string {
	var keys []string
	for k := range s.acct {
		keys = append(keys, k)
	}
	for k := range s.meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ChainID is the chain the state belongs to.
func (s *State) ChainID() string { return s.metaRef().ChainID }

// Height is the height of the block being executed (in a fork after
// BeginBlock) or last committed (in a base).
func (s *State) Height() int64 { return s.height() }

// Params returns the chain's rules.
func (s *State) Params() Params { return s.metaRef().Params.clone() }

// BeginBlock starts block height on a fork with the previous block's time
// (see BeginBlockAt).
func (s *State) BeginBlock(height int64, proposer string) ([]Event, error) {
	return s.BeginBlockAt(height, s.metaRef().Time, proposer)
}

// BeginBlockAt starts block height, made at unixTime (the block header's
// time, which consensus agreed on), on a fork: it must directly follow the
// state's height; a time earlier than the last block's is taken as the
// last block's, so ledger time never goes back. Unbonding entries due at
// this height return to their balances, and the block reward, if any, is
// minted to the account of the validator whose consensus address is
// proposer (hex; "" for none).
func (s *State) BeginBlockAt(height int64, unixTime int64, proposer string) ([]Event, error) {
	if s.parent == nil {
		return nil, fmt.Errorf("ledger: begin block on a committed base; fork it first")
	}
	m := s.metaRef().clone()
	if height != m.Height+1 {
		return nil, fmt.Errorf("ledger: block %d does not follow height %d", height, m.Height)
	}
	m.Height = height
	m.Time = max(m.Time, unixTime)
	var events []Event
	if reward := m.Params.BlockReward; reward > 0 && proposer != "" {
		for _, v := range m.Validators {
			if v.Address != proposer {
				continue
			}
			total, ok := m.GenesisSupply.AddChecked(m.Minted)
			if ok {
				_, ok = total.AddChecked(reward)
			}
			if !ok { // the supply would no longer fit in 64 bits: stop minting
				break
			}
			m.Minted += reward
			if err := s.credit(v.Account, reward); err != nil {
				return nil, err
			}
			events = append(events, Event{Account: v.Account, Kind: "minted", Amount: reward})
			break
		}
	}
	s.setMeta(m)
	s.recordBeacon() // audit draws (fraud_state.go)
	key := unbondKey(height)
	if q, ok := get(s, selUnb, key); ok {
		for _, id := range q.Accounts {
			a, _ := s.account(id)
			var released gridmind.Amount
			a.Unbonding = slices.DeleteFunc(a.Unbonding, func(u Unbonding) bool {
				if u.ReleaseHeight <= height {
					released += u.Amount
					return true
				}
				return false
			})
			if released == 0 && len(a.Unbonding) == 0 {
				continue // slashed away; nothing to release
			}
			nb, ok := a.Balance.AddChecked(released)
			if !ok {
				return nil, fmt.Errorf("%w: balance of %s overflows", ErrSupply, id)
			}
			a.Balance = nb
			s.setAccount(a)
			if released > 0 {
				events = append(events, Event{Account: id, Kind: "unbonded", Amount: released})
			}
		}
		remove(s, refUnb, key)
	}
	held, err := s.settleHeld(height)
	if err != nil {
		return nil, err
	}
	return append(events, held...), nil
}

// Supply is the ledger's money, summed over the whole state.
type Supply struct {
	Balances      gridmind.Amount `json:"balances"`
	Stakes        gridmind.Amount `json:"stakes"`
	Unbonding     gridmind.Amount `json:"unbonding"`
	Escrow        gridmind.Amount `json:"escrow"`
	SlashPool     gridmind.Amount `json:"slash_pool"`
	GenesisSupply gridmind.Amount `json:"genesis_supply"`
	Minted        gridmind.Amount `json:"minted"`
	Burned        gridmind.Amount `json:"burned"`
	Accounts      int             `json:"accounts"`
	Jobs          int             `json:"jobs"`
}

// Total is everything that is held somewhere: balances, stakes,
// unbonding, escrow and the slash pool.
func (s Supply) Total() (gridmind.Amount, bool) {
	var t gridmind.Amount
	ok := true
	for _, v := range []gridmind.Amount{s.Balances, s.Stakes, s.Unbonding, s.Escrow, s.SlashPool} {
		var o bool
		t, o = t.AddChecked(v)
		ok = ok && o
	}
	return t, ok
}

// SupplyOf sums the money in s by walking every account and job.
func (s *State) SupplyOf() Supply {
	m := s.metaRef()
	sup := Supply{SlashPool: m.SlashPool, GenesisSupply: m.GenesisSupply, Minted: m.Minted, Burned: m.Burned}
	for _, k := range s.allKeys(prefixAccount) {
		a, _ := get(s, selAcct, k)
		sup.Balances = satAmount(sup.Balances, a.Balance)
		sup.Stakes = satAmount(sup.Stakes, a.Stake)
		for _, u := range a.Unbonding {
			sup.Unbonding = satAmount(sup.Unbonding, u.Amount)
		}
		sup.Accounts++
	}
	for _, k := range s.allKeys(prefixJob) {
		j, _ := get(s, selJobs, k)
		sup.Escrow = satAmount(sup.Escrow, j.Escrow)
		sup.Jobs++
	}
	return sup
}

func satAmount(a, b gridmind.Amount) gridmind.Amount {
	if b > math.MaxUint64-a {
		return math.MaxUint64
	}
	return a + b
}

// CheckInvariant verifies balances + stakes + unbonding + escrow + slash
// pool + burned = genesis supply + minted, and each job's books (budget = escrow +
// paid + refunded), by walking the whole state, and that the running
// totals CheckSupply uses agree with the walk. Tests and debug builds run
// it after every block; chain/ every InvariantEvery blocks.
func (s *State) CheckInvariant() error {
	sup := s.SupplyOf()
	total, ok := sup.Total()
	var ok3 bool
	total, ok3 = total.AddChecked(sup.Burned)
	want, ok2 := sup.GenesisSupply.AddChecked(sup.Minted)
	if !ok || !ok2 || !ok3 || total != want {
		return fmt.Errorf("%w at height %d: balances %d + stakes %d + unbonding %d + escrow %d + slash pool %d + burned %d = %d, want genesis %d + minted %d = %d",
			ErrSupply, s.height(), sup.Balances, sup.Stakes, sup.Unbonding, sup.Escrow, sup.SlashPool, sup.Burned, total, sup.GenesisSupply, sup.Minted, want)
	}
	for _, k := range s.allKeys(prefixJob) {
		j, _ := get(s, selJobs, k)
		if j.Escrow+j.Paid+j.Refunded != j.Spec.Budget {
			return fmt.Errorf("%w: job %s: escrow %d + paid %d + refunded %d != budget %d", ErrSupply, j.ID, j.Escrow, j.Paid, j.Refunded, j.Spec.Budget)
		}
	}
	return s.checkTotals(sup)
}

// BlockResult is what ExecuteBlock did.
type BlockResult struct {
	Height      int64      `json:"height"`
	BlockEvents []Event    `json:"block_events,omitempty"` // unbonding releases, rewards
	TxResults   []TxResult `json:"tx_results"`
	AppHash     Hash       `json:"app_hash"`
}

// ExecuteBlock runs a whole block on fork: BeginBlock, then every raw
// transaction (verified with verify; nil means crypto/ed25519), then the
// app hash. Refused transactions get their code and change nothing. An
// error means the block cannot be executed at all, or a transaction hit a
// broken invariant (CodeInternal): the block must not be committed.
func ExecuteBlock(fork *State, height int64, proposer string, txs [][]byte, verify VerifyFunc) (*BlockResult, error) {
	events, err := fork.BeginBlock(height, proposer)
	if err != nil {
		return nil, err
	}
	res := &BlockResult{Height: height, BlockEvents: events, TxResults: make([]TxResult, len(txs))}
	chainID := fork.ChainID()
	for i, raw := range txs {
		v, err := Verify(chainID, raw, verify)
		if err != nil {
			res.TxResults[i] = result(err.(*TxError))
			continue
		}
		r := fork.Apply(v)
		if r.Code == CodeInternal {
			return nil, fmt.Errorf("%w: tx %d (%s): %s", ErrSupply, i, v.Hash(), r.Log)
		}
		res.TxResults[i] = r
	}
	res.AppHash = fork.Hash()
	return res, nil
}
