package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
	// The freelist is rebuilt on open instead of written at every commit,
	// which keeps commits small; durability is unchanged (fsync on commit).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
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
		// Keys are put in sorted order: bbolt inserts a sorted run much
		// faster than random keys (each Put searches from the root, and
		// neighbouring keys share pages).
		var txKV, histKV []kv
		var seq uint32
		addHistory := func(txHash []byte, events []ledger.Event) {
			for _, ev := range events {
				seq++
				histKV = append(histKV, kv{historyKey(ev.Account, ex.height, seq), encodeHistory(txHash, ev)})
			}
		}
		addHistory(nil, ex.res.BlockEvents)
		for i, r := range ex.res.TxResults {
			txKV = append(txKV, kv{ex.hashes[i][:], encodeTxRecord(ex.height, i, r)})
			addHistory(ex.hashes[i][:], r.Events)
		}
		if err := putSorted(tx.Bucket(bucketTxs), txKV); err != nil {
			return err
		}
		if err := putSorted(tx.Bucket(bucketHistory), histKV); err != nil {
			return err
		}
		return putMeta(tx, ex.height, ex.res.AppHash[:])
	})
}

type kv struct{ k, v []byte }

func putSorted(b *bolt.Bucket, kvs []kv) error {
	slices.SortFunc(kvs, func(x, y kv) int { return bytes.Compare(x.k, y.k) })
	for _, e := range kvs {
		if err := b.Put(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// The indexes are written for every transaction of every block, inside
// the commit, so they use a compact binary form rather than JSON.

func encodeTxRecord(height int64, index int, r ledger.TxResult) []byte {
	b := make([]byte, 0, 16+len(r.Data)+len(r.Log))
	b = binary.AppendUvarint(b, uint64(height))
	b = binary.AppendUvarint(b, uint64(index))
	b = binary.AppendUvarint(b, uint64(r.Code))
	b = appendBytes(b, r.Data)
	return appendBytes(b, []byte(r.Log))
}

func decodeTxRecord(hash ledger.Hash, b []byte) (*TxRecord, error) {
	r := byteReader{b: b}
	rec := &TxRecord{Hash: hash.String(), Height: int64(r.uvarint()), Index: int(r.uvarint()), Code: ledger.Code(r.uvarint())}
	rec.Data = r.bytes()
	rec.Log = string(r.bytes())
	if len(rec.Data) == 0 {
		rec.Data = nil
	}
	return rec, r.err
}

func encodeHistory(txHash []byte, ev ledger.Event) []byte {
	b := make([]byte, 0, 64+len(ev.Kind)+len(ev.Counterparty)+len(ev.Job))
	b = appendBytes(b, txHash)
	b = appendBytes(b, []byte(ev.Kind))
	b = binary.AppendUvarint(b, uint64(ev.Amount))
	b = appendBytes(b, []byte(ev.Counterparty))
	return appendBytes(b, []byte(ev.Job))
}

func decodeHistory(account gridmind.NodeID, height int64, b []byte) (HistoryEntry, error) {
	r := byteReader{b: b}
	e := HistoryEntry{Height: height}
	if h := r.bytes(); len(h) == len(ledger.Hash{}) {
		e.TxHash = ledger.Hash(h).String()
	}
	e.Event = ledger.Event{Account: account, Kind: string(r.bytes()), Amount: gridmind.Amount(r.uvarint()),
		Counterparty: gridmind.NodeID(r.bytes()), Job: ledger.JobID(r.bytes())}
	return e, r.err
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("corrupt index entry")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errors.New("corrupt index entry")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return append([]byte(nil), v...)
}

// historyKey sorts an account's entries by height and order in the block.
// Accounts are keyed by a hash of their id: shorter keys, same grouping.
func historyKey(id gridmind.NodeID, height int64, seq uint32) []byte {
	k := historyPrefix(id)
	k = binary.BigEndian.AppendUint64(k, uint64(height))
	return binary.BigEndian.AppendUint32(k, seq)
}

func historyPrefix(id gridmind.NodeID) []byte {
	h := sha256.Sum256([]byte(id))
	return append(make([]byte, 0, 28), h[:16]...)
}

func (s *store) txRecord(hash ledger.Hash) (*TxRecord, bool, error) {
	var rec *TxRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTxs).Get(hash[:])
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeTxRecord(hash, v)
		return err
	})
	return rec, rec != nil, err
}

// history returns up to limit entries of id, newest first.
func (s *store) history(id gridmind.NodeID, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	prefix := historyPrefix(id)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		// Seek to the first key after this account's, then walk backwards.
		end := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), ^uint64(0))
		end = binary.BigEndian.AppendUint32(end, ^uint32(0))
		k, v := c.Seek(end)
		if k == nil {
			k, v = c.Last()
		} else if !bytes.Equal(k, end) {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+12 {
				break
			}
			e, err := decodeHistory(id, int64(binary.BigEndian.Uint64(k[len(prefix):])), v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
