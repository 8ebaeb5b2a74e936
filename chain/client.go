package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/node"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

// ClientOptions tune a Client.
type ClientOptions struct {
	Logger *slog.Logger
	// Timeout bounds one HTTP request to one validator (default 10 s).
	Timeout time.Duration
	// PollInterval is how often WaitTx asks whether a transaction has been
	// committed (default 20 ms).
	PollInterval time.Duration
	// StaleAfter: a validator whose latest block is older than this is
	// passed over while another has a fresh one (default 30 s; negative
	// turns the check off). A validator cut off from the others still
	// answers, with old data; this is how the client notices.
	StaleAfter time.Duration
}

type backend struct {
	addr string
	rpc  rpcclient.Client

	mu        sync.Mutex
	checkedAt time.Time // when latest was last read
	latest    time.Time // its latest block's time
}

// staleCheckEvery bounds how often the client asks a validator for its
// latest block to judge staleness.
const staleCheckEvery = 2 * time.Second

// stale reports whether b's latest block is older than limit, reading it
// at most every staleCheckEvery. A validator that cannot say is not
// called stale here: the request itself will fail over.
func (b *backend) stale(ctx context.Context, limit time.Duration, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.checkedAt) >= staleCheckEvery {
		res, err := b.rpc.Status(ctx)
		if err != nil {
			return false
		}
		b.checkedAt, b.latest = now, res.SyncInfo.LatestBlockTime
	}
	return !b.latest.IsZero() && now.Sub(b.latest) > limit
}

// Client submits transactions and queries the ledger through a list of
// validators, failing over to the next one when a validator does not
// answer. Answers from the ledger itself (a refused transaction, an
// unknown account) are returned as they are, not retried elsewhere. It is
// safe for concurrent use.
type Client struct {
	backends   []*backend
	preferred  atomic.Int32
	log        *slog.Logger
	poll       time.Duration
	staleAfter time.Duration
}

// NewClient makes a client of the validators at addrs (http://host:port,
// tcp://host:port or host:port), tried in order with fail-over.
func NewClient(addrs []string, opts ClientOptions) (*Client, error) {
	if len(addrs) == 0 {
		return nil, gridmind.E(gridmind.KindInvalid, "chain.client", "no validator RPC address given")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	var bs []*backend
	for _, a := range addrs {
		addr := strings.TrimSpace(a)
		switch {
		case strings.HasPrefix(addr, "tcp://"):
			addr = "http://" + strings.TrimPrefix(addr, "tcp://")
		case !strings.Contains(addr, "://"):
			addr = "http://" + addr
		}
		c, err := rpchttp.NewWithTimeout(addr, "/websocket", uint(max(1, opts.Timeout/time.Second)))
		if err != nil {
			return nil, gridmind.E(gridmind.KindInvalid, "chain.client", "validator address %q: %w", a, err)
		}
		bs = append(bs, &backend{addr: addr, rpc: c})
	}
	return newClient(bs, opts), nil
}

func newClient(bs []*backend, opts ClientOptions) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.StaleAfter == 0 {
		opts.StaleAfter = 30 * time.Second
	}
	return &Client{backends: bs, log: opts.Logger, poll: opts.PollInterval, staleAfter: opts.StaleAfter}
}

func newLocalRPC(n *node.Node) rpcclient.Client { return rpclocal.New(n) }

// appError marks an answer from the ledger, which fail-over must not hide.
type appError struct{ err error }

func (e appError) Error() string { return e.err.Error() }
func (e appError) Unwrap() error { return e.err }

// do runs f against the preferred validator, then the others in turn;
// with several validators, stale ones (see ClientOptions.StaleAfter) come
// last.
func (c *Client) do(ctx context.Context, op string, f func(rpcclient.Client) error) error {
	n := len(c.backends)
	start := int(c.preferred.Load())
	order := make([]int, 0, n)
	var stale []int
	now := time.Now()
	for i := 0; i < n; i++ {
		idx := (start + i) % n
		if n > 1 && c.staleAfter > 0 && c.backends[idx].stale(ctx, c.staleAfter, now) {
			stale = append(stale, idx)
			continue
		}
		order = append(order, idx)
	}
	if len(stale) > 0 && len(order) > 0 && stale[0] == start {
		c.log.Warn("ledger validator is stale (its latest block is old); using another", "stale", c.backends[start].addr, "after", c.staleAfter)
	}
	order = append(order, stale...)
	var errs []error
	for _, idx := range order {
		b := c.backends[idx]
		err := f(b.rpc)
		if err == nil {
			if idx != start {
				c.preferred.Store(int32(idx))
				c.log.Info("ledger client failed over", "to", b.addr)
			}
			return nil
		}
		var ae appError
		if errors.As(err, &ae) {
			return ae.err
		}
		if ctx.Err() != nil {
			return gridmind.E(gridmind.KindUnavailable, op, "%w", ctx.Err())
		}
		errs = append(errs, fmt.Errorf("%s: %w", b.addr, err))
	}
	return gridmind.E(gridmind.KindUnavailable, op, "no validator answered: %w", errors.Join(errs...))
}

// Query asks the ledger application path (see the Path constants) with
// data and decodes the JSON answer into out.
func (c *Client) Query(ctx context.Context, path string, data []byte, out any) error {
	op := "chain.query " + path
	return c.do(ctx, op, func(r rpcclient.Client) error {
		res, err := r.ABCIQuery(ctx, path, data)
		if err != nil {
			return err
		}
		if res.Response.Code != 0 {
			return appError{(&ledger.TxError{Code: ledger.Code(res.Response.Code), Msg: res.Response.Log}).Kinded(op)}
		}
		if err := json.Unmarshal(res.Response.Value, out); err != nil {
			return appError{gridmind.E(gridmind.KindInternal, op, "decode answer: %w", err)}
		}
		return nil
	})
}

// Broadcast submits a signed transaction and returns once a validator's
// mempool accepted it (CheckTx passed); a refusal is a *ledger.TxError
// wrapped in a kinded error.
func (c *Client) Broadcast(ctx context.Context, raw []byte) (ledger.Hash, error) {
	const op = "chain.broadcast"
	hash := ledger.TxHash(raw)
	err := c.do(ctx, op, func(r rpcclient.Client) error {
		res, err := r.BroadcastTxSync(ctx, cmttypes.Tx(raw))
		if err != nil {
			// Already known (a retry after fail-over, or gossip got there
			// first): it is in a mempool, which is all Broadcast promises.
			if errors.Is(err, mempool.ErrTxInCache) || strings.Contains(err.Error(), mempool.ErrTxInCache.Error()) {
				return nil
			}
			return err
		}
		if res.Code != 0 {
			return appError{(&ledger.TxError{Code: ledger.Code(res.Code), Msg: res.Log}).Kinded(op)}
		}
		return nil
	})
	return hash, err
}

// UnknownOutcomeError is a transaction that was signed and sent but whose
// fate the client could not learn: nobody refused it, and it was not seen
// in a block before the wait ended. It may still commit, so retrying
// blindly could pay twice.
type UnknownOutcomeError struct {
	Hash ledger.Hash
	Err  error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("outcome unknown: transaction %s may still commit; check with `gridmind wallet tx %s` before sending it again (%v)", e.Hash, e.Hash, e.Err)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// unknownOutcome wraps an *UnknownOutcomeError with the kind unavailable:
// the network, not the transaction, is the problem.
func unknownOutcome(hash ledger.Hash, cause error) error {
	return gridmind.E(gridmind.KindUnavailable, "chain.submit", "%w", &UnknownOutcomeError{Hash: hash, Err: cause})
}

// isAppError reports whether err is an answer from the ledger (a refusal)
// rather than a failure to reach it.
func isAppError(err error) bool {
	var te *ledger.TxError
	return errors.As(err, &te)
}

// waitUnknown follows a transaction whose broadcast failed without a
// refusal: it may have reached a mempool before the connection broke. It
// polls until ctx ends and returns the record if the transaction commits,
// else an *UnknownOutcomeError.
func (c *Client) waitUnknown(ctx context.Context, hash ledger.Hash, cause error) (*TxRecord, error) {
	c.log.Warn("broadcast failed; following the transaction in case it got through", "tx", hash, "err", cause)
	rec, err := c.WaitTx(ctx, hash)
	if err != nil {
		return nil, unknownOutcome(hash, cause)
	}
	return rec, rec.Err()
}

// Tx returns the result of a committed transaction (KindNotFound if it is
// not committed, yet or ever).
func (c *Client) Tx(ctx context.Context, hash ledger.Hash) (*TxRecord, error) {
	var rec TxRecord
	if err := c.Query(ctx, PathTx, []byte(hash.String()), &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// WaitTx waits until the transaction is committed and returns its result
// (which may be a refusal: see TxRecord.Err). It gives up when ctx ends,
// not before: validators that do not answer for a while (a restart, a
// partition) are asked again at every poll, since the transaction may be
// committing meanwhile and giving up early would report a spend as failed
// that then goes through.
func (c *Client) WaitTx(ctx context.Context, hash ledger.Hash) (*TxRecord, error) {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	var unreachable error // the last time no validator answered
	for {
		rec, err := c.Tx(ctx, hash)
		if err == nil {
			return rec, nil
		}
		if ctx.Err() == nil { // else the wait is over: said below
			switch gridmind.KindOf(err) {
			case gridmind.KindNotFound: // not committed yet
			case gridmind.KindUnavailable:
				unreachable = err
			default:
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			if unreachable != nil {
				return nil, gridmind.E(gridmind.KindUnavailable, "chain.wait-tx", "transaction %s not seen committed: %w (and at times %w)", hash, ctx.Err(), unreachable)
			}
			return nil, gridmind.E(gridmind.KindUnavailable, "chain.wait-tx", "transaction %s not committed: %w", hash, ctx.Err())
		case <-t.C:
		}
	}
}

// Submit broadcasts a transaction and waits for it to commit. It returns
// an error if it was refused at either step, and an *UnknownOutcomeError
// when it cannot tell (see Wallet.Submit).
func (c *Client) Submit(ctx context.Context, raw []byte) (*TxRecord, error) {
	hash, err := c.Broadcast(ctx, raw)
	if err != nil {
		if isAppError(err) {
			return nil, err
		}
		return c.waitUnknown(ctx, hash, err)
	}
	rec, err := c.WaitTx(ctx, hash)
	if err != nil {
		return nil, unknownOutcome(hash, err)
	}
	return rec, rec.Err()
}

// Status is the state of the chain as one validator sees it.
type Status struct {
	ChainID          string    `json:"chain_id"`
	Height           int64     `json:"height"`   // last block the ledger committed
	AppHash          string    `json:"app_hash"` // ledger state hash after Height (hex)
	LatestBlockHash  string    `json:"latest_block_hash"`
	LatestBlockTime  time.Time `json:"latest_block_time"`
	CatchingUp       bool      `json:"catching_up"`
	Moniker          string    `json:"moniker"`
	NodeID           string    `json:"node_id"` // CometBFT p2p id
	ValidatorAddress string    `json:"validator_address"`
	VotingPower      int64     `json:"voting_power"`
}

// Status reads the chain's height and app hash and the validator's view.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	const op = "chain.status"
	var st Status
	err := c.do(ctx, op, func(r rpcclient.Client) error {
		res, err := r.Status(ctx)
		if err != nil {
			return err
		}
		q, err := r.ABCIQuery(ctx, PathStatus, nil)
		if err != nil {
			return err
		}
		if q.Response.Code != 0 {
			return fmt.Errorf("ledger: %s", q.Response.Log)
		}
		var app AppStatus
		if err := json.Unmarshal(q.Response.Value, &app); err != nil {
			return err
		}
		st = Status{
			ChainID: app.ChainID, Height: app.Height, AppHash: app.AppHash,
			LatestBlockHash: res.SyncInfo.LatestBlockHash.String(), LatestBlockTime: res.SyncInfo.LatestBlockTime,
			CatchingUp: res.SyncInfo.CatchingUp, Moniker: res.NodeInfo.Moniker, NodeID: string(res.NodeInfo.DefaultNodeID),
			ValidatorAddress: res.ValidatorInfo.Address.String(), VotingPower: res.ValidatorInfo.VotingPower,
		}
		return nil
	})
	return &st, err
}

// WaitHeight waits until the ledger has committed block height.
func (c *Client) WaitHeight(ctx context.Context, height int64) (*Status, error) {
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		st, err := c.Status(ctx)
		if err == nil && st.Height >= height {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, gridmind.E(gridmind.KindUnavailable, "chain.wait-height", "height %d not reached: %w", height, ctx.Err())
		case <-t.C:
		}
	}
}

// BlockInfo identifies a committed block.
type BlockInfo struct {
	Height int64  `json:"height"`
	Hash   string `json:"hash"`
	// AppHash in the header is the ledger state after the PREVIOUS block.
	AppHash string `json:"app_hash"`
	Txs     int    `json:"txs"`
}

// Block returns the block at height as the answering validator has it.
func (c *Client) Block(ctx context.Context, height int64) (*BlockInfo, error) {
	var bi BlockInfo
	err := c.do(ctx, "chain.block", func(r rpcclient.Client) error {
		res, err := r.Block(ctx, &height)
		if err != nil {
			return err
		}
		bi = BlockInfo{Height: res.Block.Height, Hash: res.BlockID.Hash.String(), AppHash: res.Block.AppHash.String(), Txs: len(res.Block.Txs)}
		return nil
	})
	return &bi, err
}

// Typed queries.

// Account returns an account (Exists is false for one never funded).
func (c *Client) Account(ctx context.Context, id gridmind.NodeID) (ledger.AccountView, error) {
	var v ledger.AccountView
	return v, c.Query(ctx, PathAccount, []byte(id), &v)
}

// Job returns a job.
func (c *Client) Job(ctx context.Context, id ledger.JobID) (ledger.Job, error) {
	var v ledger.Job
	return v, c.Query(ctx, PathJob, []byte(id), &v)
}

// Jobs lists jobs, newest first.
func (c *Client) Jobs(ctx context.Context, f ledger.JobFilter) ([]ledger.Job, error) {
	var v []ledger.Job
	b, _ := json.Marshal(f)
	return v, c.Query(ctx, PathJobs, b, &v)
}

// Provider returns a registered provider.
func (c *Client) Provider(ctx context.Context, id gridmind.NodeID) (ledger.Provider, error) {
	var v ledger.Provider
	return v, c.Query(ctx, PathProvider, []byte(id), &v)
}

// Providers lists the registered providers.
func (c *Client) Providers(ctx context.Context) ([]ledger.Provider, error) {
	var v []ledger.Provider
	return v, c.Query(ctx, PathProviders, nil, &v)
}

// Leases lists a job's leases.
func (c *Client) Leases(ctx context.Context, job ledger.JobID) ([]ledger.Lease, error) {
	var v []ledger.Lease
	return v, c.Query(ctx, PathLeases, []byte(job), &v)
}

// LeasesOf lists every lease a provider held.
func (c *Client) LeasesOf(ctx context.Context, id gridmind.NodeID) ([]ledger.ProviderLease, error) {
	var v []ledger.ProviderLease
	return v, c.Query(ctx, PathLeasesOf, []byte(id), &v)
}

// Receipts lists a job's round receipts.
func (c *Client) Receipts(ctx context.Context, job ledger.JobID) ([]ledger.Receipt, error) {
	var v []ledger.Receipt
	return v, c.Query(ctx, PathReceipts, []byte(job), &v)
}

// Reputation returns a node's raw reputation counters.
func (c *Client) Reputation(ctx context.Context, id gridmind.NodeID) (ledger.Reputation, error) {
	var v ledger.Reputation
	return v, c.Query(ctx, PathReputation, []byte(id), &v)
}

// Reputations lists every node's reputation counters.
func (c *Client) Reputations(ctx context.Context) ([]ledger.Reputation, error) {
	var v []ledger.Reputation
	return v, c.Query(ctx, PathReputations, nil, &v)
}

// Banned lists the nodes banned for proven inference fraud
// (ledger.InferenceFraudProof), in node order.
func (c *Client) Banned(ctx context.Context) ([]ledger.VerifyRecord, error) {
	var v []ledger.VerifyRecord
	return v, c.Query(ctx, PathBanned, nil, &v)
}

// InferenceDraw is the audit draw of a served receipt: an error (not
// found) while its beacon is not decided yet or once it is stale.
func (c *Client) InferenceDraw(ctx context.Context, rc *verify.ServedReceipt) (InferenceDraw, error) {
	var v InferenceDraw
	return v, c.Query(ctx, PathInferenceDraw, rc.Encode(), &v)
}

// Slashes lists every slash.
func (c *Client) Slashes(ctx context.Context) ([]ledger.SlashRecord, error) {
	var v []ledger.SlashRecord
	return v, c.Query(ctx, PathSlashes, nil, &v)
}

// Supply recomputes the supply invariant over the whole state.
func (c *Client) Supply(ctx context.Context) (SupplyReport, error) {
	var v SupplyReport
	return v, c.Query(ctx, PathSupply, nil, &v)
}

// Params returns the ledger rules.
func (c *Client) Params(ctx context.Context) (ledger.Params, error) {
	var v ledger.Params
	return v, c.Query(ctx, PathParams, nil, &v)
}

// History returns up to limit of an account's latest changes, newest first.
func (c *Client) History(ctx context.Context, id gridmind.NodeID, limit int) ([]HistoryEntry, error) {
	var v []HistoryEntry
	b, _ := json.Marshal(HistoryQuery{Account: id, Limit: limit})
	return v, c.Query(ctx, PathHistory, b, &v)
}
