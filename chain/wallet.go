package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
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

// Submit signs body, broadcasts it and waits until it is committed.
//
// Signing and broadcasting happen under one lock, so transactions reach
// the mempool in nonce order even when several goroutines submit at once
// (a later nonce arriving first is refused by CheckTx); waiting for the
// commit happens outside it, so they are still in flight together.
//
// A nonce clash (another process signing with the same key took the
// nonce, in a block or in the mempool) is not the caller's problem: the
// wallet re-reads its nonce from the chain, waits for a block if the other
// transaction is still waiting, and signs again, a few times. A clash can
// only mean the transaction did not apply, so signing it again cannot pay
// twice. When the outcome cannot be known (no validator answered the
// broadcast, or the transaction was not seen in a block before ctx ended)
// the error is an *UnknownOutcomeError naming the transaction's hash.
func (w *Wallet) Submit(ctx context.Context, body ledger.Body) (*TxRecord, error) {
	const attempts = 5
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		var rec *TxRecord
		rec, err = w.submitOnce(ctx, body)
		if !isNonceClash(err) {
			return rec, err
		}
		w.c.log.Info("nonce clash with another signer of this key; re-reading the nonce", "account", w.addr.Short(), "attempt", attempt+1, "err", err)
		w.Resync()
		if st, serr := w.c.Status(ctx); serr == nil {
			// Let the other transaction commit (or leave the mempool).
			if _, werr := w.c.WaitHeight(ctx, st.Height+1); werr != nil {
				return nil, err
			}
		}
	}
	return nil, err
}

func (w *Wallet) submitOnce(ctx context.Context, body ledger.Body) (*TxRecord, error) {
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
		if isAppError(err) {
			// Refused before any block: it will never commit.
			return nil, gridmind.E(gridmind.KindOther, "chain.submit", "tx %s refused, not sent: %w", hash, err)
		}
		// Nobody said no: the transaction may be in a mempool anyway.
		return w.c.waitUnknown(ctx, hash, err)
	}
	rec, err := w.c.WaitTx(ctx, hash)
	if err != nil {
		w.Resync()
		return nil, unknownOutcome(hash, err)
	}
	if err = rec.Err(); err != nil {
		w.Resync()
		// Name the transaction: it is in a block, refused.
		err = gridmind.E(gridmind.KindOther, "chain.submit", "tx %s refused in block %d: %w", hash, rec.Height, err)
	}
	return rec, err
}

// isNonceClash reports a refusal for a bad nonce, at CheckTx or in a block.
func isNonceClash(err error) bool {
	var te *ledger.TxError
	return errors.As(err, &te) && te.Code == ledger.CodeBadNonce
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
// size is how big one worker's round is; the ledger computes work from it.
func (w *Wallet) PostJob(ctx context.Context, spec gridmind.JobSpec, size ledger.JobSize) (ledger.JobID, *TxRecord, error) {
	rec, err := w.Submit(ctx, &ledger.PostJob{Spec: spec, Size: size})
	if err != nil {
		return "", rec, err
	}
	return ledger.JobID(rec.Data), rec, nil
}
