package app

import (
	"net/http"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/serve"
)

// addRoutes adds the ledger and job routes to the node's API.
func (a *App) addRoutes() {
	s := a.API
	if completions, err := serve.NewHandler(serve.HandlerConfig{Local: a.Local, Remote: a.Infer, Logger: a.Node.Logger()}); err == nil {
		s.Handle("/v1/", completions)
	} else {
		a.Node.Logger().Error("completions API disabled", "err", err)
	}
	if a.Chain == nil {
		noChain := func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, gridmind.E(gridmind.KindUnavailable, "api", "this node has no ledger configured (chain.rpc in config.yaml, or --validator)"))
		}
		for _, p := range []string{"GET /api/v1/accounts/{addr}", "GET /api/v1/jobs", "GET /api/v1/jobs/{id}", "GET /api/v1/chain/status"} {
			s.HandleFunc(p, noChain)
		}
		return
	}
	s.HandleFunc("GET /api/v1/chain/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Chain.Status(r.Context())
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
	s.HandleFunc("GET /api/v1/accounts/{addr}", func(w http.ResponseWriter, r *http.Request) {
		id := gridmind.NodeID(r.PathValue("addr"))
		if err := id.Validate(); err != nil {
			api.WriteError(w, gridmind.E(gridmind.KindInvalid, "api", "%v", err))
			return
		}
		acct, err := a.Chain.Account(r.Context(), id)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, struct {
			ledger.AccountView
			Score any `json:"reputation_score"`
		}{acct, ReputationScore(acct.Reputation, 0)})
	})
	s.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		list, err := a.Chain.Jobs(r.Context(), ledger.JobFilter{})
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, list)
	})
	s.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := ledger.ParseJobID(r.PathValue("id"))
		if err != nil {
			api.WriteError(w, gridmind.E(gridmind.KindInvalid, "api", "%v", err))
			return
		}
		job, err := a.Chain.Job(r.Context(), id)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		resp := map[string]any{"job": job}
		if receipts, err := a.Chain.Receipts(r.Context(), id); err == nil {
			resp["receipts"] = receipts
		}
		if a.Requester != nil {
			if run, ok := a.Requester.Run(id); ok {
				resp["placement"] = run.Placement
				resp["rounds"] = run.Results()
			}
		}
		api.WriteJSON(w, http.StatusOK, resp)
	})
}
