package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
)

func signedReceipt(t *testing.T, id string) Receipt {
	t.Helper()
	skey, sid := testKey(1)
	ckey, cid := testKey(2)
	r := Receipt{RequestID: id, Model: "m1", Server: sid, Client: cid, TokensIn: 3, TokensOut: 5, TimeMs: 1_700_000_000_000,
		RequestHash: RequestHash(WireRequest{Request: Request{ID: id, Model: "m1", Prompt: "p", MaxTokens: 5, Seed: 42}}),
		Seed:        42, OutputHash: OutputHash("hello")}
	if err := r.SignServer(skey); err != nil {
		t.Fatal(err)
	}
	if err := r.SignClient(ckey); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiptSignatures(t *testing.T) {
	good := signedReceipt(t, "cmpl-1")
	if err := good.Verify(); err != nil {
		t.Fatalf("good receipt: %v", err)
	}
	_, other := testKey(9)
	tests := []struct {
		name   string
		tamper func(r *Receipt)
	}{
		{"more tokens out", func(r *Receipt) { r.TokensOut++ }},
		{"more tokens in", func(r *Receipt) { r.TokensIn++ }},
		{"other model", func(r *Receipt) { r.Model = "m2" }},
		{"other request", func(r *Receipt) { r.RequestID = "cmpl-2" }},
		{"other client", func(r *Receipt) { r.Client = other }},
		{"other time", func(r *Receipt) { r.TimeMs++ }},
		{"other seed", func(r *Receipt) { r.Seed++ }},
		{"other output", func(r *Receipt) { r.OutputHash = OutputHash("goodbye") }},
		{"other request", func(r *Receipt) { r.RequestHash = OutputHash("another request") }},
		{"output hash not hex", func(r *Receipt) { r.OutputHash = "zz" }},
		{"server signature as client's", func(r *Receipt) { r.ClientSig = r.ServerSig }},
		{"missing client signature", func(r *Receipt) { r.ClientSig = nil }},
		{"bad server id", func(r *Receipt) { r.Server = "not-a-node" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.tamper(&r)
			if err := r.Verify(); err == nil {
				t.Error("tampered receipt verified")
			}
		})
	}
}

func TestReceiptSignWithWrongKey(t *testing.T) {
	r := signedReceipt(t, "cmpl-1")
	wrong, _ := testKey(7)
	if err := r.SignServer(wrong); err == nil {
		t.Error("signing as server with another node's key succeeded")
	}
	if err := r.SignClient(wrong); err == nil {
		t.Error("signing as client with another node's key succeeded")
	}
	if err := r.SignClient(nil); err == nil {
		t.Error("signing with no key succeeded")
	}
}

func TestBatcher(t *testing.T) {
	var mu sync.Mutex
	var batches []Batch
	failNext := true
	b, err := NewBatcher(BatcherConfig{MaxReceipts: 3, MaxDelay: time.Hour, Submit: func(_ context.Context, batch Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if failNext {
			failNext = false
			return errors.New("ledger down")
		}
		batches = append(batches, batch)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		if err := b.Add(signedReceipt(t, fmt.Sprintf("cmpl-%d", i))); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	// A replayed receipt and a forged one are refused.
	if err := b.Add(signedReceipt(t, "cmpl-3")); gridmind.KindOf(err) != gridmind.KindConflict {
		t.Errorf("duplicate: err = %v, want a conflict", err)
	}
	forged := signedReceipt(t, "cmpl-99")
	forged.TokensOut = 1000
	if err := b.Add(forged); gridmind.KindOf(err) != gridmind.KindUnauthorized {
		t.Errorf("forged: err = %v, want unauthorized", err)
	}

	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("flush with a failing ledger reported success")
	}
	if got := b.Pending(); got != 7 {
		t.Fatalf("after a failed submit %d pending, want all 7 kept", got)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	sizes := []int{}
	var out int64
	for _, bt := range batches {
		sizes = append(sizes, len(bt.Receipts))
		out += bt.TokensOut
	}
	if fmt.Sprint(sizes) != "[3 3 1]" || out != 35 {
		t.Errorf("batches %v with %d tokens out, want [3 3 1] and 35", sizes, out)
	}
	if b.Pending() != 0 {
		t.Errorf("%d still pending", b.Pending())
	}
}

func TestBatcherRunFlushesFullBatches(t *testing.T) {
	got := make(chan Batch, 4)
	b, err := NewBatcher(BatcherConfig{MaxReceipts: 2, MaxDelay: time.Hour, Submit: func(_ context.Context, batch Batch) error {
		got <- batch
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	for i := 0; i < 3; i++ {
		if err := b.Add(signedReceipt(t, fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case bt := <-got:
		if len(bt.Receipts) != 2 {
			t.Errorf("first batch has %d receipts, want 2", len(bt.Receipts))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a full batch was not submitted")
	}
	cancel()
	<-done
	select {
	case bt := <-got:
		if len(bt.Receipts) != 1 {
			t.Errorf("final batch has %d receipts, want 1", len(bt.Receipts))
		}
	default:
		t.Error("the last receipt was not submitted at shutdown")
	}
	if _, err := NewBatcher(BatcherConfig{}); err == nil {
		t.Error("a batcher without Submit was accepted")
	}
}
