package sim

import (
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// The money side of a run goes through the production ledger: every
// policy's runner owns a ledger.State and sends it the transactions the
// product sends — RegisterProvider, PostJob (escrow), AssignLease (with
// the provider's real signed acceptance), SubmitReceipt and SettleRound
// (payment at the reputation multiplier), Dispute for an audit that
// caught a cheater (its pay withheld, its stake slashed), AttestUptime
// and, for jobs still open when the run ends, CancelJob. Payments,
// balances, stakes and the reputation placement reads all come from that
// state, and its supply invariant is checked at the end.
//
// Blocks are one second apart, as reputation's half-lives assume: each
// step's transactions go in the step's first block, and the empty blocks
// in between are begun one by one so the ledger's height, time, unbonding
// and held rounds move as on a chain.
//
// Audits. A caught cheater is disputed with ledger.Dispute from an
// auditor account the genesis names a slasher, which reaches the same
// DisputeRound a FraudProof does (pay withheld, stake slashed). The
// product files a FraudProof; the sim does not, because its committee
// draw lists every provider (auditCandidates), which on a ledger fork
// holding the run re-sorts and re-encodes every change for each proof.
//
// Signatures. The sim is every sender, so the envelope signature of a
// transaction it builds and checks in one process proves nothing; signing
// and verifying a million receipts a policy with ed25519 would cost more
// than the rest of the run. So the sim hands ledger.Verify its VerifyFunc
// hook (the one chain/ uses to inject its own verifier) with trustSender,
// which accepts the envelope signature; everything after Verify — nonces,
// fees, every check of State.Apply — is the production path. Signatures
// inside transactions, which the ledger checks itself (a provider's lease
// acceptance), are real: each node has its own ed25519 key.

// simChainID names the simulated chain.
const simChainID = "gridmind-sim"

// pricePerGFLOP is what simulated jobs budget per unit of useful work, in
// µGRID per GFLOP: one TFLOP/s device earns 3.6 GRID an hour. It keeps a
// full round's pot (the most a cheating round could take) well under the
// providers' stakes, which a lease requires (ledger.AssignLease).
const pricePerGFLOP = 1

// leaseCap is the most leases a simulated job's spec allows. The ledger
// has no transaction that ends one lease (only the job's end, or a fraud
// exclusion, ends them), so a worker that crashed or was shed keeps its
// lease and the job's replacements need room of their own.
const leaseCap = 64

// trustSender is the VerifyFunc the sim gives ledger.Verify: see above.
func trustSender(ed25519.PublicKey, []byte, []byte) bool { return true }

// simMultiplier is app.LedgerOptions' Multiplier (sim may not import app):
// settlement pays each participant its share scaled by its reputation
// multiplier, 0.5× for a node with no record up to 1.0×.
func simMultiplier(r ledger.Reputation) uint64 { return r.Score(0).Multiplier }

// keyOf is node i's key, from the seed: the same under every policy.
func keyOf(seed int64, role string, i int) ed25519.PrivateKey {
	h := sha256.New()
	h.Write([]byte("gridmind/sim/key/v1\x00" + role + "\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(seed)))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return ed25519.NewKeyFromSeed(h.Sum(nil))
}

func idOf(k ed25519.PrivateKey) gridmind.NodeID {
	return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
}

// LedgerResult is what the ledger saw of one policy's run.
type LedgerResult struct {
	Height      int64            `json:"height"`
	Txs         int              `json:"txs"`
	Refused     map[string]int   `json:"refused,omitempty"` // by result code
	Supply      ledger.Supply    `json:"supply"`
	Invariant   string           `json:"invariant"` // "ok" or what broke
	PaidGRID    float64          `json:"paid_grid"` // to providers, out of escrow
	Refunded    float64          `json:"refunded_grid"`
	SlashedGRID float64          `json:"slashed_grid"`
	FeesGRID    float64          `json:"fees_burned_grid"`
	Receipts    int              `json:"receipts"`
	Leases      int              `json:"leases"`
	Disputes    int              `json:"disputes"`
	Hardware    []HardwareLedger `json:"hardware,omitempty"`
}

// HardwareLedger compares honest and cheating providers of one device
// class (the device's draw sets its throughput) at the end of the run:
// mean stake and balance (GRID).
type HardwareLedger struct {
	Device         string  `json:"device"`
	Honest         int     `json:"honest"`
	Cheaters       int     `json:"cheaters"`
	HonestStake    float64 `json:"honest_stake_grid"`
	CheaterStake   float64 `json:"cheater_stake_grid"`
	HonestBalance  float64 `json:"honest_balance_grid"`
	CheaterBalance float64 `json:"cheater_balance_grid"`
}

// simChain is one policy's ledger and the sim's book of what it sent.
type simChain struct {
	w         *world
	base      *ledger.State
	fork      *ledger.State // the block being built; committed now and then
	height    int64
	requester gridmind.NodeID
	auditor   gridmind.NodeID
	observers []gridmind.NodeID
	nonces    map[gridmind.NodeID]uint64
	jobIDs    []ledger.JobID // by sim job index; "" until posted
	pending   []pendingReceipt
	paid      gridmind.Amount // paid to providers since the runner last took it
	out       LedgerResult
}

type pendingReceipt struct {
	job   int32
	round uint64
	from  int64 // first height it may settle
}

// newSimChain builds the genesis: every node (joiners included) with its
// stake and the fee of its registration, one requester holding every
// job's budget, one auditor allowed to file disputes, and the uptime
// observers; then registers every provider in block 1.
func newSimChain(w *world) (*simChain, error) {
	c := &simChain{w: w, nonces: map[gridmind.NodeID]uint64{}, jobIDs: make([]ledger.JobID, len(w.jobs))}
	params := ledger.DefaultParams()
	c.requester = idOf(keyOf(w.cfg.Seed, "requester", 0))
	c.auditor = idOf(keyOf(w.cfg.Seed, "auditor", 0))
	params.Slashers = []gridmind.NodeID{c.auditor}
	var budgets gridmind.Amount
	for j := range w.jobs {
		budgets += w.jobs[j].budget
	}
	accounts := make([]ledger.GenesisAccount, 0, len(w.nodes)+64)
	for i := range w.nodes {
		accounts = append(accounts, ledger.GenesisAccount{Address: w.nodes[i].id, Balance: params.TxFee, Stake: w.nodes[i].stake})
	}
	// Fees: a receipt and a settlement per round, a lease per worker;
	// a generous bound, the rest stays with the requester.
	fees := params.TxFee * gridmind.Amount(64*len(w.jobs)+1000)
	for _, job := range w.jobs {
		fees += params.TxFee * gridmind.Amount(2*job.rounds)
	}
	accounts = append(accounts,
		ledger.GenesisAccount{Address: c.requester, Balance: budgets + fees},
		ledger.GenesisAccount{Address: c.auditor, Balance: 1000 * gridmind.UnitsPerGRID})
	for k := 0; k*ledger.MaxParticipants < len(w.nodes); k++ {
		id := idOf(keyOf(w.cfg.Seed, "observer", k))
		c.observers = append(c.observers, id)
		accounts = append(accounts, ledger.GenesisAccount{Address: id, Balance: 100 * gridmind.UnitsPerGRID, Stake: 10 * params.MinAttestStake})
	}
	base, err := ledger.NewState(ledger.Genesis{ChainID: simChainID, Params: params, Accounts: accounts}, ledger.Options{Multiplier: simMultiplier})
	if err != nil {
		return nil, fmt.Errorf("sim: ledger genesis: %w", err)
	}
	c.base, c.fork = base, base.Fork()
	if err := c.beginBlock(1); err != nil {
		return nil, err
	}
	for i := range w.nodes {
		n := &w.nodes[i]
		offer := gridmind.Offer{Hardware: gridmind.Hardware{MemoryBytes: n.memory}, ThroughputMFLOPS: uint64(n.tflops * 1e6),
			PricePerUnit: n.price, Region: n.region, EnergyZone: n.profile.Zone}
		if res := c.send(n.id, &ledger.RegisterProvider{Offer: offer}); res.Code != ledger.CodeOK {
			return nil, fmt.Errorf("sim: register provider %d: %s", i, res.Log)
		}
	}
	return c, nil
}

// heightOf is the height of step s's first block: one block a second.
func (c *simChain) heightOf(s int) int64 { return 2 + int64(s)*int64(c.w.cfg.Step/time.Second) }

func (c *simChain) beginBlock(h int64) error {
	t := c.w.start.Unix() + h
	if _, err := c.fork.BeginBlockAt(h, t, ""); err != nil {
		return fmt.Errorf("sim: ledger block %d: %w", h, err)
	}
	c.height = h
	return nil
}

// commitEvery is how often (in blocks) the fork is folded into the base:
// a commit hashes the whole state, so not every block, but often enough
// that the fork's record of removed entries stays small.
const commitEvery = 24 * 3600

// beginStep runs the empty blocks up to step s's first block and begins
// it, then settles every receipt whose dispute window has closed.
func (c *simChain) beginStep(s int) error {
	target := c.heightOf(s)
	for h := c.height + 1; h <= target; h++ {
		if h%commitEvery == 0 {
			c.base.Commit(c.fork)
			c.fork = c.base.Fork()
		}
		if err := c.beginBlock(h); err != nil {
			return err
		}
	}
	keep := c.pending[:0]
	for _, p := range c.pending {
		if p.from > c.height {
			keep = append(keep, p)
			continue
		}
		// A job that ended has its held rounds settled by BeginBlock, so a
		// settlement may find its round already paid: nothing to do.
		if r, ok := c.fork.Receipt(c.jobIDs[p.job], p.round); ok && !r.Settled {
			c.send(c.requester, &ledger.SettleRound{Job: c.jobIDs[p.job], Round: p.round})
		}
	}
	c.pending = keep
	return nil
}

// send applies body from sender on the block being built and returns the
// ledger's result; a refusal is counted by its code.
func (c *simChain) send(from gridmind.NodeID, body ledger.Body) ledger.TxResult {
	tx := &ledger.Tx{ChainID: simChainID, From: from, Nonce: c.nonces[from], Body: body, Sig: make([]byte, ed25519.SignatureSize)}
	c.out.Txs++
	v, err := ledger.Verify(simChainID, tx.Encode(), trustSender)
	if err != nil {
		c.refused(ledger.CodeOf(err))
		return ledger.TxResult{Code: ledger.CodeOf(err), Log: err.Error()}
	}
	res := c.fork.Apply(v)
	if res.Code != ledger.CodeOK {
		c.refused(res.Code)
		return res
	}
	c.nonces[from]++
	for _, ev := range res.Events {
		if ev.Kind == "paid" {
			c.paid += ev.Amount
		}
	}
	return res
}

// takePaid returns what the ledger paid providers since the last call.
func (c *simChain) takePaid() gridmind.Amount {
	p := c.paid
	c.paid = 0
	return p
}

func (c *simChain) refused(code ledger.Code) {
	if c.out.Refused == nil {
		c.out.Refused = map[string]int{}
	}
	c.out.Refused[code.String()]++
}

// postJob escrows job j's budget for its rounds.
func (c *simChain) postJob(j int32) error {
	def := &c.w.jobs[j]
	spec := gridmind.JobSpec{Name: def.name, Model: "transformer", Workers: leaseCap, Rounds: def.rounds, InnerSteps: 1,
		Budget: def.budget, MinReputation: minReputation, MinParticipants: def.minWorkers}
	size := ledger.JobSize{ModelParams: uint64(def.params), TokensPerStep: 1}
	nonce := c.nonces[c.requester]
	res := c.send(c.requester, &ledger.PostJob{Spec: spec, Size: size})
	if res.Code != ledger.CodeOK {
		return fmt.Errorf("sim: post job %s: %s", def.name, res.Log)
	}
	c.jobIDs[j] = ledger.JobIDFor(simChainID, c.requester, nonce)
	return nil
}

// lease leases node i to job j from round, with i's signed acceptance.
func (c *simChain) lease(j int32, i int32, round uint64) bool {
	until := c.height + 1
	key := c.w.keys[i]
	acc := ledger.SignLeaseAcceptance(key, simChainID, c.jobIDs[j], c.requester, round, until)
	res := c.send(c.requester, &ledger.AssignLease{Job: c.jobIDs[j], Provider: c.w.nodes[i].id, FromRound: round, ValidUntil: until, Acceptance: acc})
	if res.Code == ledger.CodeOK {
		c.out.Leases++
	}
	return res.Code == ledger.CodeOK
}

// receipt records round of job j with contributors (node indices).
func (c *simChain) receipt(j int32, round uint64, contributors []int32) error {
	ids := make([]gridmind.NodeID, len(contributors))
	for k, i := range contributors {
		ids[k] = c.w.nodes[i].id
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	res := c.send(c.requester, &ledger.SubmitReceipt{Job: c.jobIDs[j], Round: round, ModelHash: roundHash(c.jobIDs[j], round), Contributors: ids})
	if res.Code != ledger.CodeOK {
		return fmt.Errorf("sim: receipt of round %d of %s: %s", round, c.w.jobs[j].name, res.Log)
	}
	c.out.Receipts++
	c.pending = append(c.pending, pendingReceipt{job: j, round: round, from: c.height + c.fork.Params().SettleDelayBlocks})
	return nil
}

func roundHash(job ledger.JobID, round uint64) ledger.Hash {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte("gridmind/sim/model\x00"+string(job)), round))
}

// dispute files the audit that caught node i cheating in round of job j:
// its pay for the job's rounds in their window is withheld and its stake
// slashed. It reports whether the ledger upheld it.
func (c *simChain) dispute(j int32, round uint64, i int32) bool {
	evidence := fmt.Appendf(nil, "audit of %s round %d: %s's output was not reproduced", c.jobIDs[j], round, c.w.nodes[i].id)
	res := c.send(c.auditor, &ledger.Dispute{Job: c.jobIDs[j], Round: round, Offender: c.w.nodes[i].id, Evidence: evidence, Reason: "audit"})
	if res.Code == ledger.CodeOK {
		c.out.Disputes++
	}
	return res.Code == ledger.CodeOK
}

// cancel ends job j (the run is over and it is not done).
func (c *simChain) cancel(j int32) {
	if c.jobIDs[j] == "" {
		return
	}
	if job, ok := c.fork.Job(c.jobIDs[j]); ok && job.Open() {
		c.send(c.requester, &ledger.CancelJob{Job: c.jobIDs[j]})
	}
}

// attest sends the observers' uptime attestations: seen of expected
// hourly checks of every node in the network since the last ones.
func (c *simChain) attest(obs []ledger.Observation) {
	slices.SortFunc(obs, func(a, b ledger.Observation) int { return cmp.Compare(a.Node, b.Node) })
	for k := 0; k < len(obs); k += ledger.MaxParticipants {
		batch := obs[k:min(k+ledger.MaxParticipants, len(obs))]
		c.send(c.observers[k/ledger.MaxParticipants], &ledger.AttestUptime{Epoch: c.fork.Epoch(), Observations: batch})
	}
}

// account is node i's ledger account.
func (c *simChain) account(i int) ledger.AccountView { return c.fork.Account(c.w.nodes[i].id) }

// reputation is node i's ledger reputation record.
func (c *simChain) reputation(i int) ledger.Reputation { return c.fork.Reputation(c.w.nodes[i].id) }

// finish cancels what is still open, runs the blocks until every held
// round has settled, commits and checks the supply invariant.
func (c *simChain) finish(open []int32) error {
	for _, j := range open {
		c.cancel(j)
	}
	last := c.height + 2*c.fork.Params().SettleDelayBlocks + 2
	for h := c.height + 1; h <= last; h++ {
		if err := c.beginBlock(h); err != nil {
			return err
		}
	}
	for _, p := range c.pending {
		if r, ok := c.fork.Receipt(c.jobIDs[p.job], p.round); ok && !r.Settled {
			c.send(c.requester, &ledger.SettleRound{Job: c.jobIDs[p.job], Round: p.round})
		}
	}
	c.pending = nil
	c.base.Commit(c.fork)
	c.fork = c.base.Fork()
	c.out.Height = c.height
	c.out.Supply = c.base.SupplyOf()
	c.out.Invariant = "ok"
	if err := c.base.CheckInvariant(); err != nil {
		c.out.Invariant = err.Error()
	}
	var paid, refunded gridmind.Amount
	for _, id := range c.jobIDs {
		if id == "" {
			continue
		}
		if job, ok := c.base.Job(id); ok {
			paid += job.Paid
			refunded += job.Refunded
		}
	}
	var slashed gridmind.Amount
	for _, s := range c.base.Slashes() {
		slashed += s.Amount
	}
	c.out.PaidGRID, c.out.Refunded = grid(paid), grid(refunded)
	c.out.SlashedGRID, c.out.FeesGRID = grid(slashed), grid(c.out.Supply.Burned)
	return nil
}

func grid(a gridmind.Amount) float64 { return float64(a) / float64(gridmind.UnitsPerGRID) }

// deviceClasses split the devices by draw, 100 W wide from 150 W: a
// device's throughput follows its draw (buildWorld).
var deviceClasses = []string{"150–250 W", "250–350 W", "350–450 W"}

func deviceClass(busyWatts float64) int {
	return min(max(int((busyWatts-150)/100), 0), len(deviceClasses)-1)
}

// hardware groups the nodes by device class and compares honest and
// cheating providers' final books.
func (c *simChain) hardware() []HardwareLedger {
	out := make([]HardwareLedger, len(deviceClasses))
	for k := range out {
		out[k].Device = deviceClasses[k]
	}
	for i := range c.w.nodes {
		n := &c.w.nodes[i]
		h := &out[deviceClass(n.profile.BusyWatts)]
		a := c.account(i)
		if n.cheater {
			h.Cheaters++
			h.CheaterStake += grid(a.Stake)
			h.CheaterBalance += grid(a.Balance)
		} else {
			h.Honest++
			h.HonestStake += grid(a.Stake)
			h.HonestBalance += grid(a.Balance)
		}
	}
	for k := range out {
		h := &out[k]
		if h.Honest > 0 {
			h.HonestStake /= float64(h.Honest)
			h.HonestBalance /= float64(h.Honest)
		}
		if h.Cheaters > 0 {
			h.CheaterStake /= float64(h.Cheaters)
			h.CheaterBalance /= float64(h.Cheaters)
		}
	}
	return out
}

// roundsOf is how many ledger rounds job def is posted with: one for each
// full round of its maximum workers' work, so a round's receipt is due
// each time the job's useful work passes another such round.
func roundsOf(workTF, roundTF float64, maxWorkers int) int {
	return max(1, int(math.Ceil(workTF/(roundTF*float64(maxWorkers))-1e-9)))
}
