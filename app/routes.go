package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/market"
	"github.com/gridmind/gridmind/serve"
)

// addRoutes adds the ledger and job routes to the node's API.
func (a *App) addRoutes() {
	s := a.API
	a.addDashboard()
	s.HandleFunc("GET /api/v1/models", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]any{"held": a.Models.Hashes(), "served": a.Local.Served()})
	})
	// Fetching and serving a model changes what this node runs: token only.
	s.HandleFunc("POST /api/v1/models/{hash}", func(w http.ResponseWriter, r *http.Request) {
		hash := r.PathValue("hash")
		if err := a.Models.Fetch(r.Context(), hash); err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"model": hash, "serving": true})
	}, api.WithAccess(api.TokenAccess), api.LongRunning())
	// A held model's checkpoint, for `gridmind models export`: loopback
	// callers read it freely (peers fetch the same bytes over libp2p).
	s.HandleFunc("GET /api/v1/models/{hash}/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		hash := r.PathValue("hash")
		blob, ok := a.Models.Checkpoint(hash)
		if !ok {
			api.WriteError(w, gridmind.E(gridmind.KindNotFound, "model", "model %s is not held by this node (`gridmind models serve HASH` fetches it from the peers that hold it)", hash))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
		_, _ = w.Write(blob)
	}, api.LongRunning())
	// Serving a checkpoint sent in the body (train local --save): token only.
	s.HandleFunc("POST /api/v1/models", a.serveUpload, api.WithAccess(api.TokenAccess), api.LongRunning(), api.MaxBody(maxUploadBytes), api.BinaryBody())
	if completions, err := serve.NewHandler(serve.HandlerConfig{Local: a.Local, Remote: a.Infer, Logger: a.Node.Logger()}); err == nil {
		s.Handle("/v1/", a.inferenceGate(completions), api.WithAccess(api.SelfAccess), api.LongRunning())
	} else {
		a.Node.Logger().Error("completions API disabled", "err", err)
	}
	if a.Chain == nil {
		noChain := func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, gridmind.E(gridmind.KindUnavailable, "api", "this node has no ledger configured (chain.rpc in config.yaml, or --validator)"))
		}
		for _, p := range []string{"GET /api/v1/accounts/{addr}", "GET /api/v1/jobs", "POST /api/v1/jobs", "GET /api/v1/jobs/{id}", "GET /api/v1/jobs/{id}/explain", "POST /api/v1/jobs/{id}/cancel", "GET /api/v1/chain/status"} {
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
	s.HandleFunc("POST /api/v1/jobs", a.postJob, api.WithAccess(api.TokenAccess), api.LongRunning())
	s.HandleFunc("POST /api/v1/jobs/{id}/cancel", a.cancelJob, api.WithAccess(api.TokenAccess))
	s.HandleFunc("GET /api/v1/jobs/{id}/explain", func(w http.ResponseWriter, r *http.Request) {
		id, err := ledger.ParseJobID(r.PathValue("id"))
		if err != nil {
			api.WriteError(w, gridmind.E(gridmind.KindInvalid, "api", "%v", err))
			return
		}
		run, ok := a.Requester.Run(id)
		if !ok {
			api.WriteError(w, gridmind.E(gridmind.KindNotFound, "api", "job %s was not requested through this node, so it holds no placement record; ask the requester's node", id))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = run.Placement.WriteText(w)
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

// JobRequest is the body of POST /api/v1/jobs.
type JobRequest struct {
	Spec    gridmind.JobSpec `json:"spec"`
	Standby int              `json:"standby"`
}

// JobAccepted answers POST /api/v1/jobs.
type JobAccepted struct {
	Job       ledger.JobID      `json:"job"`
	Active    []gridmind.NodeID `json:"active"`
	Standby   []gridmind.NodeID `json:"standby"`
	Placement any               `json:"placement"`
}

// postJob posts a job from this node: escrow, placement, leases, announcement.
func (a *App) postJob(w http.ResponseWriter, r *http.Request) {
	req, err := decodeJobRequest(r.Body) // bounded by the API's body limit
	if err != nil {
		api.WriteError(w, err)
		return
	}
	// The job outlives the request: it runs on the node's own context.
	run, err := a.Requester.Submit(a.ctx, req.Spec, jobs.SubmitOptions{Standby: req.Standby, EvalBatches: 4})
	if err != nil {
		api.WriteError(w, a.noCapacityHint(r.Context(), req, err))
		return
	}
	api.WriteJSON(w, http.StatusAccepted, JobAccepted{Job: run.ID, Active: run.Active, Standby: run.Standby, Placement: run.Placement})
}

// noCapacityHint adds to a placement that found too few providers what
// the numbers do not say: the requesting node is never a candidate for its
// own job (on a 4-node devnet, 3 providers are left), standby workers
// count, and a provider is leased only while its stake exceeds one round's
// pot. Any other error passes through unchanged.
func (a *App) noCapacityHint(ctx context.Context, req JobRequest, err error) error {
	if !errors.Is(err, market.ErrNoCapacity) {
		return err
	}
	self := a.Node.ID()
	spec := req.Spec
	need := spec.Workers + req.Standby
	hint := fmt.Sprintf("this node (%s) posts the job and is never one of its own providers", self)
	if providers, perr := a.Requester.Client.Providers(ctx); perr == nil {
		pot := spec.Budget / gridmind.Amount(max(spec.Rounds, 1))
		others, online, staked, selfListed := 0, 0, 0, false
		for _, p := range providers {
			if p.Offer.Node == self {
				selfListed = true
				continue
			}
			others++
			if _, ok := a.Node.Peers().Get(p.Offer.Node); !ok {
				continue
			}
			online++
			if acct, aerr := a.Requester.Client.Account(ctx, p.Offer.Node); aerr != nil || (acct.Stake > pot && acct.Stake >= spec.MinStake) {
				staked++ // unknown counts as enough: the hint must not invent a cause
			}
		}
		if selfListed {
			hint += ", although it is a registered provider"
		}
		hint += fmt.Sprintf("; %d other providers are registered on the ledger, %d of them online", others, online)
		if staked < online {
			hint += fmt.Sprintf("; %d of those stake too little for this job: the ledger leases a provider only while its stake exceeds one round's pay (budget/rounds = %s)", online-staked, pot)
			if spec.MinStake > pot {
				hint += fmt.Sprintf(" and meets min_stake %s", spec.MinStake)
			}
			hint += ", so spread the budget over more rounds, or have providers stake more (gridmind wallet stake)"
		}
		switch {
		case staked == 0 && online > 0:
			// The stake is the whole story, said above.
		case online == 0:
			hint += ": start provider nodes (`gridmind node`, bootstrapped to this one) and wait until this node sees them"
		case staked > req.Standby:
			hint += fmt.Sprintf("; at most %d workers fit with --standby %d", staked-req.Standby, req.Standby)
			if req.Standby > 0 {
				hint += fmt.Sprintf(" (%d with --standby 0)", staked)
			}
			hint += ": ask for fewer workers or add provider nodes"
		default:
			hint += "; add provider nodes, or submit with --standby 0"
		}
	}
	return gridmind.E(gridmind.KindUnavailable, "api", "%w\nthe job needs %d workers + %d standby = %d providers; %s",
		err, spec.Workers, req.Standby, need, hint)
}

// cancelJob cancels a job this node requested (the same transaction as
// `gridmind jobs cancel`): receipted rounds are paid, the rest of the
// escrow returns, the leases end.
func (a *App) cancelJob(w http.ResponseWriter, r *http.Request) {
	id, err := ledger.ParseJobID(r.PathValue("id"))
	if err != nil {
		api.WriteError(w, gridmind.E(gridmind.KindInvalid, "api", "%v", err))
		return
	}
	rec, err := a.Requester.Cancel(r.Context(), id)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"job": id, "cancelled": true, "tx": rec.Hash, "height": rec.Height})
}

// decodeJobRequest reads a job request strictly: one JSON object, no
// field the API does not know, standby within bounds.
func decodeJobRequest(body io.Reader) (JobRequest, error) {
	var req JobRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		return req, gridmind.E(gridmind.KindInvalid, "api", "job request: %w", err)
	}
	if req.Standby < 0 || req.Standby > 16 {
		return req, gridmind.E(gridmind.KindInvalid, "api", "standby %d: want 0..16", req.Standby)
	}
	return req, nil
}
