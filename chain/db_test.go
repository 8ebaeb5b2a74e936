package chain

import (
	"testing"

	cmtcfg "github.com/cometbft/cometbft/config"
)

func TestClosedDBReadsEmpty(t *testing.T) {
	c := cmtcfg.DefaultConfig()
	c.SetRoot(t.TempDir())
	db, err := dbProvider(&cmtcfg.DBContext{ID: "blockstore", Config: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("open: %q %v", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || v != nil {
		t.Fatalf("after close: %q %v, want nothing and no error", v, err)
	}
	if ok, err := db.Has([]byte("k")); err != nil || ok {
		t.Fatalf("has after close: %v %v", ok, err)
	}
}
