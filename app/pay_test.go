package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/serve"
)

type transfer struct {
	to     gridmind.NodeID
	amount gridmind.Amount
	memo   string
}

// fakeLedger records transfers and can fail them for chosen servers.
type fakeLedger struct {
	mu     sync.Mutex
	prices map[gridmind.NodeID]gridmind.Amount
	fail   map[gridmind.NodeID]bool
	sent   []transfer
}

func (l *fakeLedger) price(_ context.Context, s gridmind.NodeID) gridmind.Amount {
	if p := l.prices[s]; p > 0 {
		return p
	}
	return 1
}

func (l *fakeLedger) send(_ context.Context, to gridmind.NodeID, amount gridmind.Amount, memo string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail[to] {
		return errors.New("ledger unavailable")
	}
	l.sent = append(l.sent, transfer{to, amount, memo})
	return nil
}

func receipt(server gridmind.NodeID, id string, in, out int64) serve.Receipt {
	return serve.Receipt{Server: server, RequestID: id, TokensIn: in, TokensOut: out}
}

func TestPayBatchPaysEachServerOnceAtItsPrice(t *testing.T) {
	l := &fakeLedger{prices: map[gridmind.NodeID]gridmind.Amount{"A": 10}}
	a := &App{}
	b := serve.Batch{Receipts: []serve.Receipt{
		receipt("A", "1", 50, 50), receipt("B", "2", 10, 20), receipt("A", "3", 25, 25),
	}}
	if err := a.payBatch(context.Background(), b, l.price, l.send); err != nil {
		t.Fatal(err)
	}
	want := []transfer{{"A", 15, "inference: 2 receipts"}, {"B", 1, "inference: 1 receipts"}}
	if fmt.Sprint(l.sent) != fmt.Sprint(want) {
		t.Fatalf("transfers %v, want %v (150 tokens at 10 per 100, and the minimum of 1)", l.sent, want)
	}
	// The same batch again (a retry) pays nothing.
	if err := a.payBatch(context.Background(), b, l.price, l.send); err != nil || len(l.sent) != 2 {
		t.Fatalf("retry paid again: %v %v", l.sent, err)
	}
}

func TestPayBatchRetryAfterAPartialFailure(t *testing.T) {
	l := &fakeLedger{fail: map[gridmind.NodeID]bool{"B": true}}
	a := &App{}
	b := serve.Batch{Receipts: []serve.Receipt{receipt("A", "1", 100, 100), receipt("B", "2", 100, 100)}}
	if err := a.payBatch(context.Background(), b, l.price, l.send); err == nil {
		t.Fatal("a failed transfer was not reported (the batcher would drop the receipts)")
	}
	l.fail = nil
	if err := a.payBatch(context.Background(), b, l.price, l.send); err != nil {
		t.Fatal(err)
	}
	paid := map[gridmind.NodeID]int{}
	for _, tr := range l.sent {
		paid[tr.to]++
	}
	if paid["A"] != 1 || paid["B"] != 1 {
		t.Fatalf("after a failure and a retry: %v; want each server paid exactly once", l.sent)
	}
}

func TestPayBatchRefusesImpossibleReceipts(t *testing.T) {
	l := &fakeLedger{}
	a := &App{}
	b := serve.Batch{Receipts: []serve.Receipt{
		receipt("A", "neg", -1000, 10), receipt("A", "huge", 0, math.MaxInt64/2), receipt("A", "ok", 100, 0),
	}}
	if err := a.payBatch(context.Background(), b, l.price, l.send); err != nil {
		t.Fatal(err)
	}
	if len(l.sent) != 1 || l.sent[0].amount != 1 || l.sent[0].memo != "inference: 1 receipts" {
		t.Fatalf("transfers %v: want only the possible receipt paid", l.sent)
	}
}

func TestPayBatchOverflowIsAnError(t *testing.T) {
	l := &fakeLedger{prices: map[gridmind.NodeID]gridmind.Amount{"A": math.MaxUint64 / 2}}
	a := &App{}
	b := serve.Batch{Receipts: []serve.Receipt{receipt("A", "1", 100, 100)}}
	if err := a.payBatch(context.Background(), b, l.price, l.send); err == nil || len(l.sent) != 0 {
		t.Fatalf("overflowing cost: err %v, sent %v; want an error and nothing sent", err, l.sent)
	}
	if c, ok := inferenceCost(200, 50); !ok || c != 100 {
		t.Fatalf("inferenceCost(200, 50) = %d %v", c, ok)
	}
}

// Two flushes racing over the same receipts pay each once.
func TestPayBatchConcurrentFlushes(t *testing.T) {
	l := &fakeLedger{}
	a := &App{}
	var rs []serve.Receipt
	for i := range 50 {
		rs = append(rs, receipt(gridmind.NodeID(fmt.Sprint("S", i%5)), fmt.Sprint(i), 100, 0))
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.payBatch(context.Background(), serve.Batch{Receipts: rs}, l.price, l.send); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(l.sent) != 5 {
		t.Fatalf("%d transfers, want one per server (5)", len(l.sent))
	}
	for _, tr := range l.sent {
		if tr.amount != 10 {
			t.Fatalf("transfer %v: want 10 receipts × 100 tokens at price 1 = 10", tr)
		}
	}
}
