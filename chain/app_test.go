package chain

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// appHarness drives an App through the ABCI calls CometBFT would make,
// without CometBFT.
type appHarness struct {
	t      *testing.T
	app    *App
	path   string
	height int64
}

func newAppHarness(t *testing.T, funded map[string]gridmind.Amount) *appHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	app, err := NewApp(AppConfig{DBPath: path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	g := ledger.Genesis{ChainID: "app-test", Params: ledger.DefaultParams()}
	for name, amt := range funded {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: idOf(testKey(name)), Balance: amt})
	}
	state, _ := json.Marshal(g)
	if _, err := app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: "app-test", AppStateBytes: state, InitialHeight: 1}); err != nil {
		t.Fatal(err)
	}
	return &appHarness{t: t, app: app, path: path}
}

func (h *appHarness) tx(name string, nonce uint64, body ledger.Body) []byte {
	raw, err := ledger.NewTx(testKey(name), "app-test", nonce, body)
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func (h *appHarness) checkTx(raw []byte) ledger.Code {
	res, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		h.t.Fatal(err)
	}
	return ledger.Code(res.Code)
}

// block proposes txs, processes the proposal, finalizes and commits it.
func (h *appHarness) block(txs ...[]byte) *abci.ResponseFinalizeBlock {
	h.t.Helper()
	ctx := context.Background()
	h.height++
	prep, err := h.app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Height: h.height, Txs: txs, MaxTxBytes: 1 << 20})
	if err != nil {
		h.t.Fatal(err)
	}
	proc, err := h.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: h.height, Txs: prep.Txs})
	if err != nil || proc.Status != abci.ResponseProcessProposal_ACCEPT {
		h.t.Fatalf("own proposal refused: %v %v", proc, err)
	}
	fin, err := h.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: h.height, Txs: prep.Txs})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		h.t.Fatal(err)
	}
	return fin
}

func TestCheckTxPendingLayer(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	bob := idOf(testKey("bob"))
	var txs [][]byte
	for n := uint64(0); n < 4; n++ {
		raw := h.tx("alice", n, &ledger.Transfer{To: bob, Amount: 2 * grid})
		if c := h.checkTx(raw); c != ledger.CodeOK {
			t.Fatalf("nonce %d: %s", n, c)
		}
		txs = append(txs, raw)
	}
	// The pending layer knows alice has 2 GRID left, less the fees.
	if c := h.checkTx(h.tx("alice", 4, &ledger.Transfer{To: bob, Amount: 3 * grid})); c != ledger.CodeInsufficient {
		t.Fatalf("over-spend against the pending layer: %s", c)
	}
	if c := h.checkTx(txs[1]); c != ledger.CodeBadNonce {
		t.Fatalf("duplicate: %s", c)
	}
	// Another transaction with a nonce that is only waiting is told so,
	// not that the nonce was used.
	res, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: h.tx("alice", 1, &ledger.Transfer{To: bob, Amount: 1})})
	if err != nil || !strings.Contains(res.Log, "waiting in the mempool") {
		t.Fatalf("waiting nonce: %v %q", err, res.Log)
	}
	fin := h.block(txs...)
	if len(fin.TxResults) != 4 {
		t.Fatalf("%d results", len(fin.TxResults))
	}
	// After the commit the layer is rebuilt from the committed state.
	if c := h.checkTx(h.tx("alice", 4, &ledger.Transfer{To: bob, Amount: grid})); c != ledger.CodeOK {
		t.Fatalf("after commit: %s", c)
	}
}

func TestProposals(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	bob := idOf(testKey("bob"))
	good := h.tx("alice", 0, &ledger.Transfer{To: bob, Amount: grid})
	replay := good
	broke := h.tx("alice", 1, &ledger.Transfer{To: bob, Amount: 100 * grid})
	forged := h.tx("alice", 1, &ledger.Transfer{To: bob, Amount: grid})
	forged[len(forged)-1] ^= 0xff
	ctx := context.Background()

	// PrepareProposal drops what does not apply, in order, and respects the size limit.
	prep, err := h.app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Height: 1, Txs: [][]byte{good, replay, broke, forged, []byte("junk")}, MaxTxBytes: 1 << 20})
	if err != nil || len(prep.Txs) != 1 {
		t.Fatalf("prepare kept %d txs (%v), want 1", len(prep.Txs), err)
	}
	small, err := h.app.PrepareProposal(ctx, &abci.RequestPrepareProposal{Height: 1, Txs: [][]byte{good}, MaxTxBytes: int64(len(good))})
	if err != nil || len(small.Txs) != 0 {
		t.Fatalf("prepare ignored the byte limit: %d txs", len(small.Txs))
	}
	// ProcessProposal refuses a block holding a transaction that does not apply.
	for _, bad := range [][][]byte{{good, broke}, {forged}, {good, replay}} {
		res, err := h.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: 1, Txs: bad})
		if err != nil || res.Status != abci.ResponseProcessProposal_REJECT {
			t.Fatalf("bad proposal: %v %v", res.Status, err)
		}
	}
	// A decided block is executed even if it was never processed here:
	// the refused transaction gets its code and changes nothing.
	fin, err := h.app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Txs: [][]byte{good, broke}})
	if err != nil {
		t.Fatal(err)
	}
	if fin.TxResults[0].Code != 0 || ledger.Code(fin.TxResults[1].Code) != ledger.CodeInsufficient {
		t.Fatalf("results %v", fin.TxResults)
	}
	if _, err := h.app.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestartFromDatabase: a reopened App reports the height and app hash
// it committed, and holds the same state.
func TestRestartFromDatabase(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	bob := idOf(testKey("bob"))
	for n := uint64(0); n < 3; n++ {
		h.block(h.tx("alice", n, &ledger.Transfer{To: bob, Amount: grid}))
	}
	before, _ := h.app.Info(context.Background(), &abci.RequestInfo{})
	h.app.Close()
	again, err := NewApp(AppConfig{DBPath: h.path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	after, _ := again.Info(context.Background(), &abci.RequestInfo{})
	if after.LastBlockHeight != 3 || string(after.LastBlockAppHash) != string(before.LastBlockAppHash) {
		t.Fatalf("after reopening: height %d hash %X, before: height %d hash %X", after.LastBlockHeight, after.LastBlockAppHash, before.LastBlockHeight, before.LastBlockAppHash)
	}
	v, err := again.query(PathAccount, []byte(bob))
	if err != nil || v.(ledger.AccountView).Balance != 3*grid {
		t.Fatalf("bob after reopening: %+v %v", v, err)
	}
	rec, err := again.query(PathTx, []byte(ledger.TxHash(h.tx("alice", 2, &ledger.Transfer{To: bob, Amount: grid})).String()))
	if err != nil || rec.(*TxRecord).Height != 3 {
		t.Fatalf("tx record after reopening: %+v %v", rec, err)
	}
}

// TestBrokenInvariantHalts: a state whose books do not balance (here: a
// balance edited in the database, hash and all) is refused at the next
// block instead of being built upon.
func TestBrokenInvariantHalts(t *testing.T) {
	h := newAppHarness(t, map[string]gridmind.Amount{"alice": 10 * grid})
	h.block()
	h.app.Close()
	db, err := openStore(h.path)
	if err != nil {
		t.Fatal(err)
	}
	entries, height, _, _, err := db.load()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if e.Key == "acct/"+string(idOf(testKey("alice"))) {
			var a ledger.Account
			json.Unmarshal(e.Value, &a)
			a.Balance += 1
			entries[i].Value, _ = json.Marshal(a)
		}
	}
	st, err := ledger.Restore(entries, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hash := st.Hash()
	if err := db.reset(entries, height, hash[:]); err != nil {
		t.Fatal(err)
	}
	db.close()
	app, err := NewApp(AppConfig{DBPath: h.path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	_, err = app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: 2})
	if !errors.Is(err, ledger.ErrSupply) || !errors.Is(app.Halted(), ledger.ErrSupply) {
		t.Fatalf("finalize on a broken state: %v (halted: %v)", err, app.Halted())
	}
	if c := ledger.Code(must(app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: h.tx("alice", 0, &ledger.Stake{Amount: 1})})).Code); c != ledger.CodeInternal {
		t.Fatalf("a halted app accepted a transaction: %s", c)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
