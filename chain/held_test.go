package chain

import (
	"context"
	"encoding/json"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// TestHeldRoundSettlesAcrossARestart: a job cancelled while its receipted
// round is inside the dispute window holds that round's pot; the
// validator restarts from its database meanwhile; the round settles by
// itself in the block where its window closes, the rest is refunded, and
// the payment is in the provider's history as a block-level event.
func TestHeldRoundSettlesAcrossARestart(t *testing.T) {
	const grid = gridmind.UnitsPerGRID
	h := newAppHarness(t, map[string]gridmind.Amount{"req": 1000 * grid, "p1": 100 * grid})
	req, p1 := idOf(testKey("req")), idOf(testKey("p1"))
	ok := func(fin *abci.ResponseFinalizeBlock) {
		t.Helper()
		for _, r := range fin.TxResults {
			if r.Code != 0 {
				t.Fatalf("block %d: %s", h.height, r.Log)
			}
		}
	}
	ok(h.block(h.tx("p1", 0, &ledger.Stake{Amount: 20 * grid}), h.tx("p1", 1, &ledger.RegisterProvider{Offer: gridmind.Offer{PricePerUnit: 1}})))
	job := ledger.JobIDFor("app-test", req, 0)
	ok(h.block(h.tx("req", 0, &ledger.PostJob{Spec: gridmind.JobSpec{Name: "j", Workers: 1, Rounds: 2, Budget: 20 * grid},
		Size: ledger.JobSize{ModelParams: 1000, TokensPerStep: 10}})))
	acceptance := ledger.SignLeaseAcceptance(testKey("p1"), "app-test", job, req, 0, 1<<40)
	ok(h.block(h.tx("req", 1, &ledger.AssignLease{Job: job, Provider: p1, ValidUntil: 1 << 40, Acceptance: acceptance})))
	ok(h.block(h.tx("req", 2, &ledger.SubmitReceipt{Job: job, Round: 0, ModelHash: ledger.Hash{1}, Contributors: []gridmind.NodeID{p1}}),
		h.tx("req", 3, &ledger.CancelJob{Job: job})))
	receiptHeight := h.height
	jobNow := func(a *App) ledger.Job {
		t.Helper()
		v, err := a.query(PathJob, []byte(job))
		if err != nil {
			t.Fatal(err)
		}
		return v.(ledger.Job)
	}
	if j := jobNow(h.app); j.State != ledger.JobCancelled || j.Held() != 10*grid || j.Refunded != 10*grid {
		t.Fatalf("cancelled job: %+v", j)
	}

	h.app.Close()
	again, err := NewApp(AppConfig{DBPath: h.path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	h.app = again
	for h.height < receiptHeight+ledger.DefaultParams().SettleDelayBlocks {
		h.block()
	}
	j := jobNow(again)
	if j.State != ledger.JobCancelled || j.Escrow != 0 || j.Paid != 10*grid || j.Refunded != 10*grid || len(j.Pending) != 0 {
		t.Fatalf("after the window: %+v", j)
	}
	q, _ := json.Marshal(HistoryQuery{Account: p1})
	v, err := again.query(PathHistory, q)
	if err != nil {
		t.Fatal(err)
	}
	hist := v.([]HistoryEntry)
	if len(hist) == 0 || hist[0].Event.Kind != "paid" || hist[0].TxHash != "" || hist[0].Height != h.height || hist[0].Event.Amount != 10*grid {
		t.Fatalf("p1's history: %+v", hist)
	}
	if _, err := again.Info(context.Background(), &abci.RequestInfo{}); err != nil {
		t.Fatal(err)
	}
}
