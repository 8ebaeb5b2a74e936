package chain

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// TestWalletMoneyPaths runs on one validator with the default rules (fees
// on): two wallets of the same key (two processes) clash on a nonce and
// both transfers still go through once each; fees are burned and the
// supply invariant counts them; a transaction whose broadcast reached no
// validator comes back as an outcome unknown, with its hash.
func TestWalletMoneyPaths(t *testing.T) {
	params := ledger.DefaultParams()
	net := newNetwork(t, 1, map[string]gridmind.Amount{"alice": 100 * grid}, &params)
	n := startNode(t, net.Validators[0].Home)
	ctx := timeout(t, 60*time.Second)
	c := n.Client()
	bob := idOf(testKey("bob"))

	first, second := NewWallet(c, testKey("alice")), NewWallet(c, testKey("alice"))
	if _, err := first.Send(ctx, bob, grid, "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Send(ctx, bob, grid, "two"); err != nil { // reads nonce 1
		t.Fatal(err)
	}
	// first still believes its next nonce is 1: the clash is recovered.
	if _, err := first.Send(ctx, bob, grid, "three"); err != nil {
		t.Fatalf("nonce clash not recovered: %v", err)
	}
	if a, err := c.Account(ctx, bob); err != nil || a.Balance != 3*grid {
		t.Fatalf("bob %+v %v: want exactly three transfers", a.Balance, err)
	}
	sup, err := c.Supply(ctx)
	if err != nil || !sup.Invariant || sup.Burned != 3*params.TxFee || sup.Total != 100*grid-3*params.TxFee {
		t.Fatalf("supply after three fees: %+v %v", sup, err)
	}

	raw, _, err := NewWallet(c, testKey("alice")).Sign(ctx, &ledger.Transfer{To: bob, Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := NewClient([]string{"http://127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])}, ClientOptions{Logger: testLogger(t), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = dead.Submit(short, raw)
	var unknown *UnknownOutcomeError
	if !errors.As(err, &unknown) || unknown.Hash != ledger.TxHash(raw) || gridmind.KindOf(err) != gridmind.KindUnavailable {
		t.Fatalf("dead validator: %v, want an unknown outcome naming the tx", err)
	}
}

// staleRPC answers Status with a fixed latest block time; nothing else.
type staleRPC struct {
	rpcclient.Client
	latest time.Time
}

func (s staleRPC) Status(context.Context) (*ctypes.ResultStatus, error) {
	return &ctypes.ResultStatus{SyncInfo: ctypes.SyncInfo{LatestBlockTime: s.latest}}, nil
}

// TestClientSkipsStaleValidator: the preferred validator answers, but its
// latest block is old (cut off from the others); the client asks a fresh
// one first, and comes back to the stale one only when nothing else works.
func TestClientSkipsStaleValidator(t *testing.T) {
	now := time.Now()
	stale := &backend{addr: "stale", rpc: staleRPC{latest: now.Add(-time.Hour)}}
	fresh := &backend{addr: "fresh", rpc: staleRPC{latest: now}}
	c := newClient([]*backend{stale, fresh}, ClientOptions{Logger: testLogger(t)})
	var asked []string
	err := c.do(context.Background(), "test", func(r rpcclient.Client) error {
		if r == stale.rpc {
			asked = append(asked, "stale")
		} else {
			asked = append(asked, "fresh")
		}
		return nil
	})
	if err != nil || len(asked) != 1 || asked[0] != "fresh" {
		t.Fatalf("asked %v (%v), want the fresh validator first", asked, err)
	}
	asked = nil
	_ = c.do(context.Background(), "test", func(r rpcclient.Client) error {
		if r == stale.rpc {
			asked = append(asked, "stale")
			return nil
		}
		asked = append(asked, "fresh")
		return errors.New("down")
	})
	if len(asked) != 2 || asked[1] != "stale" {
		t.Fatalf("asked %v: the stale validator is still the last resort", asked)
	}
}

// flakyRPC answers the ledger's queries after failing the first fails of
// them, as a validator does that restarts or is cut off for a while.
type flakyRPC struct {
	rpcclient.Client
	fails  int
	calls  *int
	answer []byte
}

func (f flakyRPC) ABCIQuery(context.Context, string, cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error) {
	*f.calls++
	if *f.calls <= f.fails {
		return nil, errors.New("connection refused")
	}
	return &ctypes.ResultABCIQuery{Response: abci.ResponseQuery{Value: f.answer}}, nil
}

// TestWaitTxOutlastsUnreachableValidators: while it waits for a
// transaction, validators that do not answer are asked again until the
// wait ends, not given up on at once: the transaction may commit
// meanwhile, and reporting it failed would make a user pay twice.
func TestWaitTxOutlastsUnreachableValidators(t *testing.T) {
	hash := ledger.TxHash([]byte("a transfer"))
	answer, err := json.Marshal(TxRecord{Hash: hash.String(), Height: 7})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	c := newClient([]*backend{{addr: "flaky", rpc: flakyRPC{fails: 3, calls: &calls, answer: answer}}},
		ClientOptions{Logger: testLogger(t), PollInterval: time.Millisecond})
	ctx := timeout(t, 30*time.Second)
	rec, err := c.WaitTx(ctx, hash)
	if err != nil || rec.Height != 7 || calls != 4 {
		t.Fatalf("WaitTx: %+v %v after %d queries, want the record after 4", rec, err, calls)
	}

	// When the wait ends with nobody answering, the error says so.
	calls = 0
	c = newClient([]*backend{{addr: "down", rpc: flakyRPC{fails: 1 << 30, calls: &calls}}},
		ClientOptions{Logger: testLogger(t), PollInterval: time.Millisecond})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.WaitTx(short, hash)
	if gridmind.KindOf(err) != gridmind.KindUnavailable || !strings.Contains(err.Error(), "no validator answered") || calls < 2 {
		t.Fatalf("WaitTx with nobody answering: %v after %d queries", err, calls)
	}
}
