package chain

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// TestOneValidator drives a whole job through one in-process validator:
// transfers (several from one account in one block), stakes, providers, a
// job with escrow, leases, two round receipts settled, a cancel with
// refund; everything checked through queries, in-process and over RPC.
func TestOneValidator(t *testing.T) {
	params := ledger.DefaultParams()
	params.MinProviderStake = 10 * grid
	params.SettleDelayBlocks = 3
	params.TxFee = 0 // TestWalletMoneyPaths covers fees
	net := newNetwork(t, 1, map[string]gridmind.Amount{"req": 1000 * grid, "p1": 100 * grid, "p2": 100 * grid}, &params)
	n := startNode(t, net.Validators[0].Home)
	ctx := timeout(t, 60*time.Second)
	c := n.Client()

	req, p1, p2 := NewWallet(c, testKey("req")), NewWallet(c, testKey("p1")), NewWallet(c, testKey("p2"))
	alice := idOf(testKey("alice"))

	// Five transfers from one account, broadcast without waiting: they
	// need the CheckTx pending layer to be accepted together.
	var hashes []ledger.Hash
	for i := 0; i < 5; i++ {
		raw, _, err := req.Sign(ctx, &ledger.Transfer{To: alice, Amount: grid})
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, raw)
		if err != nil {
			t.Fatalf("broadcast transfer %d: %v", i, err)
		}
		hashes = append(hashes, h)
	}
	for _, h := range hashes {
		rec, err := c.WaitTx(ctx, h)
		if err != nil || rec.Err() != nil {
			t.Fatalf("transfer %s: %v %v", h, err, rec)
		}
	}
	if a, err := c.Account(ctx, alice); err != nil || a.Balance != 5*grid {
		t.Fatalf("alice: %+v %v", a, err)
	}

	// A refused transaction comes back with a kind, not a panic or a hang.
	if _, err := NewWallet(c, testKey("alice")).Send(ctx, idOf(testKey("req")), 6*grid, ""); gridmind.KindOf(err) != gridmind.KindInsufficient {
		t.Fatalf("over-spend: %v (kind %s)", err, gridmind.KindOf(err))
	}

	for _, w := range []*Wallet{p1, p2} {
		if _, err := w.Stake(ctx, 20*grid); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Submit(ctx, &ledger.RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 3, Region: "eu"}}); err != nil {
			t.Fatal(err)
		}
	}
	job, _, err := req.PostJob(ctx, gridmind.JobSpec{Name: "shakespeare", Model: "mlp", Workers: 2, Rounds: 3, Budget: 30 * grid},
		ledger.JobSize{ModelParams: 100_000, TokensPerStep: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Job(ctx, job); err != nil || j.Escrow != 30*grid || j.State != ledger.JobOpen {
		t.Fatalf("job after posting: %+v %v", j, err)
	}
	if a, _ := c.Account(ctx, req.Address()); a.Balance != 965*grid {
		t.Fatalf("requester after escrow: %s", a.Balance)
	}
	// A lease needs the provider's acceptance.
	if _, err := req.Submit(ctx, &ledger.AssignLease{Job: job, Provider: p1.Address(), ValidUntil: 1 << 40, Acceptance: make([]byte, 64)}); gridmind.KindOf(err) != gridmind.KindUnauthorized {
		t.Fatalf("lease without acceptance: %v", err)
	}
	for _, name := range []string{"p1", "p2"} {
		acc := ledger.SignLeaseAcceptance(testKey(name), "gridmind-test", job, req.Address(), 0, 1<<40)
		if _, err := req.Submit(ctx, &ledger.AssignLease{Job: job, Provider: idOf(testKey(name)), ValidUntil: 1 << 40, Acceptance: acc}); err != nil {
			t.Fatal(err)
		}
	}
	contributors := []gridmind.NodeID{p1.Address(), p2.Address()}
	slices.Sort(contributors)
	for round := uint64(0); round < 2; round++ {
		receipt := &ledger.SubmitReceipt{Job: job, Round: round, ModelHash: ledger.Hash{byte(round + 1)}, Contributors: contributors}
		submitter := req
		if round == 1 { // carried by both providers' signatures
			for _, name := range []string{"p1", "p2"} {
				receipt.Signatures = append(receipt.Signatures, ledger.SignReceipt(testKey(name), "gridmind-test", job, round, receipt.ModelHash, contributors))
			}
			slices.SortFunc(receipt.Signatures, func(a, b ledger.NodeSignature) int { return strings.Compare(string(a.Node), string(b.Node)) })
			submitter = p1
		}
		rec, err := submitter.Submit(ctx, receipt)
		if err != nil {
			t.Fatalf("receipt %d: %v", round, err)
		}
		// Nobody settles inside the dispute window, the requester included.
		if _, err := req.Submit(ctx, &ledger.SettleRound{Job: job, Round: round}); gridmind.KindOf(err) != gridmind.KindInvalid {
			t.Fatalf("settle %d inside its window: %v", round, err)
		}
		if _, err := c.WaitHeight(ctx, rec.Height+params.SettleDelayBlocks); err != nil {
			t.Fatal(err)
		}
		if _, err := req.Submit(ctx, &ledger.SettleRound{Job: job, Round: round}); err != nil {
			t.Fatalf("settle %d: %v", round, err)
		}
	}
	// Each round paid 10 GRID, 5 each.
	if a, _ := c.Account(ctx, p1.Address()); a.Balance != 80*grid+10*grid {
		t.Fatalf("p1 balance %s", a.Balance)
	}
	if a, _ := c.Account(ctx, p2.Address()); a.Balance != 80*grid+10*grid || a.Reputation.RoundsFinished != 2 {
		t.Fatalf("p2 %+v", a)
	}
	if _, err := req.Submit(ctx, &ledger.CancelJob{Job: job}); err != nil {
		t.Fatal(err)
	}
	j, err := c.Job(ctx, job)
	if err != nil || j.State != ledger.JobCancelled || j.Refunded != 10*grid || j.Paid != 20*grid || j.Escrow != 0 {
		t.Fatalf("cancelled job: %+v %v", j, err)
	}
	leases, err := c.Leases(ctx, job)
	if err != nil || len(leases) != 2 || leases[0].Active() || leases[1].Active() {
		t.Fatalf("leases after cancel: %+v %v", leases, err)
	}
	if rs, err := c.Receipts(ctx, job); err != nil || len(rs) != 2 || !rs[1].Settled || len(rs[1].Signers) != 2 {
		t.Fatalf("receipts: %+v %v", rs, err)
	}
	if ls, err := c.LeasesOf(ctx, p2.Address()); err != nil || len(ls) != 1 || ls[0].Job != job {
		t.Fatalf("leases of p2: %+v %v", ls, err)
	}
	if a, _ := c.Account(ctx, req.Address()); a.Balance != 975*grid {
		t.Fatalf("requester after refund: %s", a.Balance)
	}
	if jobs, err := c.Jobs(ctx, ledger.JobFilter{Requester: req.Address()}); err != nil || len(jobs) != 1 {
		t.Fatalf("jobs: %v %v", jobs, err)
	}
	hist, err := c.History(ctx, req.Address(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, h := range hist {
		kinds = append(kinds, h.Event.Kind)
	}
	// Newest first: the refund, the escrow, five sends.
	if len(kinds) != 7 || kinds[0] != "refunded" || kinds[1] != "escrowed" || kinds[6] != "sent" {
		t.Fatalf("history of the requester: %v", kinds)
	}
	sup, err := c.Supply(ctx)
	if err != nil || !sup.Invariant || sup.Total != 1200*grid || sup.Stakes != 40*grid {
		t.Fatalf("supply: %+v %v", sup, err)
	}
	if _, err := c.Job(ctx, ledger.JobIDFor("x", alice, 1)); gridmind.KindOf(err) != gridmind.KindNotFound {
		t.Fatalf("unknown job: %v", err)
	}

	// The same answers over RPC, through a list whose first address is dead.
	dead := "http://127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	rc, err := NewClient([]string{dead, n.RPCAddr()}, ClientOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := rc.Status(ctx)
	if err != nil || st.ChainID != "gridmind-test" || st.Height < 10 || len(st.AppHash) != 64 {
		t.Fatalf("status over RPC: %+v %v", st, err)
	}
	if a, err := rc.Account(ctx, p1.Address()); err != nil || a.Balance != 90*grid {
		t.Fatalf("account over RPC: %+v %v", a, err)
	}
	if _, err := NewWallet(rc, testKey("alice")).Send(ctx, p1.Address(), grid, "via rpc"); err != nil {
		t.Fatalf("send over RPC: %v", err)
	}
	var te *ledger.TxError
	_, err = NewWallet(rc, testKey("nobody")).Send(ctx, p1.Address(), grid, "")
	if !errors.As(err, &te) || te.Code != ledger.CodeNotFound {
		t.Fatalf("unfunded sender over RPC: %v", err)
	}
}
