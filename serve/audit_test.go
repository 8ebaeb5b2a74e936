package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/gomlx"
	"github.com/gridmind/gridmind/internal/testnet"
	"github.com/gridmind/gridmind/verify"
)

// otherWeights stands for a server that answers from a cheaper model under
// the served model's name: deterministic, but not the same text.
type otherWeights struct{}

func (otherWeights) Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	opts.Seed ^= 0x5eed
	return testnet.FakeGenerator{}.Generate(ctx, prompt, opts)
}

// served sends r through a one-server cluster running gen and returns the
// request as the server received it and its doubly signed receipt.
func served(t *testing.T, gen Generator, r Request) (WireRequest, Receipt) {
	t.Helper()
	c := newCluster(t, r.Model, []time.Duration{time.Millisecond}, func(int) Generator { return gen }, nil)
	comp, err := c.client.Complete(context.Background(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if comp.Receipt == nil || comp.Receipt.Verify() != nil {
		t.Fatalf("no verifiable receipt: %+v", comp.Receipt)
	}
	if comp.Text == "" || comp.Receipt.OutputHash != OutputHash(comp.Text) || comp.Receipt.Seed != r.Seed {
		t.Fatal("the receipt does not bind the delivered text and the seed")
	}
	return WireRequest{Request: r}, *comp.Receipt
}

func TestAuditCatchesAServerAnsweringFromOtherWeights(t *testing.T) {
	auditor := NewLocal(LocalConfig{Logger: quietLog})
	if err := auditor.Add("m", testnet.FakeGenerator{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, rc := served(t, testnet.FakeGenerator{}, req("honest", 16))
	res, err := AuditReceipt(ctx, auditor, w, rc)
	if err != nil || res.Verdict != verify.Cleared {
		t.Fatalf("honest server: %+v %v, want cleared", res, err)
	}
	w, rc = served(t, otherWeights{}, req("cheat", 16))
	res, err = AuditReceipt(ctx, auditor, w, rc)
	if err != nil || res.Verdict != verify.Fraud {
		t.Fatalf("server on other weights: %+v %v, want fraud", res, err)
	}
	// The request must be the one the receipt binds.
	other := w
	other.Seed++
	if _, err := AuditReceipt(ctx, auditor, other, rc); !errors.Is(err, ErrAuditRequest) {
		t.Fatalf("audit with another request: %v", err)
	}
	forged := rc
	forged.OutputHash = res.Got // a server cannot re-sign its claim after the fact
	if _, err := AuditReceipt(ctx, auditor, w, forged); err == nil {
		t.Fatal("audited a receipt whose server signature does not hold")
	}
}

func TestInferenceAuditDrawTakesTheRatesShare(t *testing.T) {
	_, server := testKey(1)
	beacon := verify.Hash(sha256.Sum256([]byte("block after the payment")))
	n := 0
	for i := 0; i < 2000; i++ {
		if verify.InferenceAudited(beacon, "req-"+string(rune(i)), server, 100_000) {
			n++
		}
	}
	if n < 140 || n > 260 {
		t.Fatalf("audited %d of 2000 at 10%%", n)
	}
}

// TestAuditWithTheRealModel re-runs a completion of the real GoMLX model
// on a second replica loaded from the same checkpoint: sampling under a
// seed is bitwise deterministic on the CPU backend, so the output hashes
// are equal; a server with other weights under the same name is caught.
func TestAuditWithTheRealModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds GoMLX models")
	}
	cfg := gomlx.DefaultConfig(gomlx.MLP)
	cfg.Hidden, cfg.EmbedDim, cfg.Context = 32, 8, 8
	serverModel, err := gomlx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ckpt bytes.Buffer
	if err := serverModel.Save(&ckpt); err != nil {
		t.Fatal(err)
	}
	replica, err := gomlx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Load(bytes.NewReader(ckpt.Bytes())); err != nil {
		t.Fatal(err)
	}
	cheapCfg := cfg
	cheapCfg.Seed = 99
	cheap, err := gomlx.New(cheapCfg)
	if err != nil {
		t.Fatal(err)
	}
	auditor := NewLocal(LocalConfig{Logger: quietLog})
	if err := auditor.Add("m", replica); err != nil {
		t.Fatal(err)
	}
	r := Request{ID: "real-1", Model: "m", Prompt: "func main() {", MaxTokens: 24, Temperature: 0.9, TopP: 0.95, Seed: 7}
	w, rc := served(t, serverModel, r)
	res, err := AuditReceipt(context.Background(), auditor, w, rc)
	if err != nil || res.Verdict != verify.Cleared {
		t.Fatalf("same weights: %+v %v, want cleared", res, err)
	}
	r.ID = "real-2"
	w, rc = served(t, cheap, r)
	res, err = AuditReceipt(context.Background(), auditor, w, rc)
	if err != nil || res.Verdict != verify.Fraud {
		t.Fatalf("other weights: %+v %v, want fraud", res, err)
	}
	// Three auditors' signed re-runs prove it the way the ledger judges
	// (ledger.InferenceFraudProof): the same output, not the server's.
	served, err := rc.Served()
	if err != nil {
		t.Fatal(err)
	}
	var committee []gridmind.NodeID
	var results []verify.Result
	for i := 0; i < 3; i++ {
		key, id := testKey(200 + i)
		again, err := AuditReceipt(context.Background(), auditor, w, rc)
		if err != nil {
			t.Fatal(err)
		}
		r, err := SignResult(key, rc, again)
		if err != nil {
			t.Fatal(err)
		}
		committee, results = append(committee, id), append(results, r)
	}
	sortResults(results)
	if j, err := verify.JudgeInference(verify.DefaultParams(), &served, results, committee); err != nil || j.Verdict != verify.Fraud {
		t.Fatalf("judged %+v %v, want fraud", j, err)
	}
}
