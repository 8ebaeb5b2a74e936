package ledger

import (
	"math"
	"math/bits"

	"github.com/gridmind/gridmind"
)

// Typed accessors. Getters return copies (slices included), so a caller may
// change what it got and put it back without touching a lower layer.

// lookup is get for the key prefix+id without building the key as a
// string: reading accounts, providers, jobs and reputation is what the
// ledger does most, and the concatenation was an allocation per read.
func lookup[V any](s *State, sel func(*State) table[V], prefix, id string) (*V, bool) {
	var buf [96]byte
	key := append(append(buf[:0], prefix...), id...)
	for l := s; l != nil; l = l.parent {
		if v, ok := sel(l)[string(key)]; ok { // no allocation: Go looks up string(bytes) in place
			return v, v != nil
		}
	}
	return nil, false
}

func (s *State) account(id gridmind.NodeID) (Account, bool) {
	p, ok := lookup(s, selAcct, prefixAccount, string(id))
	if !ok {
		return Account{Address: id}, false
	}
	return p.clone(), true
}

func (s *State) setAccount(a Account) { put(s, refAcct, prefixAccount+string(a.Address), a) }

func (s *State) provider(id gridmind.NodeID) (Provider, bool) {
	p, ok := lookup(s, selProv, prefixProvider, string(id))
	if !ok {
		return Provider{}, false
	}
	return p.clone(), true
}

func (s *State) setProvider(p Provider) { put(s, refProv, prefixProvider+string(p.Offer.Node), p) }

func (s *State) job(id JobID) (Job, bool) {
	p, ok := lookup(s, selJobs, prefixJob, string(id))
	if !ok {
		return Job{}, false
	}
	return p.clone(), true
}

func (s *State) setJob(j Job) { put(s, refJobs, prefixJob+string(j.ID), j) }

func (s *State) receipt(job JobID, round uint64) (Receipt, bool) {
	p, ok := get(s, selRcpt, receiptKey(job, round))
	if !ok {
		return Receipt{}, false
	}
	return p.clone(), true
}

func (s *State) setReceipt(r Receipt) { put(s, refRcpt, receiptKey(r.Job, r.Round), r) }

func (s *State) reputation(id gridmind.NodeID) Reputation {
	p, ok := lookup(s, selRep, prefixReputation, string(id))
	if !ok {
		return Reputation{Node: id}
	}
	return *p
}

func (s *State) setReputation(r Reputation) { put(s, refRep, prefixReputation+string(r.Node), r) }

// metaRef returns the meta entry for reading only.
func (s *State) metaRef() *Meta {
	p, ok := get(s, selMeta, keyMeta)
	if !ok {
		return &Meta{}
	}
	return p
}

func (s *State) setMeta(m Meta) { put(s, refMeta, keyMeta, m) }

func (s *State) height() int64 { return s.metaRef().Height }

// credit adds amount to id's balance, creating the account if needed. It
// cannot overflow while the supply invariant holds (every balance is at
// most the supply, which fits in 64 bits); if it would, the state is
// already broken and the transaction fails as internal.
func (s *State) credit(id gridmind.NodeID, amount gridmind.Amount) *TxError {
	a, _ := s.account(id)
	nb, ok := a.Balance.AddChecked(amount)
	if !ok {
		return reject(CodeInternal, "balance of %s overflows", id.Short())
	}
	a.Balance = nb
	s.setAccount(a)
	return nil
}

// mulDiv returns a*b/c rounded down, without overflow in the product; the
// result fits because every caller has b ≤ c.
func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

func satAdd(a, b uint64) uint64 {
	if s, carry := bits.Add64(a, b, 0); carry == 0 {
		return s
	}
	return math.MaxUint64
}
