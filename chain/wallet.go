package chain

import (
	"context"
	"crypto/ed25519"
	"sync"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// Wallet signs transactions for one key and submits them through a Client,
// keeping track of the account's nonce so that several transactions can be
// in flight (they commit in nonce order). Safe for concurrent use.
type Wallet struct {
	c    *Client
	key  ed25519.PrivateKey
	addr gridmind.NodeID

	sendMu  sync.Mutex // orders sign+broadcast (see Submit)
	mu      sync.Mutex
	chainID string
	next    uint64
	synced  bool
}

// NewWallet makes a wallet for key.
func NewWallet(c *Client, key ed25519.PrivateKey) *Wallet {
	return &Wallet{c: c, key: key, addr: gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))}
}

// Address is the wallet's account.
func (w *Wallet) Address() gridmind.NodeID { return w.addr }

// Resync makes the next Sign read the nonce from the chain again.
func (w *Wallet) Resync() {
	w.mu.Lock()
	w.synced = false
	w.mu.Unlock()
}

// Sign signs body with the account's next nonce, which it consumes. The
// chain id and the nonce are read from the chain on first use.
func (w *Wallet) Sign(ctx context.Context, body ledger.Body) ([]byte, uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.chainID == "" {
		st, err := w.c.Status(ctx)
		if err != nil {
			return nil, 0, err
		}
		w.chainID = st.ChainID
	}
	if !w.synced {
		a, err := w.c.Account(ctx, w.addr)
		if err != nil {
			return nil, 0, err
		}
		w.next, w.synced = a.Nonce, true
	}
	raw, err := ledger.NewTx(w.key, w.chainID, w.next, body)
	if err != nil {
		return nil, 0, gridmind.E(gridmind.KindInvalid, "chain.sign", "%w", err)
	}
	w.next++
	return raw, w.next - 1, nil
}

// Submit signs body, broadcasts it and waits until it is committed. If it
// is refused, the wallet re-reads its nonce before the next transaction.
//
// Signing and broadcasting happen under one lock, so transactions reach
// the mempool in nonce order even when several goroutines submit at once
// (a later nonce arriving first is refused by CheckTx); waiting for the
// commit happens outside it, so they are still in flight together.
func (w *Wallet) Submit(ctx context.Context, body ledger.Body) (*TxRecord, error) {
	w.sendMu.Lock()
	raw, _, err := w.Sign(ctx, body)
	if err != nil {
		w.sendMu.Unlock()
		return nil, err
	}
	hash, err := w.c.Broadcast(ctx, raw)
	w.sendMu.Unlock()
	if err != nil {
		w.Resync()
		return nil, err
	}
	rec, err := w.c.WaitTx(ctx, hash)
	if err == nil {
		err = rec.Err()
	}
	if err != nil {
		w.Resync()
	}
	return rec, err
}

// Send transfers amount to another account.
func (w *Wallet) Send(ctx context.Context, to gridmind.NodeID, amount gridmind.Amount, memo string) (*TxRecord, error) {
	return w.Submit(ctx, &ledger.Transfer{To: to, Amount: amount, Memo: memo})
}

// Stake moves amount from the balance into stake.
func (w *Wallet) Stake(ctx context.Context, amount gridmind.Amount) (*TxRecord, error) {
	return w.Submit(ctx, &ledger.Stake{Amount: amount})
}

// Unstake starts unbonding amount of stake.
func (w *Wallet) Unstake(ctx context.Context, amount gridmind.Amount) (*TxRecord, error) {
	return w.Submit(ctx, &ledger.Unstake{Amount: amount})
}

// PostJob posts a job, moving its budget into escrow, and returns its id.
func (w *Wallet) PostJob(ctx context.Context, spec gridmind.JobSpec) (ledger.JobID, *TxRecord, error) {
	rec, err := w.Submit(ctx, &ledger.PostJob{Spec: spec})
	if err != nil {
		return "", rec, err
	}
	return ledger.JobID(rec.Data), rec, nil
}
