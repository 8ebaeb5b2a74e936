// Package byzantine measures DiLoCo training under attack: K workers on the
// in-memory transport, some of them adversaries that deviate in their
// pseudo-gradient (through their trainer) or anywhere in the round
// protocol (through diloco.Config.Tamper), for each combine rule. It
// reports the final held-out loss against a clean run with the same seed
// and rule, how many rounds it took until every attacker was excluded, and
// whether any honest worker was excluded or rejected. `gridmind bench
// byzantine` runs it on the built-in MLP; the tests run it on the toy model.
package byzantine

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/internal/dilocotest"
	"github.com/gridmind/gridmind/train"
)

// Attack names one way to deviate.
type Attack string

// The attacks of the harness. The first four change the pseudo-gradient
// (and pass every signature check); the rest break the round protocol.
const (
	None          Attack = "none"
	SignFlip      Attack = "sign-flip"
	SignFlipX10   Attack = "sign-flip-x10"
	Noise         Attack = "noise"
	FreeRider     Attack = "free-rider"
	ForgedReduced Attack = "forged-reduced"
	Equivocate    Attack = "equivocation"
	PartMismatch  Attack = "part-mismatch"
)

// Attacks lists every attack but None.
var Attacks = []Attack{SignFlip, SignFlipX10, Noise, FreeRider, ForgedReduced, Equivocate, PartMismatch}

// ParseAttacks reads a comma-separated list ("all" for Attacks).
func ParseAttacks(s string) ([]Attack, error) {
	if s == "all" || s == "" {
		return Attacks, nil
	}
	var out []Attack
	for _, name := range strings.Split(s, ",") {
		a := Attack(strings.TrimSpace(name))
		if !slices.Contains(Attacks, a) {
			return nil, fmt.Errorf("attack %q unknown (want %s)", a, joinAttacks())
		}
		out = append(out, a)
	}
	return out, nil
}

func joinAttacks() string {
	var s []string
	for _, a := range Attacks {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

// Rule is a combine rule with its screen.
type Rule struct {
	Name     string
	Combiner train.Combiner
	Screen   train.Screen
}

// DefaultRules are the rules the benchmark compares: the network default
// (centered clipping behind the screen), the screen with the other
// combiners, and plain mean without a screen, the old default.
func DefaultRules() []Rule {
	s := train.DefaultScreen()
	return []Rule{
		{"centered-clip+screen (default)", train.CenteredClip{}, s},
		{"mean+screen", train.Mean{}, s},
		{"median+screen", train.Median{}, s},
		{"trimmed-mean+screen", train.TrimmedMean{Fraction: 0.2}, s},
		{"mean, no screen", train.Mean{}, train.Screen{}},
	}
}

// Options configure a run.
type Options struct {
	NewTrainer  func() (gridmind.Trainer, error)
	Batches     func(workers, worker int, round uint64) gridmind.BatchSource
	EvalBatches []gridmind.Batch
	// Setups are (workers, attackers) pairs, e.g. {5,1} and {10,2}.
	Setups     [][2]int
	Attacks    []Attack
	Rules      []Rule
	Seeds      []int64
	Rounds     int
	InnerSteps int
	Codec      train.Codec
	Logger     *slog.Logger
}

// Row is one (setup, rule, attack, seed) result.
type Row struct {
	Workers, Attackers int
	Rule               string
	Attack             Attack
	Seed               int64
	FinalLoss          float64
	CleanLoss          float64
	Ratio              float64 // FinalLoss / CleanLoss
	// ExcludedAfter is the number of rounds until every attacker was out
	// for good (-1: some attacker took part in the last round).
	ExcludedAfter int
	// HonestRejected counts rounds in which the screen rejected an honest
	// worker. HonestLeftOut counts rounds honest workers sat out (a
	// deadline passed them, or they held another state), CleanLeftOut the
	// same in the clean run: on a loaded machine deadlines leave workers out
	// with no attacker at all, so only the difference is the attack's.
	HonestRejected, HonestLeftOut, CleanLeftOut int
	Wall                                        time.Duration
}

// Report is every row.
type Report struct {
	Date   time.Time
	Rounds int
	H      int
	Params int
	Rows   []Row
}

// benchTiming waits long enough on a loaded 2-core machine that no honest
// part misses a deadline, and short enough that a round whose attacker was
// excluded mid-round (its parts are refused from then on) does not stall.
var benchTiming = train.Timing{
	ReadySlack: 0.5, MinReadyWait: time.Second, MaxReadyWait: time.Minute, LeaderGrace: 2 * time.Second,
	ResendEvery: 500 * time.Millisecond, ExchangeSlack: 5, MinExchangeWait: 3 * time.Second, MaxExchangeWait: time.Minute,
}

// Run measures every combination; progress gets a line per run.
func Run(ctx context.Context, o Options, progress func(string)) (Report, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Codec == 0 {
		o.Codec = train.CodecInt8
	}
	rep := Report{Date: time.Now().UTC(), Rounds: o.Rounds, H: o.InnerSteps}
	for _, setup := range o.Setups {
		k, bad := setup[0], setup[1]
		if k < 3 || bad < 1 || 2*bad >= k {
			return rep, fmt.Errorf("byzantine: %d workers with %d attackers: want k ≥ 3 and fewer than half attacking", k, bad)
		}
		for _, rule := range o.Rules {
			for _, seed := range o.Seeds {
				clean, err := runOne(ctx, o, k, bad, rule, None, seed)
				if err != nil {
					return rep, err
				}
				rep.Params = clean.params
				for _, attack := range o.Attacks {
					res, err := runOne(ctx, o, k, bad, rule, attack, seed)
					if err != nil {
						return rep, err
					}
					row := Row{Workers: k, Attackers: bad, Rule: rule.Name, Attack: attack, Seed: seed,
						FinalLoss: res.loss, CleanLoss: clean.loss, Ratio: res.loss / clean.loss,
						ExcludedAfter: res.excludedAfter, HonestRejected: res.honestRejected, HonestLeftOut: res.honestLeftOut,
						CleanLeftOut: clean.honestLeftOut, Wall: res.wall}
					rep.Rows = append(rep.Rows, row)
					progress(fmt.Sprintf("K=%d (%d attacking) %s, %s, seed %d: loss %.4f vs clean %.4f (×%.3f), attackers out after %s",
						k, bad, rule.Name, attack, seed, row.FinalLoss, row.CleanLoss, row.Ratio, excludedText(row.ExcludedAfter)))
				}
			}
		}
	}
	return rep, nil
}

func excludedText(n int) string {
	if n < 0 {
		return "never"
	}
	return fmt.Sprintf("%d rounds", n)
}

type result struct {
	loss           float64
	excludedAfter  int
	honestRejected int
	honestLeftOut  int
	params         int
	wall           time.Duration
}

func keys(k int, seed int64) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	return dilocotest.Keys(rand.New(rand.NewSource(seed*7919+int64(k))), k)
}

// runOne trains one job; the attackers are the last bad workers by id.
func runOne(ctx context.Context, o Options, k, bad int, rule Rule, attack Attack, seed int64) (result, error) {
	ks, ids := keys(k, seed)
	order := slices.Clone(ids)
	slices.Sort(order)
	attackers := map[gridmind.NodeID]bool{}
	if attack != None {
		for _, id := range order[k-bad:] {
			attackers[id] = true
		}
	}
	trainers, closeAll, err := dilocotest.Trainers(k, o.NewTrainer)
	defer closeAll()
	if err != nil {
		return result{}, err
	}
	initial, err := diloco.InitialState(trainers[0], ids)
	if err != nil {
		return result{}, err
	}
	net := dilocotest.NewMemNetwork[diloco.Handler]()
	proto := train.Config{Codec: o.Codec, Combiner: rule.Combiner, Screen: rule.Screen, Timing: benchTiming}
	var mu sync.Mutex
	participants := map[uint64][]gridmind.NodeID{} // per round, as the first honest worker saw it
	honestHurt := map[uint64]bool{}                // rounds in which an honest worker was rejected
	workers := make([]*diloco.Worker, k)
	for i := range workers {
		worker, id := i, ids[i]
		trainer := trainers[i]
		if attackers[id] {
			trainer = &attackTrainer{Trainer: trainer, attack: attack, rng: rand.New(rand.NewSource(seed + int64(i)))}
		}
		cfg := diloco.Config{
			Job: "byzantine", Key: ks[i], Trainer: trainer, Workers: ids, Initial: initial,
			Batches:    func(round uint64) gridmind.BatchSource { return o.Batches(k, worker, round+uint64(seed)*1_000_003) },
			InnerSteps: o.InnerSteps, Rounds: uint64(o.Rounds), Transport: net.Join(id), Protocol: proto,
			Linger: 50 * time.Millisecond, TickEvery: 20 * time.Millisecond, Logger: o.Logger,
		}
		if attackers[id] {
			cfg.Tamper = tamper(attack, ks[i], id, ids)
		} else {
			cfg.Progress = func(p diloco.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if worker == firstHonest(ids, attackers) {
					participants[p.Round] = p.Members
				}
				for _, r := range p.Rejected {
					if !attackers[r.Worker] {
						honestHurt[p.Round] = true
					}
				}
			}
		}
		if i == firstHonest(ids, attackers) {
			cfg.EvalBatches = o.EvalBatches
		}
		if workers[i], err = diloco.NewWorker(cfg); err != nil {
			return result{}, err
		}
	}
	start := time.Now()
	honestCtx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	attackCtx, cancelAttack := context.WithCancel(honestCtx)
	summaries := make([]diloco.Summary, k)
	errs := make([]error, k)
	var honest, adversaries sync.WaitGroup
	for i, w := range workers {
		if attackers[ids[i]] {
			adversaries.Go(func() { summaries[i], errs[i] = w.Run(attackCtx) })
		} else {
			honest.Go(func() { summaries[i], errs[i] = w.Run(honestCtx) })
		}
	}
	honest.Wait()
	cancelAttack()
	adversaries.Wait()
	res := result{wall: time.Since(start), params: len(initial.Theta), excludedAfter: -1}
	first := firstHonest(ids, attackers)
	excludedRounds := 0
	for i, s := range summaries {
		if attackers[ids[i]] {
			continue
		}
		if errs[i] != nil {
			return result{}, fmt.Errorf("byzantine %s/%s: honest worker %d: %w", rule.Name, attack, i, errs[i])
		}
		if s.StateHash != summaries[first].StateHash {
			return result{}, fmt.Errorf("byzantine %s/%s: honest workers disagree on the final state", rule.Name, attack)
		}
		excludedRounds += s.Excluded
	}
	// Every honest worker holds the same final state; one that took it
	// from a peer's state at the end (left out of the last round) did not
	// evaluate it, so the loss is the first honest worker's that did.
	res.loss = math.NaN()
	for i, s := range summaries {
		if !attackers[ids[i]] && !math.IsNaN(s.EvalLoss) {
			res.loss = s.EvalLoss
			break
		}
	}
	if math.IsNaN(res.loss) {
		return result{}, fmt.Errorf("byzantine %s/%s: no honest worker evaluated the final state", rule.Name, attack)
	}
	res.honestLeftOut, res.honestRejected = excludedRounds, len(honestHurt)
	if attack == None {
		res.excludedAfter = 0
		return res, nil
	}
	res.excludedAfter = excludedAfter(participants, attackers, o.Rounds)
	return res, nil
}

func firstHonest(ids []gridmind.NodeID, attackers map[gridmind.NodeID]bool) int {
	for i, id := range ids {
		if !attackers[id] {
			return i
		}
	}
	return 0
}

// excludedAfter reads, from an honest worker's summary, the first round
// from which on no attacker took part: the round after the last round that
// named an attacker among its participants.
func excludedAfter(participants map[uint64][]gridmind.NodeID, attackers map[gridmind.NodeID]bool, rounds int) int {
	last := -1
	for r, ps := range participants {
		for _, p := range ps {
			if attackers[p] {
				last = max(last, int(r))
			}
		}
	}
	if last+1 >= rounds {
		return -1
	}
	return last + 1
}

// attackTrainer trains honestly, then reports weights that give the
// attack's pseudo-gradient.
type attackTrainer struct {
	gridmind.Trainer
	attack Attack
	rng    *rand.Rand
	start  []float32
}

func (a *attackTrainer) SetParams(flat []float32) error {
	a.start = slices.Clone(flat)
	return a.Trainer.SetParams(flat)
}

func (a *attackTrainer) TrainSteps(ctx context.Context, n int, src gridmind.BatchSource) (gridmind.TrainStats, error) {
	if a.attack == FreeRider {
		// Claims the work without doing it.
		return gridmind.TrainStats{Steps: n, Tokens: int64(n) * 1000}, nil
	}
	return a.Trainer.TrainSteps(ctx, n, src)
}

func (a *attackTrainer) Params() ([]float32, error) {
	local, err := a.Trainer.Params()
	if err != nil || a.start == nil {
		return local, err
	}
	out := make([]float32, len(local))
	switch a.attack {
	case SignFlip, SignFlipX10:
		s := float32(1)
		if a.attack == SignFlipX10 {
			s = 10
		}
		for i := range out { // Δ' = −s·Δ, where Δ = start − local
			out[i] = a.start[i] + s*(a.start[i]-local[i])
		}
	case Noise:
		var sum float64
		for i := range local {
			d := float64(a.start[i] - local[i])
			sum += d * d
		}
		sigma := 10 * math.Sqrt(sum/float64(len(local))) // ten times the honest update's size
		for i := range out {
			out[i] = a.start[i] + float32(sigma*a.rng.NormFloat64())
		}
	case FreeRider:
		copy(out, a.start)
	default:
		copy(out, local)
	}
	return out, nil
}

// tamper returns the protocol deviation of attack for worker self.
func tamper(attack Attack, key ed25519.PrivateKey, self gridmind.NodeID, ids []gridmind.NodeID) func(train.Message) []train.Message {
	switch attack {
	case ForgedReduced:
		return func(m train.Message) []train.Message {
			out := []train.Message{m}
			if m.Type != train.MsgPart || m.Payload == nil {
				return out
			}
			// Its own pseudo-gradient as the "combined" result of every part
			// it does not reduce, to everyone, ahead of the real reducer.
			fake := train.Message{Type: train.MsgReduced, From: self, Round: m.Round, Part: m.Part, Membership: m.Membership,
				Contributors: []gridmind.NodeID{self}, Payload: m.Payload}
			train.SignReduced(key, "byzantine", self, &fake)
			for _, id := range ids {
				if id != self && id != m.To {
					f := fake
					f.To = id
					out = append([]train.Message{f}, out...)
				}
			}
			return out
		}
	case Equivocate:
		return func(m train.Message) []train.Message {
			// Half of the workers get another result for its part.
			if m.Type != train.MsgReduced || m.To == "" || !lowerHalf(ids, m.To) || len(m.Payload) < 8 {
				return []train.Message{m}
			}
			other := m
			other.Payload = slices.Clone(m.Payload)
			other.Payload[len(other.Payload)-1] ^= 0x01
			train.SignReduced(key, "byzantine", self, &other)
			return []train.Message{other}
		}
	case PartMismatch:
		return func(m train.Message) []train.Message {
			// It sends its reducers a part that is not the one it committed to.
			if m.Type != train.MsgPart || m.Payload == nil || m.To == self || len(m.Payload) < 8 {
				return []train.Message{m}
			}
			m.Payload = slices.Clone(m.Payload)
			m.Payload[len(m.Payload)-1] ^= 0x02
			train.SignPart(key, "byzantine", &m)
			return []train.Message{m}
		}
	}
	return nil
}

func lowerHalf(ids []gridmind.NodeID, id gridmind.NodeID) bool {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	return slices.Index(sorted, id) < len(sorted)/2
}

// Markdown renders the report: one table per setup.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s; %d parameters; %d rounds of H=%d.\n\n", r.Date.Format("2006-01-02"), r.Params, r.Rounds, r.H)
	b.WriteString("| K | attackers | rule | attack | seed | final loss | clean | ratio | attackers out after | honest rejected | honest left out (clean run) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %d | %.4f | %.4f | %.3f | %s | %d | %d (%d) |\n", row.Workers, row.Attackers, row.Rule, row.Attack, row.Seed,
			row.FinalLoss, row.CleanLoss, row.Ratio, excludedText(row.ExcludedAfter), row.HonestRejected, row.HonestLeftOut, row.CleanLeftOut)
	}
	return b.String()
}

// Worst summarises, per rule, the largest loss ratio over attacks and seeds.
func (r Report) Worst() map[string]float64 {
	out := map[string]float64{}
	for _, row := range r.Rows {
		out[row.Rule] = max(out[row.Rule], row.Ratio)
	}
	return out
}
