package chain

import (
	"context"
	"encoding/json"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/verify"
)

// Query paths. Arguments travel in the query's data (a node id, a job id,
// a hash, or a JSON object), answers are JSON.
const (
	PathStatus      = "/status"      // → AppStatus
	PathAccount     = "/account"     // node id → ledger.AccountView
	PathJob         = "/job"         // job id → ledger.Job
	PathJobs        = "/jobs"        // JSON ledger.JobFilter → []ledger.Job
	PathProvider    = "/provider"    // node id → ledger.Provider
	PathProviders   = "/providers"   // → []ledger.Provider
	PathLeases      = "/leases"      // job id → []ledger.Lease
	PathLeasesOf    = "/leases-of"   // node id → []ledger.ProviderLease
	PathReceipts    = "/receipts"    // job id → []ledger.Receipt
	PathReputation  = "/reputation"  // node id → ledger.Reputation
	PathReputations = "/reputations" // → []ledger.Reputation
	PathSlashes     = "/slashes"     // → []ledger.SlashRecord
	PathBanned      = "/banned"      // → []ledger.VerifyRecord, nodes banned for proven inference fraud
	// PathInferenceDraw: raw verify.ServedReceipt encoding → InferenceDraw.
	PathInferenceDraw = "/inference-draw"
	PathSupply        = "/supply"  // → SupplyReport
	PathParams        = "/params"  // → ledger.Params
	PathTx            = "/tx"      // hex tx hash → TxRecord
	PathHistory       = "/history" // JSON HistoryQuery → []HistoryEntry
)

// InferenceDraw is a served receipt's audit draw (ledger.State.InferenceDraw):
// the first block later than the receipt, the beacon of the block after
// it, and the committee, in order (the first member does the spot check).
type InferenceDraw struct {
	Height    int64             `json:"height"`
	Beacon    ledger.Hash       `json:"beacon"`
	Committee []gridmind.NodeID `json:"committee"`
}

// AppStatus is what the application itself knows about the chain.
type AppStatus struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`   // last committed block
	AppHash string `json:"app_hash"` // state hash after that block (hex)
}

// SupplyReport is the supply invariant, recomputed over the whole state.
type SupplyReport struct {
	ledger.Supply
	Total     gridmind.Amount `json:"total"`
	Expected  gridmind.Amount `json:"expected"` // genesis supply + minted
	Invariant bool            `json:"invariant"`
	Height    int64           `json:"height"`
}

// HistoryQuery asks for an account's latest history entries.
type HistoryQuery struct {
	Account gridmind.NodeID `json:"account"`
	Limit   int             `json:"limit,omitempty"` // default 50, at most 1000
}

// Query answers read-only questions about the committed state.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	v, err := a.query(req.Path, req.Data)
	a.mu.RLock()
	height := a.height
	a.mu.RUnlock()
	if err != nil {
		code := ledger.CodeInvalid
		if te, ok := err.(*ledger.TxError); ok {
			code = te.Code
		}
		return &abci.ResponseQuery{Code: uint32(code), Log: err.Error(), Height: height, Codespace: "gridmind"}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &abci.ResponseQuery{Code: uint32(ledger.CodeInternal), Log: err.Error(), Height: height}, nil
	}
	return &abci.ResponseQuery{Value: b, Height: height}, nil
}

func notFound(format string, args ...any) error {
	return &ledger.TxError{Code: ledger.CodeNotFound, Msg: fmt.Sprintf(format, args...)}
}

func badQuery(format string, args ...any) error {
	return &ledger.TxError{Code: ledger.CodeInvalid, Msg: fmt.Sprintf(format, args...)}
}

func nodeArg(data []byte) (gridmind.NodeID, error) {
	id := gridmind.NodeID(data)
	if err := id.Validate(); err != nil {
		return "", badQuery("%v", err)
	}
	return id, nil
}

func jobArg(data []byte) (ledger.JobID, error) {
	id, err := ledger.ParseJobID(string(data))
	if err != nil {
		return "", badQuery("%v", err)
	}
	return id, nil
}

func (a *App) query(path string, data []byte) (any, error) {
	// Indexes outside the consensus state live in the database.
	switch path {
	case PathTx:
		h, err := ledger.ParseHash(string(data))
		if err != nil {
			return nil, badQuery("tx hash: %v", err)
		}
		rec, ok, err := a.db.txRecord(h)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound("no committed transaction %s", h)
		}
		return rec, nil
	case PathHistory:
		var q HistoryQuery
		if err := json.Unmarshal(data, &q); err != nil {
			return nil, badQuery("history query: %v", err)
		}
		if err := q.Account.Validate(); err != nil {
			return nil, badQuery("%v", err)
		}
		if q.Limit <= 0 {
			q.Limit = 50
		}
		return a.db.history(q.Account, min(q.Limit, 1000))
	}

	a.mu.RLock()
	defer a.mu.RUnlock()
	st := a.committed
	if st == nil || a.closed {
		return nil, &ledger.TxError{Code: ledger.CodeInternal, Msg: "ledger not running"}
	}
	switch path {
	case PathStatus:
		return AppStatus{ChainID: st.ChainID(), Height: a.height, AppHash: fmt.Sprintf("%X", a.appHash)}, nil
	case PathAccount:
		id, err := nodeArg(data)
		if err != nil {
			return nil, err
		}
		return st.Account(id), nil
	case PathJob, PathLeases, PathReceipts:
		id, err := jobArg(data)
		if err != nil {
			return nil, err
		}
		j, ok := st.Job(id)
		if !ok {
			return nil, notFound("no job %s", id)
		}
		switch path {
		case PathLeases:
			return j.Leases, nil
		case PathReceipts:
			return st.Receipts(id), nil
		}
		return j, nil
	case PathJobs:
		var f ledger.JobFilter
		if len(data) > 0 {
			if err := json.Unmarshal(data, &f); err != nil {
				return nil, badQuery("job filter: %v", err)
			}
		}
		return st.Jobs(f), nil
	case PathProvider:
		id, err := nodeArg(data)
		if err != nil {
			return nil, err
		}
		p, ok := st.Provider(id)
		if !ok {
			return nil, notFound("%s is not a registered provider", id)
		}
		return p, nil
	case PathProviders:
		return st.Providers(), nil
	case PathLeasesOf:
		id, err := nodeArg(data)
		if err != nil {
			return nil, err
		}
		return st.LeasesOf(id), nil
	case PathReputation:
		id, err := nodeArg(data)
		if err != nil {
			return nil, err
		}
		return st.Reputation(id), nil
	case PathReputations:
		return st.Reputations(), nil
	case PathSlashes:
		return st.Slashes(), nil
	case PathBanned:
		return st.BannedNodes(), nil
	case PathInferenceDraw:
		rc, err := verify.DecodeServedReceipt(data)
		if err != nil {
			return nil, badQuery("receipt: %v", err)
		}
		height, committee, err := st.InferenceDraw(&rc)
		if err != nil {
			return nil, notFound("%v", err)
		}
		beacon, _ := st.AuditBeacon(height)
		return InferenceDraw{Height: height, Beacon: beacon, Committee: committee}, nil
	case PathParams:
		return st.Params(), nil
	case PathSupply:
		return supplyReport(st, a.height), nil
	}
	return nil, badQuery("unknown query path %q", path)
}

func supplyReport(st *ledger.State, height int64) SupplyReport {
	sup := st.SupplyOf()
	total, ok1 := sup.Total()
	// Burned fees have left the supply: what is held is genesis + minted − burned.
	want, ok2 := sup.GenesisSupply.AddChecked(sup.Minted)
	ok2 = ok2 && want >= sup.Burned
	want -= min(want, sup.Burned)
	return SupplyReport{Supply: sup, Total: total, Expected: want, Invariant: ok1 && ok2 && total == want && st.CheckInvariant() == nil, Height: height}
}
