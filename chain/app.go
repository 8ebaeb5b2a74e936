package chain

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/gridmind/gridmind/ledger"
)

// AppConfig configures the ABCI application.
type AppConfig struct {
	// DBPath is the bbolt file holding the ledger state (created if absent).
	DBPath string
	Logger *slog.Logger
	// Ledger are the deterministic hooks (reputation multiplier, evidence
	// check); every validator must run the same ones.
	Ledger ledger.Options
	// InvariantEvery walks the whole state to check the supply invariant,
	// and the running totals the per-block check uses, after every N-th
	// block (before it is committed; a failure halts the node). Every
	// block gets the incremental check (ledger.State.CheckSupply) anyway.
	// 0 means DefaultInvariantEvery. Debug builds (-tags gridmind_debug)
	// and this package's tests walk after every block.
	InvariantEvery int64
	// Verify overrides the ed25519 verifier (it must give identical
	// results to crypto/ed25519); nil uses the standard library.
	Verify ledger.VerifyFunc
}

// App is gridmind's ABCI application: the ledger state machine behind
// CometBFT. CheckTx and ProcessProposal share one validation path
// (verify, then apply to a fork of the committed state); FinalizeBlock
// reuses the fork ProcessProposal built for the same block; Commit writes
// state, height and app hash in one bbolt transaction.
//
// It is safe for the concurrent use CometBFT makes of it with one ABCI
// connection per purpose and lock-free CheckTx (see clientCreator): CheckTx and
// queries run alongside the consensus calls.
type App struct {
	abci.BaseApplication

	cfg AppConfig
	log *slog.Logger
	db  *store

	chainID atomic.Pointer[string] // set by InitChain or the loaded state

	mu        sync.RWMutex // guards the fields below and writes to committed
	committed *ledger.State
	height    int64
	appHash   []byte
	closed    bool
	halted    error

	checkMu sync.Mutex    // guards check; taken before mu
	check   *ledger.State // pending layer for CheckTx, over committed

	verified *txCache

	execMu  sync.Mutex
	execs   map[ledger.Hash]*execution // proposals executed at height+1
	pending *execution                 // finalized, waiting for Commit
}

var _ abci.Application = (*App)(nil)

// DefaultInvariantEvery is how often, in blocks, a validator walks its
// whole state to check the supply (see AppConfig.InvariantEvery): the walk
// costs a pass over every account and job, and the per-block incremental
// check already covers each block's changes.
const DefaultInvariantEvery = 100

// defaultInvariantEvery is DefaultInvariantEvery, or 1 in this package's
// tests (TestMain), so that they cross-check every block.
var defaultInvariantEvery int64 = DefaultInvariantEvery

// execution is a block run on a fork of the committed state.
type execution struct {
	key    ledger.Hash
	height int64
	fork   *ledger.State
	res    *ledger.BlockResult
	hashes []ledger.Hash
	ok     bool // every transaction succeeded
}

// NewApp opens (or creates) the application database and loads the last
// committed state.
func NewApp(cfg AppConfig) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if debugBuild {
		cfg.InvariantEvery = 1
	}
	if cfg.InvariantEvery <= 0 {
		cfg.InvariantEvery = defaultInvariantEvery
	}
	db, err := openStore(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger, db: db, verified: newTxCache(1 << 17), execs: map[ledger.Hash]*execution{}}
	entries, height, appHash, ok, err := db.load()
	if err != nil {
		db.close()
		return nil, fmt.Errorf("chain: load state: %w", err)
	}
	if ok {
		st, err := ledger.Restore(entries, cfg.Ledger)
		if err != nil {
			db.close()
			return nil, err
		}
		if h := st.Hash(); string(h[:]) != string(appHash) || st.Height() != height {
			db.close()
			return nil, fmt.Errorf("chain: stored state is at height %d with hash %X, but the database says height %d hash %X", st.Height(), h[:], height, appHash)
		}
		a.committed, a.height, a.appHash = st, height, appHash
		a.setChainID(st.ChainID())
		a.log.Info("ledger state loaded", "height", height, "app_hash", fmt.Sprintf("%X", appHash), "entries", len(entries))
	}
	return a, nil
}

func (a *App) setChainID(id string) { a.chainID.Store(&id) }

// ChainID is the chain the application runs ("" before InitChain).
func (a *App) ChainID() string {
	if p := a.chainID.Load(); p != nil {
		return *p
	}
	return ""
}

// Close closes the database. The node must be stopped first.
func (a *App) Close() error {
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return a.db.close()
}

// Halted returns the error that stopped the application (a broken
// invariant, a failed commit), or nil.
func (a *App) Halted() error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.halted
}

func (a *App) halt(err error) error {
	a.mu.Lock()
	if a.halted == nil {
		a.halted = err
	}
	a.mu.Unlock()
	a.log.Error("ledger halted: refusing to go on", "err", err)
	return err
}

// Info tells CometBFT how far the application got; the handshake replays
// the blocks it is missing.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return &abci.ResponseInfo{
		Data: "gridmind", Version: "1", AppVersion: 1,
		LastBlockHeight: a.height, LastBlockAppHash: a.appHash,
	}, nil
}

// InitChain builds the genesis state from the genesis document's
// app_state (a ledger.Genesis).
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	if req.InitialHeight > 1 {
		return nil, fmt.Errorf("chain: initial height %d: gridmind chains start at height 1", req.InitialHeight)
	}
	g, err := parseAppState(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	if g.ChainID != req.ChainId {
		return nil, fmt.Errorf("chain: app_state is for chain %q, genesis says %q", g.ChainID, req.ChainId)
	}
	st, err := ledger.NewState(*g, a.cfg.Ledger)
	if err != nil {
		return nil, err
	}
	h := st.Hash()
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.db.reset(st.Entries(), 0, h[:]); err != nil {
		return nil, fmt.Errorf("chain: persist genesis: %w", err)
	}
	a.committed, a.height, a.appHash, a.check = st, 0, h[:], nil
	a.setChainID(g.ChainID)
	a.log.Info("genesis state created", "chain_id", g.ChainID, "accounts", len(g.Accounts), "app_hash", fmt.Sprintf("%X", h[:]))
	return &abci.ResponseInitChain{AppHash: h[:]}, nil
}

// verify decodes and checks a transaction's signature once; later calls
// for the same bytes (recheck, proposal, finalize) hit the cache.
func (a *App) verify(raw []byte) (*ledger.VerifiedTx, ledger.Hash, *ledger.TxError) {
	h := ledger.TxHash(raw)
	if v := a.verified.get(h); v != nil {
		return v, h, nil
	}
	v, err := ledger.Verify(a.ChainID(), raw, a.cfg.Verify)
	if err != nil {
		var te *ledger.TxError
		if errors.As(err, &te) {
			return nil, h, te
		}
		return nil, h, &ledger.TxError{Code: ledger.CodeMalformed, Msg: err.Error()}
	}
	a.verified.put(h, v)
	return v, h, nil
}

// CheckTx validates a transaction against the pending layer: the
// committed state plus every transaction already accepted into the
// mempool, so an account can have several transactions in one block.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	v, _, terr := a.verify(req.Tx)
	if terr != nil {
		return checkTxResponse(terr.Code, terr.Msg), nil
	}
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed || a.halted != nil || a.committed == nil {
		return checkTxResponse(ledger.CodeInternal, "ledger not running"), nil
	}
	if a.check == nil {
		fork := a.committed.Fork()
		if _, err := fork.BeginBlock(a.height+1, ""); err != nil {
			return checkTxResponse(ledger.CodeInternal, err.Error()), nil
		}
		a.check = fork
	}
	r := a.check.Apply(v)
	if r.Code == ledger.CodeBadNonce {
		// The pending layer has used the nonce, but the chain may not have:
		// then a transaction with it is waiting in the mempool, which is
		// not the same as "already used" to a user deciding whether to
		// retry.
		tx := v.Tx()
		if acct := a.committed.Account(tx.From); tx.Nonce >= acct.Nonce && strings.Contains(r.Log, "already used") {
			r.Log = fmt.Sprintf("nonce %d of %s is taken by a transaction waiting in the mempool (committed next nonce %d); wait for it to commit or fail", tx.Nonce, tx.From.Short(), acct.Nonce)
		}
	}
	return checkTxResponse(r.Code, r.Log), nil
}

func checkTxResponse(code ledger.Code, log string) *abci.ResponseCheckTx {
	return &abci.ResponseCheckTx{Code: uint32(code), Log: log, Codespace: codespace(code)}
}

func codespace(c ledger.Code) string {
	if c == ledger.CodeOK {
		return ""
	}
	return "gridmind"
}

// proposerHex prints a consensus address the way genesis names validators.
func proposerHex(addr []byte) string {
	if len(addr) == 0 {
		return ""
	}
	return cmtbytes.HexBytes(addr).String()
}

func execKey(height, unixTime int64, proposer []byte, hashes []ledger.Hash) ledger.Hash {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(height)))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(unixTime)))
	h.Write([]byte{byte(len(proposer))})
	h.Write(proposer)
	for _, x := range hashes {
		h.Write(x[:])
	}
	var k ledger.Hash
	h.Sum(k[:0])
	return k
}

// execute runs txs as block height on a fresh fork of the committed state.
// With keepGoing false it stops at the first refused transaction
// (ProcessProposal only needs to know the block is bad).
func (a *App) execute(height, unixTime int64, proposer []byte, txs [][]byte, keepGoing bool) (*execution, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.committed == nil || a.closed {
		return nil, errors.New("chain: ledger not running")
	}
	if height != a.height+1 {
		return nil, fmt.Errorf("chain: block %d does not follow committed height %d", height, a.height)
	}
	a.preverify(txs)
	ex := &execution{height: height, fork: a.committed.Fork(), hashes: make([]ledger.Hash, len(txs)), ok: true}
	events, err := ex.fork.BeginBlockAt(height, unixTime, proposerHex(proposer))
	if err != nil {
		return nil, err
	}
	ex.res = &ledger.BlockResult{Height: height, BlockEvents: events, TxResults: make([]ledger.TxResult, len(txs))}
	for i, raw := range txs {
		v, h, terr := a.verify(raw)
		ex.hashes[i] = h
		var r ledger.TxResult
		if terr != nil {
			r = ledger.TxResult{Code: terr.Code, Log: terr.Msg}
		} else {
			r = ex.fork.Apply(v)
		}
		if r.Code == ledger.CodeInternal {
			return nil, fmt.Errorf("%w: block %d tx %d: %s", ledger.ErrSupply, height, i, r.Log)
		}
		ex.res.TxResults[i] = r
		if r.Code != ledger.CodeOK {
			ex.ok = false
			if !keepGoing {
				return ex, nil
			}
		}
	}
	ex.key = execKey(height, unixTime, proposer, ex.hashes)
	return ex, nil
}

// preverify checks, in parallel, the signatures of the transactions of a
// block that this node has not seen before (a block that arrived before
// the gossip of its transactions, or one replayed at start-up), so that
// the sequential execution that follows finds them all in the cache.
// Verification is a pure function of the bytes, so doing it early and
// concurrently changes no result.
func (a *App) preverify(txs [][]byte) {
	var missing [][]byte
	for _, raw := range txs {
		if a.verified.get(ledger.TxHash(raw)) == nil {
			missing = append(missing, raw)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(missing)/32)
	if workers < 2 {
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(missing); i += workers {
				a.verify(missing[i])
			}
		}(w)
	}
	wg.Wait()
}

func (a *App) remember(ex *execution) {
	a.execMu.Lock()
	defer a.execMu.Unlock()
	if len(a.execs) > 16 { // rounds that never end; keep the map small
		clear(a.execs)
	}
	a.execs[ex.key] = ex
}

func (a *App) recall(height, unixTime int64, proposer []byte, txs [][]byte) *execution {
	hashes := make([]ledger.Hash, len(txs))
	for i, raw := range txs {
		hashes[i] = ledger.TxHash(raw)
	}
	key := execKey(height, unixTime, proposer, hashes)
	a.execMu.Lock()
	defer a.execMu.Unlock()
	return a.execs[key]
}

// PrepareProposal keeps, in mempool order, the transactions that still
// apply and fit in the block; the rest are dropped (the mempool's recheck
// removes them).
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	began := time.Now()
	a.mu.RLock()
	if a.committed == nil || a.closed || req.Height != a.height+1 {
		a.mu.RUnlock()
		return nil, fmt.Errorf("chain: prepare block %d: ledger at height %d", req.Height, a.height)
	}
	fork := a.committed.Fork()
	a.mu.RUnlock()
	events, err := fork.BeginBlockAt(req.Height, req.Time.Unix(), proposerHex(req.ProposerAddress))
	if err != nil {
		return nil, err
	}
	ex := &execution{height: req.Height, fork: fork, ok: true,
		res: &ledger.BlockResult{Height: req.Height, BlockEvents: events}}
	a.preverify(req.Txs)
	var kept [][]byte
	var size int64
	for _, raw := range req.Txs {
		txSize := cmttypes.ComputeProtoSizeForTxs([]cmttypes.Tx{raw})
		if size+txSize > req.MaxTxBytes {
			break
		}
		v, h, terr := a.verify(raw)
		if terr != nil {
			continue
		}
		a.mu.RLock() // the fork reads the committed state
		r := fork.Apply(v)
		a.mu.RUnlock()
		if r.Code == ledger.CodeInternal {
			return nil, a.halt(fmt.Errorf("%w: preparing block %d: %s", ledger.ErrSupply, req.Height, r.Log))
		}
		if r.Code != ledger.CodeOK {
			continue
		}
		size += txSize
		kept = append(kept, raw)
		ex.hashes = append(ex.hashes, h)
		ex.res.TxResults = append(ex.res.TxResults, r)
	}
	ex.key = execKey(req.Height, req.Time.Unix(), req.ProposerAddress, ex.hashes)
	a.remember(ex)
	a.log.Debug("proposal prepared", "height", req.Height, "offered", len(req.Txs), "kept", len(kept), "took", time.Since(began))
	return &abci.ResponsePrepareProposal{Txs: kept}, nil
}

// ProcessProposal accepts a block only if every transaction in it applies;
// an honest proposer (PrepareProposal) never proposes anything else.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	began := time.Now()
	accept := &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}
	reject := &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}
	if ex := a.recall(req.Height, req.Time.Unix(), req.ProposerAddress, req.Txs); ex != nil {
		if ex.ok {
			return accept, nil
		}
		return reject, nil
	}
	ex, err := a.execute(req.Height, req.Time.Unix(), req.ProposerAddress, req.Txs, false)
	if err != nil {
		if errors.Is(err, ledger.ErrSupply) {
			return nil, a.halt(err)
		}
		a.log.Warn("proposal refused", "height", req.Height, "err", err)
		return reject, nil
	}
	if !ex.ok {
		a.log.Warn("proposal refused: it holds a transaction that does not apply", "height", req.Height)
		return reject, nil
	}
	a.remember(ex)
	a.log.Debug("proposal processed", "height", req.Height, "txs", len(req.Txs), "took", time.Since(began))
	return accept, nil
}

// FinalizeBlock executes the decided block (or takes the execution
// ProcessProposal already did for it) and returns the results and the
// app hash. Nothing is persisted until Commit. A broken invariant returns
// an error, which stops CometBFT's consensus: the node halts rather than
// commit a state that diverges from the rules.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	ex := a.recall(req.Height, req.Time.Unix(), req.ProposerAddress, req.Txs)
	if ex == nil || !ex.ok {
		// Not proposed through this node (block sync, replay), or refused
		// by ProcessProposal but decided anyway: run it, keeping results.
		var err error
		if ex, err = a.execute(req.Height, req.Time.Unix(), req.ProposerAddress, req.Txs, true); err != nil {
			return nil, a.halt(err)
		}
	}
	a.mu.RLock()
	err := ex.fork.CheckSupply()
	if err == nil && ex.height%a.cfg.InvariantEvery == 0 {
		err = ex.fork.CheckInvariant()
	}
	a.mu.RUnlock()
	if err != nil {
		return nil, a.halt(err)
	}
	if ex.res.AppHash == (ledger.Hash{}) {
		a.mu.RLock()
		ex.res.AppHash = ex.fork.Hash()
		a.mu.RUnlock()
	}
	a.execMu.Lock()
	a.pending = ex
	a.execMu.Unlock()
	results := make([]*abci.ExecTxResult, len(ex.res.TxResults))
	for i, r := range ex.res.TxResults {
		results[i] = &abci.ExecTxResult{Code: uint32(r.Code), Log: r.Log, Data: r.Data, Codespace: codespace(r.Code)}
	}
	return &abci.ResponseFinalizeBlock{TxResults: results, AppHash: ex.res.AppHash[:]}, nil
}

// Commit persists the finalized block (state changes, height, app hash,
// transaction results, history) in one database transaction, then makes
// it the committed state and resets the CheckTx layer.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	began := time.Now()
	a.execMu.Lock()
	ex := a.pending
	a.pending = nil
	clear(a.execs)
	a.execMu.Unlock()
	if ex == nil {
		return nil, a.halt(errors.New("chain: commit without a finalized block"))
	}
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("chain: commit after close")
	}
	if err := a.db.commitBlock(ex); err != nil {
		a.halted = fmt.Errorf("chain: persist block %d: %w", ex.height, err)
		return nil, a.halted
	}
	if err := a.committed.Commit(ex.fork); err != nil {
		a.halted = err
		return nil, err
	}
	a.height = ex.height
	a.appHash = append([]byte(nil), ex.res.AppHash[:]...)
	a.check = nil
	a.verified.drop(ex.hashes)
	a.log.Debug("block committed", "height", ex.height, "txs", len(ex.hashes), "took", time.Since(began))
	return &abci.ResponseCommit{}, nil
}

// txCache remembers verified transactions by hash, in two generations so
// that old entries age out without tracking each one.
type txCache struct {
	mu       sync.Mutex
	cur, old map[ledger.Hash]*ledger.VerifiedTx
	limit    int
}

func newTxCache(limit int) *txCache {
	return &txCache{cur: map[ledger.Hash]*ledger.VerifiedTx{}, old: map[ledger.Hash]*ledger.VerifiedTx{}, limit: limit}
}

func (c *txCache) get(h ledger.Hash) *ledger.VerifiedTx {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[h]; ok {
		return v
	}
	return c.old[h]
}

func (c *txCache) put(h ledger.Hash, v *ledger.VerifiedTx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.limit {
		c.old, c.cur = c.cur, make(map[ledger.Hash]*ledger.VerifiedTx, c.limit/4)
	}
	c.cur[h] = v
}

func (c *txCache) drop(hashes []ledger.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hashes {
		delete(c.cur, h)
		delete(c.old, h)
	}
}
