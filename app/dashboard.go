package app

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/reputation"
	"github.com/gridmind/gridmind/web"
)

// Bounds on what one dashboard snapshot carries: a big network's peer
// table or ledger must not make every open page pull megabytes a second.
const (
	dashboardPeers        = 256
	dashboardAccounts     = 64
	dashboardJobs         = 30
	dashboardTransactions = 80
	dashboardHistoryEach  = 20 // history entries read per account
)

// Dashboard is the web dashboard's view of the network from this node, as
// one JSON document: served at GET /api/v1/dashboard and streamed as the
// "snapshot" event of GET /api/v1/events. Amounts are µGRID (integers),
// reputation scores parts per million.
type Dashboard struct {
	Time   time.Time   `json:"time"`
	Node   node.Status `json:"node"`
	Region string      `json:"region,omitempty"`
	// Peers are the live peers (at most dashboardPeers of PeerCount), with
	// their ledger reputation where the ledger has a record.
	Peers     []DashboardPeer `json:"peers"`
	PeerCount int             `json:"peer_count"`
	// Ledger is nil on a node without one; LedgerError says why it is
	// missing when the ledger could not be read.
	Ledger      *DashboardLedger `json:"ledger,omitempty"`
	LedgerError string           `json:"ledger_error,omitempty"`
	Jobs        []DashboardJob   `json:"jobs"`
	Models      []DashboardModel `json:"models"`
}

// DashboardPeer is a live peer and its reputation on the ledger.
type DashboardPeer struct {
	node.PeerInfo
	Reputation *reputation.Score `json:"reputation,omitempty"`
}

// DashboardLedger is the ledger at one height.
type DashboardLedger struct {
	ChainID         string             `json:"chain_id"`
	Height          int64              `json:"height"`
	AppHash         string             `json:"app_hash"`
	LatestBlockTime time.Time          `json:"latest_block_time"`
	Supply          chain.SupplyReport `json:"supply"`
	// Accounts are the ones this node knows of: itself, its peers, the
	// registered providers and the requesters of recent jobs.
	Accounts []DashboardAccount `json:"accounts"`
	// Transactions are the latest history entries of those accounts,
	// newest first.
	Transactions []chain.HistoryEntry `json:"transactions"`
}

// DashboardAccount is one account's balances and standing.
type DashboardAccount struct {
	Address    gridmind.NodeID  `json:"address"`
	Balance    gridmind.Amount  `json:"balance"`
	Stake      gridmind.Amount  `json:"stake"`
	Unbonding  gridmind.Amount  `json:"unbonding"`
	Provider   bool             `json:"provider"`
	Price      gridmind.Amount  `json:"price_per_unit,omitempty"`
	Reputation reputation.Score `json:"reputation"`
	Self       bool             `json:"self,omitempty"`
}

// DashboardJob is a job on the ledger; Mine says this node requested it
// (GET /api/v1/jobs/{id} then has its placement and live rounds).
type DashboardJob struct {
	ledger.Job
	Mine   bool `json:"mine"`
	Rounds int  `json:"rounds_reported"`
}

// DashboardModel is a model some node serves.
type DashboardModel struct {
	Hash    string            `json:"hash"`
	Servers []gridmind.NodeID `json:"servers"`
	Local   bool              `json:"local"` // served by this node
	gridmind.ServedModel
}

// dashboardCache keeps the ledger part of the snapshot per height: it
// costs a query per known account, and changes only with a new block.
type dashboardCache struct {
	mu     sync.Mutex
	height int64
	known  int // accounts it was built for
	ledger *DashboardLedger
	jobs   []ledger.Job
}

// addDashboard mounts the web dashboard at / and its data routes.
func (a *App) addDashboard() {
	s := a.API
	// The page and its files hold no node data: anyone who passes the
	// Host and Origin checks may load them; what they read or do goes
	// through the data routes' own rules.
	s.Handle("GET /{$}", web.Assets(), api.WithAccess(api.SelfAccess))
	s.Handle("GET "+web.AssetPrefix+"{file}", web.Assets(), api.WithAccess(api.SelfAccess))
	s.HandleFunc("GET /api/v1/dashboard", func(w http.ResponseWriter, r *http.Request) {
		d, err := a.DashboardSnapshot(r.Context())
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, d)
	})
	feed := web.NewFeed(func(ctx context.Context) (any, error) { return a.DashboardSnapshot(ctx) }, web.FeedOptions{Done: a.ctx.Done()})
	s.Handle("GET /api/v1/events", feed, api.LongRunning())
	// Whether the caller's token is this node's: the page says so next to
	// the token field instead of failing on the first action.
	s.HandleFunc("GET /api/v1/auth", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]bool{"token": a.API.Authorized(r), "read": a.API.ReadAllowed(r)})
	}, api.WithAccess(api.SelfAccess))
}

// DashboardSnapshot builds the dashboard's view now.
func (a *App) DashboardSnapshot(ctx context.Context) (*Dashboard, error) {
	d := &Dashboard{Time: a.Node.Now().UTC(), Node: a.Node.Status(), Region: a.Node.Config().Region}
	peers := a.Node.Peers().List()
	d.PeerCount = len(peers)
	if len(peers) > dashboardPeers {
		peers = peers[:dashboardPeers]
	}
	for _, p := range peers {
		d.Peers = append(d.Peers, DashboardPeer{PeerInfo: p})
	}
	d.Models = a.dashboardModels(peers)
	if a.Chain == nil {
		d.LedgerError = "this node has no ledger configured (chain.rpc in config.yaml, or --validator)"
		return d, nil
	}
	l, jobList, err := a.dashboardLedger(ctx, peers)
	if err != nil {
		d.LedgerError = err.Error()
		return d, nil
	}
	d.Ledger = l
	scores := map[gridmind.NodeID]reputation.Score{}
	for _, acct := range l.Accounts {
		scores[acct.Address] = acct.Reputation
	}
	for i := range d.Peers {
		if s, ok := scores[d.Peers[i].ID]; ok {
			d.Peers[i].Reputation = &s
		}
	}
	for _, j := range jobList {
		dj := DashboardJob{Job: j}
		if a.Requester != nil {
			if run, ok := a.Requester.Run(j.ID); ok {
				dj.Mine = true
				dj.Rounds = len(run.Results())
			}
		}
		d.Jobs = append(d.Jobs, dj)
	}
	return d, nil
}

// dashboardModels lists who serves what: this node's models and those its
// peers announce in their heartbeats.
func (a *App) dashboardModels(peers []node.PeerInfo) []DashboardModel {
	byHash := map[string]*DashboardModel{}
	add := func(server gridmind.NodeID, m gridmind.ServedModel, local bool) {
		dm, ok := byHash[m.Hash]
		if !ok {
			dm = &DashboardModel{Hash: m.Hash}
			byHash[m.Hash] = dm
		}
		dm.Servers = append(dm.Servers, server)
		if local {
			dm.Local, dm.ServedModel = true, m
		} else if !dm.Local {
			dm.ServedModel = m
		}
	}
	if a.Local != nil {
		for _, m := range a.Local.Served() {
			add(a.Node.ID(), m, true)
		}
	}
	for _, p := range peers {
		for _, m := range p.Heartbeat.Serving {
			add(p.ID, m, false)
		}
	}
	out := make([]DashboardModel, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hash < out[j].Hash })
	return out
}

// dashboardLedger reads the ledger part of the snapshot, reusing the last
// one while the height and the set of known accounts stay the same.
func (a *App) dashboardLedger(ctx context.Context, peers []node.PeerInfo) (*DashboardLedger, []ledger.Job, error) {
	st, err := a.Chain.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	c := &a.dash
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ledger != nil && c.height == st.Height && c.known == len(peers) {
		return c.ledger, c.jobs, nil
	}
	supply, err := a.Chain.Supply(ctx)
	if err != nil {
		return nil, nil, err
	}
	jobList, err := a.Chain.Jobs(ctx, ledger.JobFilter{Limit: dashboardJobs})
	if err != nil {
		return nil, nil, err
	}
	providers, err := a.Chain.Providers(ctx)
	if err != nil {
		return nil, nil, err
	}
	known := []gridmind.NodeID{a.Node.ID()}
	for _, p := range peers {
		known = append(known, p.ID)
	}
	for _, p := range providers {
		known = append(known, p.Offer.Node)
	}
	for _, j := range jobList {
		known = append(known, j.Requester)
	}
	slices.Sort(known)
	known = slices.Compact(known)
	if len(known) > dashboardAccounts {
		known = known[:dashboardAccounts]
	}
	l := &DashboardLedger{ChainID: st.ChainID, Height: st.Height, AppHash: st.AppHash, LatestBlockTime: st.LatestBlockTime, Supply: supply}
	seenTx := map[string]bool{}
	for _, id := range known {
		acct, err := a.Chain.Account(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if !acct.Exists {
			continue
		}
		row := DashboardAccount{Address: id, Balance: acct.Balance, Stake: acct.Stake, Unbonding: acct.UnbondingTotal,
			Provider: acct.Provider != nil, Reputation: ReputationScore(acct.Reputation, st.Height), Self: id == a.Node.ID()}
		if acct.Provider != nil {
			row.Price = acct.Provider.Offer.PricePerUnit
		}
		l.Accounts = append(l.Accounts, row)
		hist, err := a.Chain.History(ctx, id, dashboardHistoryEach)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hist {
			// A transfer shows on both sides; list each change once per
			// account but a transaction's entries together.
			key := h.TxHash + "/" + string(h.Event.Account) + "/" + h.Event.Kind
			if h.TxHash == "" || !seenTx[key] {
				seenTx[key] = true
				l.Transactions = append(l.Transactions, h)
			}
		}
	}
	sort.SliceStable(l.Transactions, func(i, j int) bool { return l.Transactions[i].Height > l.Transactions[j].Height })
	if len(l.Transactions) > dashboardTransactions {
		l.Transactions = l.Transactions[:dashboardTransactions]
	}
	c.height, c.known, c.ledger, c.jobs = st.Height, len(peers), l, jobList
	return l, jobList, nil
}
