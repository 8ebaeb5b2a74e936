package chain

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
	bolt "go.etcd.io/bbolt"
)

// store is the application's own database: the ledger's entries, the
// height and app hash they belong to, and two indexes that are not part of
// consensus (transaction results by hash, account history). Everything a
// block changes is written in ONE bbolt transaction, so after a crash the
// database holds either the state before the block or after it, never a
// mix; Info reports which, and CometBFT replays what is missing.
type store struct {
	db *bolt.DB
}

var (
	bucketState   = []byte("state")
	bucketMeta    = []byte("meta")
	bucketTxs     = []byte("txs")
	bucketHistory = []byte("history")
	keyHeight     = []byte("height")
	keyAppHash    = []byte("app_hash")
)

func openStore(path string) (*store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("chain: open app database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketMeta, bucketTxs, bucketHistory} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("chain: init app database: %w", err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// load returns the committed entries, height and app hash; ok is false
// for a database that was never initialized.
func (s *store) load() (entries []ledger.Change, height int64, appHash []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		h := meta.Get(keyHeight)
		if h == nil {
			return nil
		}
		if len(h) != 8 {
			return errors.New("corrupt height")
		}
		ok = true
		height = int64(binary.BigEndian.Uint64(h))
		appHash = append([]byte(nil), meta.Get(keyAppHash)...)
		return tx.Bucket(bucketState).ForEach(func(k, v []byte) error {
			entries = append(entries, ledger.Change{Key: string(k), Value: append([]byte(nil), v...)})
			return nil
		})
	})
	return entries, height, appHash, ok, err
}

// reset replaces everything with a genesis state (InitChain may run again
// if the node died before its first block).
func (s *store) reset(entries []ledger.Change, height int64, appHash []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketTxs, bucketHistory} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		st := tx.Bucket(bucketState)
		for _, e := range entries {
			if err := st.Put([]byte(e.Key), e.Value); err != nil {
				return err
			}
		}
		return putMeta(tx, height, appHash)
	})
}

func putMeta(tx *bolt.Tx, height int64, appHash []byte) error {
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyHeight, binary.BigEndian.AppendUint64(nil, uint64(height))); err != nil {
		return err
	}
	return meta.Put(keyAppHash, appHash)
}

// TxRecord is a committed transaction's result.
type TxRecord struct {
	Hash   string      `json:"hash"`
	Height int64       `json:"height"`
	Index  int         `json:"index"`
	Code   ledger.Code `json:"code"`
	Log    string      `json:"log,omitempty"`
	Data   []byte      `json:"data,omitempty"`
}

// Err returns nil when the transaction succeeded, else its *ledger.TxError
// as a kinded error.
func (r *TxRecord) Err() error {
	if r.Code == ledger.CodeOK {
		return nil
	}
	return (&ledger.TxError{Code: r.Code, Msg: r.Log}).Kinded("chain.tx")
}

// HistoryEntry is one change to an account, in the order it happened.
type HistoryEntry struct {
	Height int64        `json:"height"`
	TxHash string       `json:"tx_hash,omitempty"` // empty for block-level changes (unbonding, rewards)
	Event  ledger.Event `json:"event"`
}

// commitBlock writes a block's changes, its height and app hash, its
// transaction results and the history it made, atomically.
func (s *store) commitBlock(ex *execution) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		for _, c := range ex.fork.Changes() {
			var err error
			if c.Value == nil {
				err = st.Delete([]byte(c.Key))
			} else {
				err = st.Put([]byte(c.Key), c.Value)
			}
			if err != nil {
				return err
			}
		}
		txs := tx.Bucket(bucketTxs)
		hist := tx.Bucket(bucketHistory)
		var seq uint32
		addHistory := func(txHash string, events []ledger.Event) error {
			for _, ev := range events {
				seq++
				v, err := json.Marshal(HistoryEntry{Height: ex.height, TxHash: txHash, Event: ev})
				if err != nil {
					return err
				}
				if err := hist.Put(historyKey(ev.Account, ex.height, seq), v); err != nil {
					return err
				}
			}
			return nil
		}
		if err := addHistory("", ex.res.BlockEvents); err != nil {
			return err
		}
		for i, r := range ex.res.TxResults {
			h := ex.hashes[i].String()
			rec, err := json.Marshal(TxRecord{Hash: h, Height: ex.height, Index: i, Code: r.Code, Log: r.Log, Data: r.Data})
			if err != nil {
				return err
			}
			if err := txs.Put(ex.hashes[i][:], rec); err != nil {
				return err
			}
			if err := addHistory(h, r.Events); err != nil {
				return err
			}
		}
		return putMeta(tx, ex.height, ex.res.AppHash[:])
	})
}

// historyKey sorts an account's entries by height and order in the block.
func historyKey(id gridmind.NodeID, height int64, seq uint32) []byte {
	k := make([]byte, 0, len(id)+13)
	k = append(k, id...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(height))
	return binary.BigEndian.AppendUint32(k, seq)
}

func (s *store) txRecord(hash ledger.Hash) (*TxRecord, bool, error) {
	var rec *TxRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTxs).Get(hash[:])
		if v == nil {
			return nil
		}
		rec = new(TxRecord)
		return json.Unmarshal(v, rec)
	})
	return rec, rec != nil, err
}

// history returns up to limit entries of id, newest first.
func (s *store) history(id gridmind.NodeID, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	prefix := append([]byte(id), 0)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		// Seek past the last key of this account, then walk backwards.
		end := append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if len(k) < len(prefix) || string(k[:len(prefix)]) != string(prefix) {
				break
			}
			var e HistoryEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
