package market

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gridmind/gridmind"
)

// Placement is the outcome of placing a job, with the reason for every
// candidate: what `gridmind jobs explain ID` prints.
type Placement struct {
	Job        string            `json:"job"`
	Seed       int64             `json:"seed"`
	Workers    int               `json:"workers"`
	Chosen     []gridmind.NodeID `json:"chosen"`   // best first
	Feasible   int               `json:"feasible"` // candidates that passed every check
	Examined   int               `json:"examined"` // candidates the limit let the pipeline look at
	Candidates []Explanation     `json:"candidates"`

	// lazy, for a placement an Index made, is what Complete needs to fill
	// Feasible, Examined and Candidates.
	lazy *lazyExplanation
}

// Complete fills in the explanation (Feasible, Examined, Candidates) of a
// placement an Index made, which decides first and explains only when
// asked; it is a no-op for one Place made. WriteText, Explain and JSON
// encoding call it; code reading those fields directly calls it first.
// It is safe to call from several goroutines.
func (p *Placement) Complete() {
	if p.lazy == nil {
		return
	}
	p.lazy.once.Do(func() {
		full, _ := explainSnapshot(p.lazy.cands, p.lazy.spec, p.lazy.seed, p.lazy.weights)
		if full != nil {
			p.Feasible, p.Examined, p.Candidates = full.Feasible, full.Examined, full.Candidates
		}
		p.lazy.cands = candSnapshot{} // the snapshot is no longer needed
	})
}

// MarshalJSON encodes the completed placement.
func (p *Placement) MarshalJSON() ([]byte, error) {
	p.Complete()
	type plain Placement // without this method
	return json.Marshal((*plain)(p))
}

// Explanation says what placement thought of one candidate.
type Explanation struct {
	Node       gridmind.NodeID `json:"node"`
	Region     string          `json:"region"`
	Price      gridmind.Amount `json:"price_per_unit"`
	Examined   bool            `json:"examined"` // false: the limit was reached before this candidate
	Feasible   bool            `json:"feasible"`
	Rejections []Rejection     `json:"rejections,omitempty"` // every check it failed
	Scores     Scores          `json:"scores"`               // filled for every examined candidate
	Rank       int             `json:"rank,omitempty"`       // 1 = best feasible
	Chosen     bool            `json:"chosen,omitempty"`
}

// Rejection is one failed feasibility check.
type Rejection struct {
	Check  Check  `json:"check"`
	Reason string `json:"reason"`
}

// Scores are a candidate's ranking scores, each 0..1 with 1 best.
type Scores struct {
	Price      float64 `json:"price"`      // (cheapest+1)/(price+1) in µGRID per unit
	Reputation float64 `json:"reputation"` // reputation score
	Throughput float64 `json:"throughput"` // throughput / fastest
	Latency    float64 `json:"latency"`    // (fastest+10ms)/(latency+10ms); 0.5 when unknown
	Coverage   float64 `json:"coverage"`   // share of the job's energy surplus would cover (Energy.Coverage)
	Green      float64 `json:"green"`      // 1 - (1-coverage)*carbon/dirtiest carbon
	Base       float64 `json:"base"`       // weighted mean of price, reputation, throughput, latency
	Final      float64 `json:"final"`      // (1-g)*base + g*green for the job's green preference g
}

// normalizer holds the set-wide extremes each score is relative to,
// computed once per Scheduler so each placement only combines numbers.
type normalizer struct {
	minPrice   uint64
	maxTput    uint64
	minLatency float64 // smallest known latency, ms
	maxCarbon  float64 // dirtiest known grid, g/kWh
}

func newNormalizer(cands []Candidate) normalizer {
	var ex extremes
	ex.reset()
	for i := range cands {
		ex.add(&cands[i])
	}
	return ex.normalizer()
}

// extremes are the set-wide extremes as found, before the normalizer
// replaces an unknown dirtiest grid by 1. An Index keeps them to tell
// whether a changed candidate may have moved one.
type extremes struct {
	minPrice   uint64
	maxTput    uint64
	minLatency float64 // +Inf when no latency is known
	maxCarbon  float64 // 0 when no carbon intensity is known
}

func (ex *extremes) reset() {
	*ex = extremes{minPrice: math.MaxUint64, minLatency: math.Inf(1)}
}

func (ex *extremes) add(c *Candidate) {
	ex.minPrice = min(ex.minPrice, uint64(c.Offer.PricePerUnit))
	ex.maxTput = max(ex.maxTput, c.Offer.ThroughputMFLOPS)
	if l := finite(c.LatencyMs); l > 0 {
		ex.minLatency = min(ex.minLatency, l)
	}
	ex.maxCarbon = max(ex.maxCarbon, finite(c.Energy.CarbonGPerKWh))
}

func (ex *extremes) normalizer() normalizer {
	nz := normalizer{minPrice: ex.minPrice, maxTput: ex.maxTput, minLatency: ex.minLatency, maxCarbon: ex.maxCarbon}
	if nz.maxCarbon == 0 {
		nz.maxCarbon = 1
	}
	return nz
}

// latencySmoothingMs keeps 1 ms versus 2 ms from looking like a 2x difference.
const latencySmoothingMs = 10

func (nz *normalizer) scores(c *Candidate, w Weights) Scores {
	var s Scores
	s.Price = float64(nz.minPrice+1) / (float64(c.Offer.PricePerUnit) + 1)
	s.Reputation = float64(min(c.Reputation, 1_000_000)) / 1e6
	if nz.maxTput > 0 {
		s.Throughput = float64(c.Offer.ThroughputMFLOPS) / float64(nz.maxTput)
	}
	s.Latency = 0.5
	if l := finite(c.LatencyMs); l > 0 {
		s.Latency = (nz.minLatency + latencySmoothingMs) / (l + latencySmoothingMs)
	}
	s.Coverage = c.Energy.Coverage()
	carbon := finite(c.Energy.CarbonGPerKWh)
	if carbon == 0 { // unknown: assume the dirtiest grid seen, never a bonus
		carbon = nz.maxCarbon
	}
	s.Green = 1 - (1-s.Coverage)*min(carbon/nz.maxCarbon, 1)
	total := w.Price + w.Reputation + w.Throughput + w.Latency
	s.Base = (w.Price*s.Price + w.Reputation*s.Reputation + w.Throughput*s.Throughput + w.Latency*s.Latency) / total
	s.Final = s.Base
	return s
}

// explainChecks runs every check on candidate i and says why each failure failed.
func (s *Scheduler) explainChecks(i int, spec *gridmind.JobSpec, r *req) []Rejection {
	c, n := &s.cands[i], &s.nodes[s.pos[i]]
	var out []Rejection
	add := func(ch Check, format string, args ...any) {
		out = append(out, Rejection{Check: ch, Reason: fmt.Sprintf(format, args...)})
	}
	switch n.flag {
	case CheckDuplicate:
		add(CheckDuplicate, "node listed more than once; only its first listing is considered")
	case CheckBusy:
		add(CheckBusy, "busy with other work")
	}
	if r.restrict && s.marks.allowed[n.region] != r.stamp {
		add(CheckRegion, "region %q is not in regions_allowed %v", c.Offer.Region, spec.RegionsAllowed)
	}
	if s.marks.excluded[n.region] == r.stamp {
		add(CheckRegion, "region %q is in regions_excluded", c.Offer.Region)
	}
	if r.maxPrice > 0 && n.price > r.maxPrice {
		add(CheckPrice, "price %s is above max_price_per_unit %s", c.Offer.PricePerUnit.PerGFLOP(), spec.MaxPricePerUnit.PerGFLOP())
	}
	if n.memory < r.minMem {
		what := "memory"
		if s.opts.TrackMemory {
			what = "free memory"
		}
		add(CheckMemory, "%s %s is below min_memory_bytes %s", what, gib(n.memory), gib(r.minMem))
	}
	if n.tput < r.minTput {
		add(CheckThroughput, "throughput %d MFLOPS is below min_throughput_mflops %d", n.tput, r.minTput)
	}
	if n.stake < r.minStake {
		if pot := potStake(spec); pot > spec.MinStake {
			add(CheckStake, "stake %s does not exceed one round's pot of %s (budget/rounds): the ledger would refuse the lease", c.Stake, pot-1)
		} else {
			add(CheckStake, "stake %s is below min_stake %s", c.Stake, spec.MinStake)
		}
	}
	if n.rep < r.minRep {
		add(CheckReputation, "reputation %.2f is below min_reputation %.2f", float64(n.rep)/1e6, float64(r.minRep)/1e6)
	}
	return out
}

// countRejections adds to counts every check n fails, as explainChecks
// would list them, without saying why: an Index's error when too few
// nodes are feasible counts them over every candidate.
func (m *regionMarks) countRejections(n *node, r *req, counts *[numChecks]int) (feasible bool) {
	before := *counts
	if n.flag != CheckNone {
		counts[n.flag]++
	}
	if r.restrict && m.allowed[n.region] != r.stamp {
		counts[CheckRegion]++
	}
	if m.excluded[n.region] == r.stamp {
		counts[CheckRegion]++
	}
	if r.maxPrice > 0 && n.price > r.maxPrice {
		counts[CheckPrice]++
	}
	if n.memory < r.minMem {
		counts[CheckMemory]++
	}
	if n.tput < r.minTput {
		counts[CheckThroughput]++
	}
	if n.stake < r.minStake {
		counts[CheckStake]++
	}
	if n.rep < r.minRep {
		counts[CheckReputation]++
	}
	return *counts == before
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// sort orders the explanations: chosen and other feasible by rank, then
// rejected, then unexamined, each group by node id (already the order).
func (p *Placement) sort() {
	group := func(e *Explanation) int {
		switch {
		case e.Feasible:
			return 0
		case e.Examined:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(p.Candidates, func(a, b Explanation) int {
		if c := cmp.Compare(group(&a), group(&b)); c != 0 {
			return c
		}
		return cmp.Compare(a.Rank, b.Rank)
	})
}

// Explain returns the explanation for one node.
func (p *Placement) Explain(id gridmind.NodeID) (Explanation, bool) {
	p.Complete()
	for _, e := range p.Candidates {
		if e.Node == id {
			return e, true
		}
	}
	return Explanation{}, false
}

// rejectionSummary counts failed checks by kind: "region 5, price 3".
func (p *Placement) rejectionSummary() string {
	var counts [numChecks]int
	unexamined := 0
	for _, e := range p.Candidates {
		if !e.Examined {
			unexamined++
		}
		for _, r := range e.Rejections {
			counts[r.Check]++
		}
	}
	return rejectionSummary(&counts, unexamined)
}

func rejectionSummary(counts *[numChecks]int, unexamined int) string {
	var parts []string
	for ch, n := range counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", Check(ch), n))
		}
	}
	if unexamined > 0 {
		parts = append(parts, fmt.Sprintf("not examined %d", unexamined))
	}
	if len(parts) == 0 {
		return "no candidates"
	}
	return "rejections: " + strings.Join(parts, ", ")
}

// noCapacity is the error of a placement that found only feasible of n
// candidates feasible, summary saying why the others were rejected.
func noCapacity(spec *gridmind.JobSpec, feasible, n int, summary string) error {
	why := fmt.Sprintf("%d of %d candidates are feasible (%s)", feasible, n, summary)
	if feasible == n {
		// Nothing was rejected: the spec is not too strict, the
		// network is too small for it.
		why = fmt.Sprintf("there are only %d candidates, none rejected", n)
		if n == 0 {
			why = "there are no candidates"
		}
	}
	return gridmind.E(gridmind.KindUnavailable, "market.place", "%w: job %q needs %d workers; %s",
		ErrNoCapacity, spec.Name, spec.Workers, why)
}

// WriteText prints the placement as a table for people.
func (p *Placement) WriteText(w io.Writer) error {
	p.Complete()
	fmt.Fprintf(w, "job %q: %d of %d workers placed; %d candidates, %d examined, %d feasible; seed %d\n",
		p.Job, len(p.Chosen), p.Workers, len(p.Candidates), p.Examined, p.Feasible, p.Seed)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tNODE\tREGION\tµGRID/GFLOP\tFINAL\tBASE\tGREEN\tPRICE_S\tREP\tTPUT\tLAT\tCOVER\tDECISION")
	for _, e := range p.Candidates {
		rank := "-"
		if e.Rank > 0 {
			rank = fmt.Sprint(e.Rank)
		}
		decision := "feasible, not chosen"
		switch {
		case e.Chosen:
			decision = "CHOSEN"
		case !e.Examined:
			decision = "not examined (limit reached)"
		case !e.Feasible:
			reasons := make([]string, len(e.Rejections))
			for i, r := range e.Rejections {
				reasons[i] = r.Check.String() + ": " + r.Reason
			}
			decision = "rejected: " + strings.Join(reasons, "; ")
		}
		sc := e.Scores
		if !e.Examined {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t\t\t\t\t\t\t\t\t%s\n", rank, e.Node.Short(), e.Region, uint64(e.Price), decision)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%s\n", rank, e.Node.Short(), e.Region, uint64(e.Price),
			sc.Final, sc.Base, sc.Green, sc.Price, sc.Reputation, sc.Throughput, sc.Latency, sc.Coverage, decision)
	}
	return tw.Flush()
}
