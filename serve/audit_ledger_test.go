package serve

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

// auditChain is a real ledger state machine driven block by block, with
// block times chosen by the test.
type auditChain struct {
	t      *testing.T
	base   *ledger.State
	height int64
	time   int64
	nonces map[gridmind.NodeID]uint64
}

const auditChainID = "serve-audit"

func newAuditChain(t *testing.T, start int64, staked map[gridmind.NodeID]gridmind.Amount) *auditChain {
	t.Helper()
	p := ledger.DefaultParams()
	p.TxFee = 0
	p.SettleDelayBlocks = 20
	g := ledger.Genesis{ChainID: auditChainID, Params: p}
	ids := make([]gridmind.NodeID, 0, len(staked))
	for id := range staked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: id, Balance: 10 * gridmind.UnitsPerGRID, Stake: staked[id]})
	}
	g.Validators = []ledger.Validator{{Address: "VAL0", Account: ids[0]}}
	base, err := ledger.NewState(g, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &auditChain{t: t, base: base, time: start, nonces: map[gridmind.NodeID]uint64{}}
}

// block runs one block at unix time at with the txs signed by the keys.
func (c *auditChain) block(at int64, txs ...signedBody) []ledger.TxResult {
	c.t.Helper()
	fork := c.base.Fork()
	c.height++
	c.time = at
	if _, err := fork.BeginBlockAt(c.height, at, ""); err != nil {
		c.t.Fatal(err)
	}
	var out []ledger.TxResult
	for _, tx := range txs {
		from := gridmind.NodeIDFromPublicKey(tx.key.Public().(ed25519.PublicKey))
		raw, err := ledger.NewTx(tx.key, auditChainID, c.nonces[from], tx.body)
		if err != nil {
			c.t.Fatal(err)
		}
		v, err := ledger.Verify(auditChainID, raw, nil)
		if err != nil {
			c.t.Fatalf("%s: %v", tx.body.Type(), err)
		}
		r := fork.Apply(v)
		if r.Code == ledger.CodeOK {
			c.nonces[from]++
		}
		out = append(out, r)
	}
	if err := fork.CheckInvariant(); err != nil {
		c.t.Fatal(err)
	}
	if err := c.base.Commit(fork); err != nil {
		c.t.Fatal(err)
	}
	return out
}

type signedBody struct {
	key  ed25519.PrivateKey
	body ledger.Body
}

func (c *auditChain) bonded(id gridmind.NodeID) gridmind.Amount {
	a := c.base.Account(id)
	return a.Stake + a.UnbondingTotal
}

// serveOnce answers r from one real Server (key, gen) to a real Client over
// a testnet.MemNetwork and returns the request as served and the doubly signed
// receipt.
func serveOnce(t *testing.T, key ed25519.PrivateKey, gen Generator, r Request) (WireRequest, Receipt) {
	t.Helper()
	w, rc, err := serveWithClock(t, key, gen, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w, rc
}

// serveWithClock is serveOnce with the server's clock (nil: time.Now).
func serveWithClock(t *testing.T, key ed25519.PrivateKey, gen Generator, r Request, now func() time.Time) (WireRequest, Receipt, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	net := testnet.NewMemNetwork()
	t.Cleanup(func() { cancel(); net.Close() })
	id := gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	local := NewLocal(LocalConfig{Logger: quietLog})
	if err := local.Add(r.Model, gen); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{Key: key, Local: local, Logger: quietLog, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	net.Listen(id, time.Millisecond, srv.Handler(ctx))
	ckey, cid := testKey(1000)
	cli, err := NewClient(ClientConfig{Key: ckey, Dialer: net.Dialer(cid), Directory: StaticDirectory{r.Model: {{ID: id, ReputationPPM: 900_000}}}, Seed: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := cli.Complete(ctx, r, nil)
	if err != nil {
		return WireRequest{}, Receipt{}, err
	}
	if comp.Receipt == nil || comp.Receipt.Verify() != nil {
		t.Fatalf("no verifiable receipt: %+v", comp.Receipt)
	}
	return WireRequest{Request: r}, *comp.Receipt, nil
}

// TestClientRefusesABackdatedReceipt: a receipt's time places it among the
// ledger's blocks (its audit draw and window), so a client does not
// countersign one far from its own clock.
func TestClientRefusesABackdatedReceipt(t *testing.T) {
	key, _ := testKey(1)
	for _, tc := range []struct {
		name string
		skew time.Duration
		ok   bool
	}{
		{"on time", 0, true},
		{"a little off", MaxReceiptSkew / 2, true},
		{"backdated past the skew", -2 * MaxReceiptSkew, false},
		{"post-dated past the skew", 2 * MaxReceiptSkew, false},
	} {
		now := func() time.Time { return time.Now().Add(tc.skew) }
		_, rc, err := serveWithClock(t, key, testnet.FakeGenerator{}, req("skew", 8), now)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "receipt time")) {
			t.Errorf("%s: countersigned a receipt at %d ms (err %v)", tc.name, rc.TimeMs, err)
		}
	}
}

// seedIgnorer samples with a seed of its own, not the client's: the same
// weights, but not the completion the request asked for.
type seedIgnorer struct{}

func (seedIgnorer) Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	opts.Seed = 1
	return testnet.FakeGenerator{}.Generate(ctx, prompt, opts)
}

// TestInferenceFraudIsProvenOnTheLedger: real servers answer requests to a
// real client; the committee drawn on a real ledger from the block after
// each receipt re-runs the request on its own replicas of the weights. An
// honest server is cleared by every member and never accused; a server
// answering from other weights, and one ignoring the request's seed, are
// caught by the spot check, proven by a quorum, slashed and banned, and
// the agreeing auditors are paid.
func TestInferenceFraudIsProvenOnTheLedger(t *testing.T) {
	const stake = 20 * gridmind.UnitsPerGRID
	type node struct {
		key     ed25519.PrivateKey
		id      gridmind.NodeID
		replica *Local
	}
	mk := func(i int) node {
		key, id := testKey(i)
		replica := NewLocal(LocalConfig{Logger: quietLog})
		if err := replica.Add("m", testnet.FakeGenerator{}); err != nil {
			t.Fatal(err)
		}
		return node{key, id, replica}
	}
	honest, otherModel, otherSeed := mk(1), mk(2), mk(3)
	var auditors []node
	// Every provider may be drawn to audit another, each on its own
	// replica of the true weights (whatever it serves itself).
	byID := map[gridmind.NodeID]node{honest.id: honest, otherModel.id: otherModel, otherSeed.id: otherSeed}
	staked := map[gridmind.NodeID]gridmind.Amount{honest.id: stake, otherModel.id: stake, otherSeed.id: stake}
	for i := 0; i < 6; i++ {
		a := mk(100 + i)
		auditors = append(auditors, a)
		byID[a.id] = a
		staked[a.id] = stake
	}
	start := time.Now().Unix() - 100
	chain := newAuditChain(t, start, staked)
	var regs []signedBody
	for _, n := range append([]node{honest, otherModel, otherSeed}, auditors...) {
		regs = append(regs, signedBody{n.key, &ledger.RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 1, Region: "eu"}}})
	}
	for _, r := range chain.block(start, regs...) {
		if r.Code != ledger.CodeOK {
			t.Fatalf("register: %s %s", r.Code, r.Log)
		}
	}

	type served struct {
		name string
		w    WireRequest
		rc   Receipt
	}
	var work []served
	for i := 0; i < 6; i++ {
		r := req(fmt.Sprintf("honest-%d", i), 16)
		r.Seed = int64(100 + i)
		w, rc := serveOnce(t, honest.key, testnet.FakeGenerator{}, r)
		work = append(work, served{"honest", w, rc})
	}
	w, rc := serveOnce(t, otherModel.key, otherWeights{}, req("cheap-model", 16))
	work = append(work, served{"other weights", w, rc})
	w, rc = serveOnce(t, otherSeed.key, seedIgnorer{}, req("own-seed", 16))
	work = append(work, served{"own seed", w, rc})

	// The block after the receipts, then the one whose beacon draws them.
	last := int64(0)
	for _, s := range work {
		last = max(last, s.rc.TimeMs/1000)
	}
	chain.block(last + 1)
	chain.block(last + 2)

	ctx := context.Background()
	for _, s := range work {
		srv, err := s.rc.Served()
		if err != nil {
			t.Fatal(err)
		}
		_, committee, err := chain.base.InferenceDraw(&srv)
		if err != nil || len(committee) != ledger.FraudParams.CommitteeSize {
			t.Fatalf("%s: draw %v: %v", s.name, committee, err)
		}
		// The spot check: the first member re-runs the request.
		first := byID[committee[0]]
		spot, err := AuditReceipt(ctx, first.replica, s.w, s.rc)
		if err != nil {
			t.Fatalf("%s: spot check: %v", s.name, err)
		}
		if s.name == "honest" {
			if spot.Verdict != verify.Cleared {
				t.Fatalf("honest server accused by the spot check: %+v", spot)
			}
			// Every member reproduces it; a proof of their results accuses
			// nobody and is refused.
			var results []verify.Result
			for _, m := range committee {
				res, err := AuditReceipt(ctx, byID[m].replica, s.w, s.rc)
				if err != nil || res.Verdict != verify.Cleared {
					t.Fatalf("honest server: member's re-run %+v %v", res, err)
				}
				sig, err := SignResult(byID[m].key, s.rc, res)
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, sig)
			}
			sortResults(results)
			r := chain.block(chain.time+1, signedBody{first.key, &ledger.InferenceFraudProof{Proof: verify.InferenceProof{Receipt: srv, Results: results}}})
			if r[0].Code != ledger.CodeInvalid {
				t.Fatalf("proof against an honest server: %s %s", r[0].Code, r[0].Log)
			}
			continue
		}
		if spot.Verdict != verify.Fraud {
			t.Fatalf("%s: the spot check cleared it: %+v", s.name, spot)
		}
		// On a mismatch the first member asks the others, and a member with
		// stake files their results (an earlier cheater's no longer count).
		var results []verify.Result
		var filer ed25519.PrivateKey
		balances := map[gridmind.NodeID]gridmind.Amount{}
		for _, m := range committee {
			res, err := AuditReceipt(ctx, byID[m].replica, s.w, s.rc)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := SignResult(byID[m].key, s.rc, res)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, sig)
			balances[m] = chain.base.Account(m).Balance
			if filer == nil && chain.base.Account(m).Stake > 0 {
				filer = byID[m].key
			}
		}
		sortResults(results)
		r := chain.block(chain.time+1, signedBody{filer, &ledger.InferenceFraudProof{Proof: verify.InferenceProof{Receipt: srv, Results: results}}})
		if r[0].Code != ledger.CodeOK || string(r[0].Data) != "fraud" {
			t.Fatalf("%s: proof: %s %s %q", s.name, r[0].Code, r[0].Log, r[0].Data)
		}
		rewarded := 0
		for _, m := range committee {
			if chain.base.Account(m).Balance > balances[m] {
				rewarded++
			}
		}
		if rewarded < ledger.FraudParams.Quorum {
			t.Errorf("%s: %d auditors paid, want at least %d", s.name, rewarded, ledger.FraudParams.Quorum)
		}
		if got := chain.bonded(srv.Server); got != 0 {
			t.Errorf("%s: keeps %d bonded after the proof", s.name, got)
		}
		if _, banned := chain.base.Banned(srv.Server); !banned {
			t.Errorf("%s: not banned", s.name)
		}
	}
	if got := chain.bonded(honest.id); got != stake {
		t.Errorf("honest server keeps %d bonded, want %d", got, stake)
	}
	if _, banned := chain.base.Banned(honest.id); banned {
		t.Error("honest server banned")
	}
}

func sortResults(rs []verify.Result) {
	slices.SortFunc(rs, func(a, b verify.Result) int {
		return cmp.Compare(a.Auditor, b.Auditor)
	})
}

// TestScreenedDirectoryRoutesAroundABannedServer: with the banned server
// screened out, every request goes to the other replica, and a model
// served only by banned servers has no replica.
func TestScreenedDirectoryRoutesAroundABannedServer(t *testing.T) {
	c := newCluster(t, "m", []time.Duration{time.Millisecond, 5 * time.Millisecond}, func(int) Generator { return testnet.FakeGenerator{} }, nil)
	banned := c.servers[0].id // the faster one, which the router prefers
	screened := Screened{Directory: c.dir, Banned: func(id gridmind.NodeID) bool { return id == banned }}
	reps, err := screened.Replicas(context.Background(), "m")
	if err != nil || len(reps) != 1 || reps[0].ID != c.servers[1].id {
		t.Fatalf("screened replicas %v (%v), want the unbanned one only", reps, err)
	}
	key, id := testKey(1001)
	cli, err := NewClient(ClientConfig{Key: key, Dialer: c.net.Dialer(id), Directory: screened, Seed: 1, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		comp, err := cli.Complete(context.Background(), req(fmt.Sprintf("screened-%d", i), 8), nil)
		if err != nil {
			t.Fatal(err)
		}
		if comp.Receipt.Server == banned {
			t.Fatalf("request %d went to the banned server", i)
		}
	}
	all := Screened{Directory: c.dir, Banned: func(gridmind.NodeID) bool { return true }}
	if reps, err := all.Replicas(context.Background(), "m"); err != nil || len(reps) != 0 {
		t.Errorf("every server banned: %v %v", reps, err)
	}
	if models, err := screened.Models(context.Background()); err != nil || !slices.Equal(models, []string{"m"}) {
		t.Errorf("models %v %v", models, err)
	}
}
