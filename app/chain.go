package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
)

// startChain starts the embedded validator (chain.validator: true) or a
// client of the configured validators, and the wallet of this node's key.
func (a *App) startChain(ctx context.Context, o Options) error {
	cc := o.Config.Chain
	switch {
	case cc.Validator:
		home := cc.Home
		if home == "" {
			if o.Home == "" {
				return gridmind.E(gridmind.KindInvalid, "chain", "chain.home is needed for a validator started without a node home")
			}
			home = filepath.Join(o.Home, "chain")
		}
		v, err := chain.StartNode(ctx, chain.NodeConfig{Home: home, Logger: o.Logger.With("part", "validator"), Ledger: LedgerOptions()})
		if err != nil {
			return gridmind.E(gridmind.KindUnavailable, "chain", "starting validator from %s (made by `gridmind chain init`?): %w", home, err)
		}
		a.Validator = v
		if len(cc.RPC) > 0 {
			// Prefer ourselves, fail over to the others.
			c, err := chain.NewClient(append([]string{v.RPCAddr()}, cc.RPC...), chain.ClientOptions{Logger: o.Logger})
			if err != nil {
				return err
			}
			a.Chain = c
		} else {
			a.Chain = v.Client()
		}
	case len(cc.RPC) > 0:
		c, err := chain.NewClient(cc.RPC, chain.ClientOptions{Logger: o.Logger})
		if err != nil {
			return gridmind.E(gridmind.KindInvalid, "chain", "chain.rpc: %w", err)
		}
		a.Chain = c
	default:
		return nil
	}
	a.Wallet = chain.NewWallet(a.Chain, o.Key)
	return nil
}

// registerProvider puts this node's offer on the ledger and tops its stake
// up to the configured amount. It retries until the chain answers or ctx ends.
func (a *App) registerProvider(ctx context.Context, o Options) {
	log := a.Node.Logger()
	hb := a.Node.Heartbeat()
	offer := gridmind.Offer{
		Hardware:         hb.Hardware,
		ThroughputMFLOPS: uint64(hb.ThroughputGFLOPS * 1000),
		PricePerUnit:     o.Config.PriceAmount(),
		Region:           o.Config.Region,
		EnergyZone:       o.Config.Energy.Zone,
		EnergyProfile:    o.Config.Energy.Profile().Hash(),
	}
	for attempt := 0; ; attempt++ {
		err := a.register(ctx, offer, o.Config.StakeAmount())
		if err == nil {
			log.Info("provider registered", "price", offer.PricePerUnit, "stake", o.Config.StakeAmount())
			close(a.registered)
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("provider registration failed; retrying", "attempt", attempt+1, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}
}

func (a *App) register(ctx context.Context, offer gridmind.Offer, stake gridmind.Amount) error {
	if _, err := a.Wallet.Submit(ctx, &ledger.RegisterProvider{Offer: offer}); err != nil {
		a.Wallet.Resync()
		return fmt.Errorf("register: %w", err)
	}
	acct, err := a.Chain.Account(ctx, a.Node.ID())
	if err != nil {
		return err
	}
	if acct.Stake < stake {
		if _, err := a.Wallet.Stake(ctx, stake-acct.Stake); err != nil {
			a.Wallet.Resync()
			return fmt.Errorf("stake: %w", err)
		}
	}
	return nil
}

// Registered is closed once the provider's offer and stake are on the ledger.
func (a *App) Registered() <-chan struct{} { return a.registered }
