package chain

import (
	"context"
	"sync"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/proxy"
)

// clientCreator connects CometBFT to the App in-process. Like
// proxy.NewConnSyncLocalClientCreator, each ABCI connection (consensus,
// mempool, query, snapshot) gets its own lock; unlike it, CheckTx takes no
// lock at all, so transactions arriving on several RPC or p2p goroutines
// have their signatures checked in parallel. App.CheckTx serializes the
// part that needs it (applying to the pending layer) itself.
type clientCreator struct{ app *App }

var _ proxy.ClientCreator = clientCreator{}

func (c clientCreator) NewABCIClient() (abcicli.Client, error) {
	return &concurrentCheckClient{Client: abcicli.NewLocalClient(nil, c.app), app: c.app}, nil
}

type concurrentCheckClient struct {
	abcicli.Client // the standard local client, for everything but CheckTx
	app            *App

	mu sync.Mutex
	cb abcicli.Callback
}

func (c *concurrentCheckClient) SetResponseCallback(cb abcicli.Callback) {
	c.mu.Lock()
	c.cb = cb
	c.mu.Unlock()
	c.Client.SetResponseCallback(cb)
}

func (c *concurrentCheckClient) CheckTx(ctx context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	return c.app.CheckTx(ctx, req)
}

// CheckTxAsync answers at once, as the standard local client does: the
// global callback (the mempool's recheck handler) runs now, and the
// returned ReqRes is already complete, so the callback the mempool sets on
// it runs immediately too.
func (c *concurrentCheckClient) CheckTxAsync(ctx context.Context, req *abci.RequestCheckTx) (*abcicli.ReqRes, error) {
	res, err := c.app.CheckTx(ctx, req)
	if err != nil {
		return nil, err
	}
	request, response := abci.ToRequestCheckTx(req), abci.ToResponseCheckTx(res)
	c.mu.Lock()
	cb := c.cb
	c.mu.Unlock()
	if cb != nil {
		cb(request, response)
	}
	rr := abcicli.NewReqRes(request)
	rr.Response = response
	rr.InvokeCallback() // no callback yet: this marks it complete
	return rr, nil
}
