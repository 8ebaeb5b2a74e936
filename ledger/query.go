package ledger

import (
	"cmp"
	"slices"

	"github.com/gridmind/gridmind"
)

// The query functions read the state as seen from s and return plain,
// JSON-ready values (copies: changing them changes nothing).

// AccountView is an account with what a wallet wants next to it.
type AccountView struct {
	Account
	Exists         bool            `json:"exists"` // false: never funded (all zero)
	UnbondingTotal gridmind.Amount `json:"unbonding_total"`
	Provider       *Provider       `json:"provider,omitempty"`
	Reputation     Reputation      `json:"reputation"`
}

// Account returns the account id; an unknown account comes back zero with
// Exists false.
func (s *State) Account(id gridmind.NodeID) AccountView {
	a, ok := s.account(id)
	v := AccountView{Account: a, Exists: ok, UnbondingTotal: a.UnbondingTotal(), Reputation: s.reputation(id)}
	if p, ok := s.provider(id); ok {
		v.Provider = &p
	}
	return v
}

// Job returns job id.
func (s *State) Job(id JobID) (Job, bool) { return s.job(id) }

// JobFilter selects jobs; zero fields match everything.
type JobFilter struct {
	Requester gridmind.NodeID `json:"requester,omitempty"`
	Provider  gridmind.NodeID `json:"provider,omitempty"` // ever leased to the job
	State     JobState        `json:"state,omitempty"`
	Limit     int             `json:"limit,omitempty"` // 0: no limit
}

// Jobs lists jobs matching f, newest first (then by id).
func (s *State) Jobs(f JobFilter) []Job {
	var out []Job
	for _, k := range s.allKeys(prefixJob) {
		p, _ := get(s, selJobs, k)
		if f.Requester != "" && p.Requester != f.Requester || f.State != "" && p.State != f.State {
			continue
		}
		if f.Provider != "" && !slices.ContainsFunc(p.Leases, func(l Lease) bool { return l.Provider == f.Provider }) {
			continue
		}
		out = append(out, p.clone())
	}
	slices.SortStableFunc(out, func(a, b Job) int {
		if c := cmp.Compare(b.PostedHeight, a.PostedHeight); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// Provider returns the registered provider id.
func (s *State) Provider(id gridmind.NodeID) (Provider, bool) { return s.provider(id) }

// Providers lists all registered providers by node id.
func (s *State) Providers() []Provider {
	var out []Provider
	for _, k := range s.allKeys(prefixProvider) {
		p, _ := get(s, selProv, k)
		out = append(out, p.clone())
	}
	return out
}

// ProviderLease is one lease of a provider, with its job.
type ProviderLease struct {
	Job JobID `json:"job"`
	Lease
}

// LeasesOf lists every lease provider ever held, newest job first.
func (s *State) LeasesOf(provider gridmind.NodeID) []ProviderLease {
	var out []ProviderLease
	for _, j := range s.Jobs(JobFilter{Provider: provider}) {
		for _, l := range j.Leases {
			if l.Provider == provider {
				out = append(out, ProviderLease{Job: j.ID, Lease: l})
			}
		}
	}
	return out
}

// Receipt returns the receipt of one round.
func (s *State) Receipt(job JobID, round uint64) (Receipt, bool) { return s.receipt(job, round) }

// Receipts lists a job's receipts by round.
func (s *State) Receipts(job JobID) []Receipt {
	var out []Receipt
	for _, k := range s.allKeys(prefixReceipt + string(job) + "/") {
		p, _ := get(s, selRcpt, k)
		out = append(out, p.clone())
	}
	return out
}

// Reputation returns the raw reputation counters of id (zero if none).
func (s *State) Reputation(id gridmind.NodeID) Reputation { return s.reputation(id) }

// Reputations lists every reputation record by node id.
func (s *State) Reputations() []Reputation {
	var out []Reputation
	for _, k := range s.allKeys(prefixReputation) {
		p, _ := get(s, selRep, k)
		out = append(out, *p)
	}
	return out
}

// Slashes lists every slash by evidence hash.
func (s *State) Slashes() []SlashRecord {
	var out []SlashRecord
	for _, k := range s.allKeys(prefixSlash) {
		p, _ := get(s, selSlash, k)
		out = append(out, *p)
	}
	return out
}

// Validators lists the validator accounts named at genesis.
func (s *State) Validators() []Validator { return slices.Clone(s.metaRef().Validators) }
