package ledgerbench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
)

// kind is what a submitted transaction does, as the report names it.
type kind uint8

const (
	kindTransfer kind = iota
	kindStake
	kindPostJob
	kindLease
	kindReceipt
	kindAttest
	kindSetup // provider registration before the load; not in the figures
	numKinds
	kindJob // a deck slot: the next step of the submitter's job
)

func (k kind) String() string {
	switch k {
	case kindTransfer:
		return "transfer"
	case kindStake:
		return "stake"
	case kindPostJob:
		return "post-job"
	case kindLease:
		return "lease"
	case kindReceipt:
		return "receipt"
	case kindAttest:
		return "attestation"
	case kindSetup:
		return "register-provider"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// The mix. Each submitter deals itself a shuffled deck of 50 slots, over
// and over: 26 transfers (52%), 5 stakes (10%), 4 uptime attestations
// (8%) and 15 steps of one training job (30%): its post (2%), jobWorkers
// leases (8%) and one receipt per round for jobRounds rounds (20%), in
// that order, all from the submitter's requester account as jobs/ does
// it. Every transaction is valid when sent, so each should commit.
const (
	deckTransfers = 26
	deckStakes    = 5
	deckAttests   = 4
	jobWorkers    = 4
	jobRounds     = 10
	jobSteps      = 1 + jobWorkers + jobRounds
	// attestObservations is how many providers one attestation reports
	// on (a node attests the peers whose heartbeats it saw).
	attestObservations = 16
	// leaseValidBlocks is how long a provider's lease acceptance holds.
	leaseValidBlocks = 1000
	// epochMargin: no attestation is signed in an epoch's last blocks,
	// where it could land in a block of the next epoch and be refused.
	epochMargin = 30
)

// deck lists one cycle's slots in order; submitters shuffle their copy.
func deck() []kind {
	var d []kind
	for _, c := range []struct {
		k kind
		n int
	}{{kindTransfer, deckTransfers}, {kindStake, deckStakes}, {kindAttest, deckAttests}, {kindJob, jobSteps}} {
		for range c.n {
			d = append(d, c.k)
		}
	}
	return d
}

// MixDescription says in words what the load is made of.
func MixDescription() string {
	return fmt.Sprintf("per 50 transactions: %d transfers, %d stakes, %d uptime attestations (%d observations each), and one training job "+
		"(%d workers, %d rounds): 1 post with escrow, %d leases with the providers' signed acceptances, %d round receipts",
		deckTransfers, deckStakes, deckAttests, attestObservations, jobWorkers, jobRounds, jobWorkers, jobRounds)
}

type account struct {
	key ed25519.PrivateKey
	id  gridmind.NodeID
}

func newAccount(seed int64, role string, i int) account {
	s := sha256.Sum256(fmt.Appendf(nil, "gridmind/ledgerbench/%d/%s/%d", seed, role, i))
	k := ed25519.NewKeyFromSeed(s[:])
	return account{key: k, id: gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))}
}

// population is everyone with an account on the bench chain.
type population struct {
	wallets, providers, observers, requesters []account
	sortedProviders                           []gridmind.NodeID
}

func newPopulation(o Options) *population {
	p := &population{}
	for i := range o.Wallets {
		p.wallets = append(p.wallets, newAccount(o.Seed, "wallet", i))
	}
	for i := range o.Providers {
		p.providers = append(p.providers, newAccount(o.Seed, "provider", i))
		p.sortedProviders = append(p.sortedProviders, p.providers[i].id)
	}
	slices.Sort(p.sortedProviders)
	for i := range o.Observers {
		p.observers = append(p.observers, newAccount(o.Seed, "observer", i))
	}
	for i := range o.Submitters {
		p.requesters = append(p.requesters, newAccount(o.Seed, "requester", i))
	}
	return p
}

// genesis funds everyone; providers and observers start staked (a lease
// needs the provider's stake above every round pot it is leased on, an
// attestation its observer's stake).
func (p *population) genesis() []ledger.GenesisAccount {
	grid := gridmind.UnitsPerGRID
	var out []ledger.GenesisAccount
	for _, a := range p.wallets {
		out = append(out, ledger.GenesisAccount{Address: a.id, Balance: 1_000_000 * grid})
	}
	for _, a := range p.requesters {
		out = append(out, ledger.GenesisAccount{Address: a.id, Balance: 10_000_000 * grid})
	}
	for _, a := range p.providers {
		out = append(out, ledger.GenesisAccount{Address: a.id, Balance: 1_000 * grid, Stake: 10_000 * grid})
	}
	for _, a := range p.observers {
		out = append(out, ledger.GenesisAccount{Address: a.id, Balance: 100 * grid, Stake: 10 * grid})
	}
	return out
}

// workload submits the mix. Submitter s owns the wallets and observers
// whose index is s modulo the submitter count, and requester s; only it
// signs for them, so their nonces go out in order. Providers only sign
// lease acceptances (not transactions), so anyone may use their keys.
type workload struct {
	opts        Options
	pop         *population
	tr          *tracker
	clients     []*chain.Client
	epochBlocks int64
	nonces      map[gridmind.NodeID]*uint64 // written only by the account's owner
	nextJob     atomic.Uint64
	submitted   atomic.Int64
	substituted atomic.Int64
}

var errStopped = errors.New("ledgerbench: stopped")

func newWorkload(ctx context.Context, net *chainNet, pop *population, tr *tracker, o Options) (*workload, error) {
	w := &workload{opts: o, pop: pop, tr: tr, nonces: map[gridmind.NodeID]*uint64{}}
	// Each submitter talks to one validator, as each wallet talks to its
	// node; with several validators the load is spread over them all.
	for s := range o.Submitters {
		c, err := chain.NewClient([]string{net.rpcs[s%len(net.rpcs)]}, chain.ClientOptions{Logger: o.Logger})
		if err != nil {
			return nil, err
		}
		w.clients = append(w.clients, c)
	}
	params, err := w.clients[0].Params(ctx)
	if err != nil {
		return nil, err
	}
	w.epochBlocks = max(params.EpochBlocks, 1)
	for _, group := range [][]account{pop.wallets, pop.providers, pop.observers, pop.requesters} {
		for _, a := range group {
			w.nonces[a.id] = new(uint64)
		}
	}
	return w, nil
}

// submit signs body for a with its next nonce and broadcasts it with
// broadcast_tx_sync (chain.Client.Broadcast, the wallet's path), waiting
// for a place in the window first. A full mempool is retried shortly
// after; a refusal is an error, since every transaction should be valid.
func (w *workload) submit(ctx context.Context, s int, a account, k kind, body ledger.Body, stop <-chan struct{}) error {
	nonce := w.nonces[a.id]
	raw, err := ledger.NewTx(a.key, chainID, *nonce, body)
	if err != nil {
		return fmt.Errorf("ledgerbench: sign %s: %w", k, err)
	}
	h := ledger.TxHash(raw)
	if !w.tr.acquire(stop) {
		return errStopped
	}
	for {
		w.tr.add(h, k, time.Now())
		_, err := w.clients[s].Broadcast(ctx, raw)
		if err == nil {
			*nonce++
			w.submitted.Add(1)
			return nil
		}
		w.tr.forget(h)
		if !strings.Contains(err.Error(), "mempool is full") || ctx.Err() != nil {
			w.tr.release()
			return fmt.Errorf("ledgerbench: %s from %s refused: %w", k, a.id.Short(), err)
		}
		select {
		case <-ctx.Done():
			w.tr.release()
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// setup registers every provider's offer and waits for the registrations
// to commit.
func (w *workload) setup(ctx context.Context, tick func()) error {
	errs := make(chan error, w.opts.Submitters)
	never := make(chan struct{})
	for s := range w.opts.Submitters {
		go func() {
			for i := s; i < len(w.pop.providers); i += w.opts.Submitters {
				p := w.pop.providers[i]
				offer := gridmind.Offer{Node: p.id, Hardware: gridmind.Hardware{CPUCores: 16}, ThroughputMFLOPS: 1_000_000,
					PricePerUnit: gridmind.Amount(20 + i%10), Region: "bench", EnergyZone: "GB"}
				if err := w.submit(ctx, s, p, kindSetup, &ledger.RegisterProvider{Offer: offer}, never); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range w.opts.Submitters {
		if err := <-errs; err != nil {
			return err
		}
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w.tr.waitEmpty(wait, tick)
	if n := w.tr.pendingOf(kindSetup); n > 0 {
		return fmt.Errorf("ledgerbench: %d provider registrations did not commit in 2 minutes", n)
	}
	return nil
}

// submitterState is what one submitter remembers between transactions.
type submitterState struct {
	s                  int
	rng                *rand.Rand
	stop               <-chan struct{}
	wallets, observers []account
	nextWallet         int
	obsEpoch           uint64
	obsCursor          int
	requester          account
	job                ledger.JobID
	jobStep            int
	jobProviders       []account
	jobProviderIDs     []gridmind.NodeID
}

// submitter deals the deck until stop closes.
func (w *workload) submitter(ctx context.Context, s int, stop <-chan struct{}) error {
	st := &submitterState{s: s, rng: rand.New(rand.NewPCG(uint64(w.opts.Seed), uint64(s))), requester: w.pop.requesters[s], stop: stop}
	for i := s; i < len(w.pop.wallets); i += w.opts.Submitters {
		st.wallets = append(st.wallets, w.pop.wallets[i])
	}
	for i := s; i < len(w.pop.observers); i += w.opts.Submitters {
		st.observers = append(st.observers, w.pop.observers[i])
	}
	slots := deck()
	for {
		st.rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		for _, k := range slots {
			select {
			case <-stop:
				return nil
			default:
			}
			var err error
			switch k {
			case kindTransfer:
				err = w.transfer(ctx, st)
			case kindStake:
				a := st.wallet()
				err = w.submit(ctx, s, a, kindStake, &ledger.Stake{Amount: gridmind.UnitsPerGRID}, stop)
			case kindAttest:
				err = w.attest(ctx, st)
			case kindJob:
				err = w.jobStep(ctx, st)
			}
			if errors.Is(err, errStopped) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func (st *submitterState) wallet() account {
	a := st.wallets[st.nextWallet%len(st.wallets)]
	st.nextWallet++
	return a
}

func (w *workload) transfer(ctx context.Context, st *submitterState) error {
	from := st.wallet()
	to := w.pop.wallets[st.rng.IntN(len(w.pop.wallets))]
	if to.id == from.id {
		to = w.pop.wallets[(slices.IndexFunc(w.pop.wallets, func(a account) bool { return a.id == from.id })+1)%len(w.pop.wallets)]
	}
	body := &ledger.Transfer{To: to.id, Amount: 1 + gridmind.Amount(st.rng.Uint64N(uint64(gridmind.UnitsPerGRID)))}
	return w.submit(ctx, st.s, from, kindTransfer, body, st.stop)
}

// attest sends an uptime attestation from the submitter's next observer
// that has not attested this epoch; near an epoch's end, or when all
// have, the slot becomes a transfer (counted in Report.Substituted).
func (w *workload) attest(ctx context.Context, st *submitterState) error {
	next := w.tr.height.Load() + 1 // CheckTx runs on the state of the next block
	epoch := uint64(next / w.epochBlocks)
	if epoch != st.obsEpoch {
		st.obsEpoch, st.obsCursor = epoch, 0
	}
	if next%w.epochBlocks >= w.epochBlocks-epochMargin || st.obsCursor >= len(st.observers) {
		w.substituted.Add(1)
		return w.transfer(ctx, st)
	}
	o := st.observers[st.obsCursor]
	ids := w.pop.sortedProviders
	from := st.rng.IntN(len(ids) - attestObservations + 1)
	obs := make([]ledger.Observation, attestObservations)
	for i := range obs {
		obs[i] = ledger.Observation{Node: ids[from+i], Seen: uint64(55 + st.rng.IntN(6)), Expected: 60}
	}
	if err := w.submit(ctx, st.s, o, kindAttest, &ledger.AttestUptime{Epoch: epoch, Observations: obs}, st.stop); err != nil {
		return err
	}
	st.obsCursor++
	return nil
}

// jobStep sends the next transaction of the submitter's current job:
// post, then the leases, then the receipts round by round.
func (w *workload) jobStep(ctx context.Context, st *submitterState) error {
	req := st.requester
	var body ledger.Body
	k := kindReceipt
	switch step := st.jobStep; {
	case step == 0:
		st.job = ledger.JobIDFor(chainID, req.id, *w.nonces[req.id])
		first := int(w.nextJob.Add(1)-1) * jobWorkers
		st.jobProviders, st.jobProviderIDs = st.jobProviders[:0], st.jobProviderIDs[:0]
		for i := range jobWorkers {
			p := w.pop.providers[(first+i)%len(w.pop.providers)]
			st.jobProviders = append(st.jobProviders, p)
			st.jobProviderIDs = append(st.jobProviderIDs, p.id)
		}
		slices.Sort(st.jobProviderIDs)
		spec := gridmind.JobSpec{Name: "ledgerbench-" + string(st.job[:8]), Model: "transformer", Workers: jobWorkers, Rounds: jobRounds,
			InnerSteps: 100, Budget: 10 * gridmind.UnitsPerGRID}
		body, k = &ledger.PostJob{Spec: spec, Size: ledger.JobSize{ModelParams: 20_000_000, TokensPerStep: 4096}}, kindPostJob
	case step <= jobWorkers:
		p := st.jobProviders[step-1]
		until := w.tr.height.Load() + leaseValidBlocks
		acc := ledger.SignLeaseAcceptance(p.key, chainID, st.job, req.id, 0, until)
		body, k = &ledger.AssignLease{Job: st.job, Provider: p.id, FromRound: 0, ValidUntil: until, Acceptance: acc}, kindLease
	default:
		round := uint64(step - 1 - jobWorkers)
		model := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("ledgerbench/model/"+string(st.job)), round))
		body = &ledger.SubmitReceipt{Job: st.job, Round: round, ModelHash: model, Contributors: slices.Clone(st.jobProviderIDs)}
	}
	if err := w.submit(ctx, st.s, req, k, body, st.stop); err != nil {
		return err
	}
	st.jobStep = (st.jobStep + 1) % jobSteps
	return nil
}
