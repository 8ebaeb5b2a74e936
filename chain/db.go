package chain

import (
	"sync/atomic"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// dbProvider opens CometBFT's databases like cmtcfg.DefaultDBProvider, but
// makes reads after Close answer "not found" instead of failing.
//
// Why: when a node stops, CometBFT closes its block store while a
// consensus goroutine per peer (queryMaj23Routine) may still be asleep
// between two reads; when it wakes it reads the closed store and the
// block store panics on the error ("leveldb: closed"), taking the whole
// process down. That only matters when the process goes on after Stop
// (benchmarks, tests, a node that restarts its validator), but then it is
// fatal. An empty answer makes that goroutine see nothing to do and exit.
func dbProvider(ctx *cmtcfg.DBContext) (dbm.DB, error) {
	db, err := cmtcfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	return &closableDB{DB: db}, nil
}

type closableDB struct {
	dbm.DB
	closed atomic.Bool
}

func (d *closableDB) Close() error {
	d.closed.Store(true)
	return d.DB.Close()
}

func (d *closableDB) Get(key []byte) ([]byte, error) {
	v, err := d.DB.Get(key)
	if err != nil && d.closed.Load() {
		return nil, nil
	}
	return v, err
}

func (d *closableDB) Has(key []byte) (bool, error) {
	ok, err := d.DB.Has(key)
	if err != nil && d.closed.Load() {
		return false, nil
	}
	return ok, err
}
