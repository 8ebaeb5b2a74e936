package ledger

import (
	"fmt"

	"github.com/gridmind/gridmind"
)

// supplyTotals is the money held in accounts and jobs, kept by a base as
// blocks commit so that checking the supply equation after a block costs
// what the block changed, not a walk of every account and job. Sums are
// modulo 2^64: the state holds at most genesis supply + minted, which fits
// in 64 bits, so a sum can only wrap if money was created, and that is
// what the equation (and CheckInvariant's full walk) catches.
type supplyTotals struct {
	balances, stakes, unbonding, escrow gridmind.Amount
	accounts, jobs                      int
}

func (t *supplyTotals) addAccount(a *Account, sign int) {
	var unbonding gridmind.Amount
	for _, u := range a.Unbonding {
		unbonding += u.Amount
	}
	if sign < 0 {
		t.balances -= a.Balance
		t.stakes -= a.Stake
		t.unbonding -= unbonding
		t.accounts--
		return
	}
	t.balances += a.Balance
	t.stakes += a.Stake
	t.unbonding += unbonding
	t.accounts++
}

func (t *supplyTotals) addJob(j *Job, sign int) {
	if sign < 0 {
		t.escrow -= j.Escrow
		t.jobs--
		return
	}
	t.escrow += j.Escrow
	t.jobs++
}

// initSupply sets a new base's totals from a walk of its entries.
func (s *State) initSupply() {
	sup := s.SupplyOf()
	s.totals = supplyTotals{balances: sup.Balances, stakes: sup.Stakes, unbonding: sup.Unbonding,
		escrow: sup.Escrow, accounts: sup.Accounts, jobs: sup.Jobs}
}

// supplyDelta is what the layers of s above its base change in the
// base's totals, and the jobs they changed (for their books).
func (s *State) supplyDelta() (supplyTotals, []*Job) {
	var d supplyTotals
	var jobs []*Job
	b := s.base()
	// A single layer (chain/'s forks) needs no record of what a layer
	// closer to the top already counted.
	var seen map[string]bool
	if s.parent != nil && s.parent.parent != nil {
		seen = map[string]bool{}
	}
	first := func(k string) bool {
		if seen == nil {
			return true
		}
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	for l := s; l.parent != nil; l = l.parent {
		for k, a := range l.acct { // order does not matter: sums commute
			if !first(k) {
				continue
			}
			if old, ok := b.acct[k]; ok {
				d.addAccount(old, -1)
			}
			if a != nil {
				d.addAccount(a, +1)
			}
		}
		for k, j := range l.jobs { // order does not matter: sums commute; the smallest bad ID is reported
			if !first(k) {
				continue
			}
			if old, ok := b.jobs[k]; ok {
				d.addJob(old, -1)
			}
			if j != nil {
				d.addJob(j, +1)
				jobs = append(jobs, j)
			}
		}
	}
	return d, jobs
}

func (t supplyTotals) plus(d supplyTotals) supplyTotals {
	return supplyTotals{balances: t.balances + d.balances, stakes: t.stakes + d.stakes,
		unbonding: t.unbonding + d.unbonding, escrow: t.escrow + d.escrow,
		accounts: t.accounts + d.accounts, jobs: t.jobs + d.jobs}
}

// CheckSupply verifies the supply equation and the books of every job s
// changed, from the base's running totals and what s changed: its cost is
// the size of the change, so chain/ runs it after every block.
// CheckInvariant checks the same by walking the whole state and also
// cross-checks the running totals.
func (s *State) CheckSupply() error {
	d, jobs := s.supplyDelta()
	t := s.base().totals.plus(d)
	m := s.metaRef()
	total := t.balances + t.stakes + t.unbonding + t.escrow + m.SlashPool + m.Burned
	want, ok := m.GenesisSupply.AddChecked(m.Minted)
	if !ok || total != want {
		return fmt.Errorf("%w at height %d: balances %d + stakes %d + unbonding %d + escrow %d + slash pool %d + burned %d = %d (mod 2^64), want genesis %d + minted %d = %d",
			ErrSupply, s.height(), t.balances, t.stakes, t.unbonding, t.escrow, m.SlashPool, m.Burned, total, m.GenesisSupply, m.Minted, want)
	}
	var bad *Job
	for _, j := range jobs {
		if j.Escrow+j.Paid+j.Refunded != j.Spec.Budget && (bad == nil || j.ID < bad.ID) {
			bad = j // the smallest ID, so every validator reports the same job
		}
	}
	if bad != nil {
		return fmt.Errorf("%w: job %s: escrow %d + paid %d + refunded %d != budget %d", ErrSupply, bad.ID, bad.Escrow, bad.Paid, bad.Refunded, bad.Spec.Budget)
	}
	return nil
}

// checkTotals compares the running totals with a walk's (which the caller
// found consistent, so none of its sums saturated).
func (s *State) checkTotals(sup Supply) error {
	d, _ := s.supplyDelta()
	t := s.base().totals.plus(d)
	walked := supplyTotals{balances: sup.Balances, stakes: sup.Stakes, unbonding: sup.Unbonding,
		escrow: sup.Escrow, accounts: sup.Accounts, jobs: sup.Jobs}
	if t != walked {
		return fmt.Errorf("%w at height %d: running supply totals %+v disagree with the walk of the state %+v", ErrSupply, s.height(), t, walked)
	}
	return nil
}
