package jobs

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// A peer's receipt signature is kept only for a job this node works on,
// when well formed and when it verifies over what it claims, as the peer's
// own; forgeries, other parties' signatures, malformed lists and strangers'
// jobs are refused, and one liar's many variants of a round cannot grow
// the store past MaxSigVariants.
func TestReceiptSignaturesAreCheckedBeforeKept(t *testing.T) {
	const chainID = "test-chain"
	key := func(seed byte) (ed25519.PrivateKey, gridmind.NodeID) {
		k := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
		return k, gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
	}
	peerKey, peer := key(1)
	otherKey, other := key(2)
	job := ledger.JobID(strings.Repeat("ab", 16))
	p := &Provider{ctx: context.Background(), chain: chainID, running: map[ledger.JobID]context.CancelFunc{job: func() {}}}
	contributors := slices.Sorted(slices.Values([]gridmind.NodeID{peer, other}))
	theta := ledger.Hash{7}
	envelope := func(from ed25519.PrivateKey, rs ReceiptSig) *gridmind.Envelope {
		t.Helper()
		data, err := gridmind.SignEnvelope(from, typeReceiptSig, 1, time.Now(), rs)
		if err != nil {
			t.Fatal(err)
		}
		env, err := gridmind.OpenEnvelope(data, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	signed := func(k ed25519.PrivateKey, j ledger.JobID, round uint64, h ledger.Hash, ids []gridmind.NodeID) ReceiptSig {
		return ReceiptSig{Job: j, Round: round, ModelHash: h, Contributors: ids, Sig: ledger.SignReceipt(k, chainID, j, round, h, ids).Sig}
	}
	kept := func(round uint64) int {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		if rs := p.signed[job][round]; rs != nil {
			for _, bySigner := range rs.sigs {
				n += len(bySigner)
			}
		}
		return n
	}

	if err := p.acceptReceiptSig(envelope(peerKey, signed(peerKey, job, 3, theta, contributors))); err != nil {
		t.Fatalf("an honest signature: %v", err)
	}
	if kept(3) != 1 {
		t.Fatalf("kept %d signatures of round 3, want 1", kept(3))
	}
	reversed := slices.Clone(contributors)
	slices.Reverse(reversed)
	for name, env := range map[string]*gridmind.Envelope{
		"forged (over another θ)":            envelope(peerKey, ReceiptSig{Job: job, Round: 4, ModelHash: theta, Contributors: contributors, Sig: signed(peerKey, job, 4, ledger.Hash{8}, contributors).Sig}),
		"another party's signature, relayed": envelope(peerKey, signed(otherKey, job, 4, theta, contributors)),
		"contributors not sorted":            envelope(peerKey, signed(peerKey, job, 4, theta, reversed)),
		"no contributors":                    envelope(peerKey, signed(peerKey, job, 4, theta, nil)),
		"a round past the ledger's bound":    envelope(peerKey, signed(peerKey, job, ledger.MaxRounds, theta, contributors)),
		"a job this node does not work on":   envelope(peerKey, signed(peerKey, ledger.JobID(strings.Repeat("cd", 16)), 4, theta, contributors)),
	} {
		if err := p.acceptReceiptSig(env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if kept(4) != 0 {
		t.Errorf("kept %d signatures of round 4 from refused messages", kept(4))
	}
	if err := p.acceptReceiptSig(envelope(peerKey, signed(peerKey, job, 5, theta, contributors))); err != nil {
		t.Fatalf("a second honest signature: %v", err)
	}
	// A liar signs many versions of one round: only MaxSigVariants are kept.
	for i := range 3 * MaxSigVariants {
		_ = p.acceptReceiptSig(envelope(otherKey, signed(otherKey, job, 6, ledger.Hash{byte(i + 1)}, contributors)))
	}
	p.mu.Lock()
	variants := len(p.signed[job][6].sigs)
	p.mu.Unlock()
	if variants > MaxSigVariants {
		t.Errorf("%d variants of round 6 kept, bound %d", variants, MaxSigVariants)
	}
}
