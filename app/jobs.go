package app

import (
	"context"
	"path/filepath"

	"github.com/gridmind/gridmind/corpus"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/ledger"
)

// startJobs starts the provider and requester roles (they need the ledger).
func (a *App) startJobs(ctx context.Context, o Options) error {
	if o.Config.Provider.Enabled {
		c, err := corpus.Default()
		if err != nil {
			return err
		}
		a.Provider = &jobs.Provider{Node: a.Node, Ledger: a.Chain, Wallet: a.Wallet, Corpus: c, Timing: o.TrainTiming,
			// A worker keeps serving the model it trained.
			OnModel: func(job ledger.JobID, model *gomlx.Model, _ string) {
				hash, err := a.Models.Add(ctx, model)
				if err != nil {
					a.Node.Logger().Error("serving the trained model", "job", job, "err", err)
					return
				}
				if o.OnModel != nil {
					o.OnModel(job, hash)
				}
			}}
		if o.Home != "" {
			a.Provider.CheckpointDir = filepath.Join(o.Home, "checkpoints")
		}
		a.Provider.Start(ctx)
	}
	a.Requester = &jobs.Requester{Node: a.Node, Client: a.Chain, Wallet: a.Wallet, Score: func(r ledger.Reputation, h int64) uint64 {
		return ReputationScore(r, h).Total
	}}
	if o.Home != "" {
		a.Requester.Dir = filepath.Join(o.Home, "jobs")
	}
	a.Requester.Start(ctx)
	// A requester that stopped mid-job follows its running jobs again.
	go func() {
		runs, err := a.Requester.Resume(ctx)
		if err != nil && ctx.Err() == nil {
			a.Node.Logger().Warn("resuming jobs", "err", err)
		}
		for _, run := range runs {
			a.Node.Logger().Info("resumed job", "job", run.ID)
		}
	}()
	return nil
}
