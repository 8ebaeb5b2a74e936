package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/train"
)

// sampleBodies has one of every transaction type, with every field set.
func sampleBodies() []Body {
	a, b, c := idOf(testKey("a")), idOf(testKey("b")), idOf(testKey("c"))
	contributors := []gridmind.NodeID{a, b, c}
	slices.Sort(contributors)
	job := JobIDFor(testChain, a, 7)
	sigs := []NodeSignature{
		SignReceipt(testKey("a"), testChain, job, 3, Hash{1, 2, 3}, contributors),
		SignReceipt(testKey("c"), testChain, job, 3, Hash{1, 2, 3}, contributors),
	}
	slices.SortFunc(sigs, func(x, y NodeSignature) int { return strings.Compare(string(x.Node), string(y.Node)) })
	obs := []Observation{{Node: b, Seen: 5, Expected: 6}, {Node: c, Seen: 0, Expected: 1_000_000}}
	sort.Slice(obs, func(i, j int) bool { return obs[i].Node < obs[j].Node })
	return []Body{
		&Transfer{To: b, Amount: 12_500_000, Memo: "for the GPU hours ⚡"},
		&Stake{Amount: 1},
		&Unstake{Amount: 1 << 62},
		&RegisterProvider{Offer: gridmind.Offer{
			Hardware:         gridmind.Hardware{CPUCores: 16, MemoryBytes: 64 << 30, GPUs: []gridmind.GPU{{Name: "RTX 4090", MemoryBytes: 24 << 30}}},
			ThroughputMFLOPS: 82_000_000, PricePerUnit: 40, Region: "eu-west", EnergyZone: "GB", EnergyProfile: "abcd",
		}},
		&PostJob{Spec: gridmind.JobSpec{
			Name: "tiny-shakespeare", Model: "mlp", Workers: 4, Rounds: 20, InnerSteps: 50,
			MinMemoryBytes: 1 << 30, MinThroughputMFLOPS: 1000, MaxPricePerUnit: 100, Budget: 500 * grid,
			DeadlineUnix: 1_800_000_000, RegionsAllowed: []string{"eu-west", "us-east"}, RegionsExcluded: []string{"ap"},
			GreenPreference: 70, MinReputation: 40, MinStake: 10 * grid, Seed: -42,
		}, Size: JobSize{ModelParams: 1_200_000, TokensPerStep: 32 * 64}},
		&AssignLease{Job: job, Provider: c, FromRound: 2, ValidUntil: 1 << 40,
			Acceptance: SignLeaseAcceptance(testKey("c"), testChain, job, a, 2, 1<<40)},
		&CancelJob{Job: job},
		&SubmitReceipt{Job: job, Round: 3, ModelHash: Hash{1, 2, 3}, Contributors: contributors, Signatures: sigs},
		&SettleRound{Job: job, Round: 3},
		&AttestUptime{Epoch: 99, Observations: obs},
		&Slash{Offender: c, FractionPPM: 100_000, Evidence: []byte("double-signed round 3"), Reason: "fraud proof"},
		&CloseJob{Job: job},
		&Dispute{Job: job, Round: 3, Offender: c, Evidence: []byte("Δ of round 3 does not re-execute"), Reason: "re-execution mismatch"},
		&RoundEvidence{Evidence: sampleEquivocation(job, 3, "c")},
	}
}

// sampleEquivocation is train evidence that worker (a test key's name)
// signed two different reduced results for part 0 of round of job.
func sampleEquivocation(job JobID, round uint64, worker string) train.Evidence {
	id := idOf(testKey(worker))
	membership := train.Hash{byte(round), 7}
	header := func(payload byte) train.ReducedHeader {
		m := &train.Message{Type: train.MsgReduced, Round: round, Membership: membership, Contributors: []gridmind.NodeID{id}, Payload: []byte{payload}}
		return train.SignReduced(testKey(worker), string(job), id, m)
	}
	return train.Evidence{Kind: train.EvidenceEquivocation, Job: string(job), Offender: id, Round: round, Membership: membership, A: header(1), B: header(2)}
}

func TestRoundTripEveryType(t *testing.T) {
	key := testKey("a")
	for _, body := range sampleBodies() {
		t.Run(body.Type().String(), func(t *testing.T) {
			raw, err := NewTx(key, testChain, 42, body)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := DecodeTx(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := tx.Encode(); !bytes.Equal(got, raw) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, raw)
			}
			if tx.From != idOf(key) || tx.Nonce != 42 || tx.ChainID != testChain {
				t.Fatalf("header: got %s %d %q", tx.From, tx.Nonce, tx.ChainID)
			}
			if rp, ok := body.(*RegisterProvider); ok {
				rp.Offer.Node = idOf(key) // not on the wire; filled in from the sender
			}
			if !reflect.DeepEqual(tx.Body, body) {
				t.Fatalf("body:\n got %+v\nwant %+v", tx.Body, body)
			}
			if _, err := Verify(testChain, raw, nil); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestTransferSize(t *testing.T) {
	raw, err := NewTx(testKey("a"), "gridmind-devnet", 1000, &Transfer{To: idOf(testKey("b")), Amount: 5 * grid})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 160 {
		t.Errorf("transfer is %d bytes; want a compact encoding (≤ 160)", len(raw))
	}
}

func TestDecodeRefusesNonCanonical(t *testing.T) {
	key := testKey("a")
	good, err := NewTx(key, testChain, 1, &Stake{Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	body := good[:len(good)-64]
	sig := good[len(good)-64:]
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// Offsets: version, type, chain id length, chain id, 32-byte sender,
	// nonce (1 byte), amount (1 byte).
	nonceAt := 3 + len(testChain) + 32
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"only a signature", sig, "too short"},
		{"bad version", join([]byte{2}, body[1:], sig), "version"},
		{"unknown type", join(body[:1], []byte{200}, body[2:], sig), "unknown tx type"},
		{"non-minimal nonce", join(body[:nonceAt], []byte{0x81, 0x00}, body[nonceAt+1:], sig), "non-minimal"},
		{"trailing byte", join(body, []byte{0}, sig), "unexpected bytes"},
		{"truncated body", join(body[:len(body)-1], sig), "truncated"},
		{"zero amount", join(body[:len(body)-1], []byte{0}, sig), "amount must be positive"},
		{"empty chain id", join(body[:2], []byte{0}, body[3+len(testChain):], sig), "chain id"},
		{"oversized", make([]byte, MaxTxBytes+1), "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeTx(c.raw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

func TestDecodeRefusesBadLists(t *testing.T) {
	a, b := idOf(testKey("a")), idOf(testKey("b"))
	lo, hi := a, b
	if lo > hi {
		lo, hi = hi, lo
	}
	job := JobIDFor(testChain, a, 1)
	cases := []struct {
		name string
		body Body
		want string
	}{
		{"unsorted contributors", &SubmitReceipt{Job: job, Contributors: []gridmind.NodeID{hi, lo}}, "sorted"},
		{"duplicate contributor", &SubmitReceipt{Job: job, Contributors: []gridmind.NodeID{lo, lo}}, "sorted"},
		{"no contributors", &SubmitReceipt{Job: job}, "contributors"},
		{"short signature", &SubmitReceipt{Job: job, Contributors: []gridmind.NodeID{lo}, Signatures: []NodeSignature{{Node: lo, Sig: []byte{1}}}}, "signature"},
		{"unsorted signatures", &SubmitReceipt{Job: job, Contributors: []gridmind.NodeID{lo},
			Signatures: []NodeSignature{{Node: hi, Sig: make([]byte, 64)}, {Node: lo, Sig: make([]byte, 64)}}}, "sorted"},
		{"round out of range", &SubmitReceipt{Job: job, Round: MaxRounds, Contributors: []gridmind.NodeID{lo}}, "round"},
		{"lease without acceptance", &AssignLease{Job: job, Provider: b, ValidUntil: 5}, "acceptance"},
		{"lease never valid", &AssignLease{Job: job, Provider: b, Acceptance: make([]byte, 64)}, "valid until"},
		{"job without size", &PostJob{Spec: gridmind.JobSpec{Workers: 1, Rounds: 1, Budget: 1}}, "size"},
		{"job too big", &PostJob{Spec: gridmind.JobSpec{Workers: 1, Rounds: 1, Budget: 1}, Size: JobSize{ModelParams: MaxModelParams + 1, TokensPerStep: 1}}, "size"},
		{"dispute without evidence", &Dispute{Job: job, Offender: b}, "evidence"},
		{"dispute evidence too big", &Dispute{Job: job, Offender: b, Evidence: make([]byte, maxEvidence+1)}, "evidence"},
		{"dispute reason too long", &Dispute{Job: job, Offender: b, Evidence: []byte{1}, Reason: strings.Repeat("x", maxMemoBytes+1)}, "reason"},
		{"too many signatures", &SubmitReceipt{Job: job, Contributors: []gridmind.NodeID{lo}, Signatures: make([]NodeSignature, MaxParticipants+1)}, "signatures"},
		{"too many contributors", &SubmitReceipt{Job: job, Contributors: make([]gridmind.NodeID, MaxParticipants+1)}, "contributors"},
		{"lease acceptance not a signature", &AssignLease{Job: job, Provider: b, ValidUntil: 5, Acceptance: make([]byte, 65)}, "acceptance"},
		{"no observations", &AttestUptime{}, "observations"},
		{"close with bad job id", &CloseJob{Job: "nope"}, "job id"},
		{"evidence for no ledger job", &RoundEvidence{Evidence: train.Evidence{Kind: train.EvidenceEquivocation, Job: "j", Offender: b}}, "not a ledger job"},
		{"evidence of no kind", &RoundEvidence{Evidence: train.Evidence{Kind: 99, Job: string(job), Offender: b}}, "unknown kind"},
		{"evidence too big for a tx", &RoundEvidence{Evidence: train.Evidence{Kind: train.EvidencePartMismatch, Job: string(job), Offender: b, Payload: make([]byte, MaxTxBytes)}}, "at most"},
		{"seen above expected", &AttestUptime{Observations: []Observation{{Node: b, Seen: 3, Expected: 2}}}, "seen 3 of expected 2"},
		{"self attestation", &AttestUptime{Observations: []Observation{{Node: a, Seen: 1, Expected: 2}}}, "own uptime"},
		{"slash above 100%", &Slash{Offender: b, FractionPPM: PPM + 1, Evidence: []byte{1}}, "fraction"},
		{"slash without evidence", &Slash{Offender: b, FractionPPM: 1}, "evidence"},
		{"self transfer", &Transfer{To: a, Amount: 1}, "same account"},
		{"bad recipient", &Transfer{To: "not-a-node", Amount: 1}, "recipient"},
		{"zero workers", &PostJob{Spec: gridmind.JobSpec{Rounds: 1, Budget: 1}}, "workers"},
		{"bad job id", &CancelJob{Job: "XYZ"}, "job id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTx(testKey("a"), testChain, 0, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// TestDecodeBoundsBeforeAllocating: a length or count on the wire that
// claims more than its limit (or than the transaction holds) is refused
// before anything is allocated for it, for the types issue 11 added.
func TestDecodeBoundsBeforeAllocating(t *testing.T) {
	key := testKey("a")
	job := JobIDFor(testChain, idOf(key), 1)
	header := func(typ TxType) *encoder {
		e := &encoder{}
		e.byte1(wireVersion)
		e.byte1(byte(typ))
		e.str(testChain)
		e.fixed(key.Public().(ed25519.PublicKey))
		e.uvarint(0)
		e.fixed(job.raw())
		return e
	}
	huge := uint64(1) << 40
	dispute := header(TypeDispute)
	dispute.uvarint(0)
	dispute.node(idOf(testKey("b")))
	dispute.uvarint(huge) // evidence length
	receiptContributors := header(TypeSubmitReceipt)
	receiptContributors.uvarint(0)
	receiptContributors.fixed(make([]byte, 32))
	receiptContributors.uvarint(huge) // contributors
	receiptSignatures := header(TypeSubmitReceipt)
	receiptSignatures.uvarint(0)
	receiptSignatures.fixed(make([]byte, 32))
	receiptSignatures.uvarint(1)
	receiptSignatures.node(idOf(testKey("b")))
	receiptSignatures.uvarint(MaxParticipants + 1) // signatures
	inside := header(TypeDispute)
	inside.uvarint(0)
	inside.node(idOf(testKey("b")))
	inside.uvarint(maxEvidence) // allowed, but the tx does not hold it
	for _, c := range []struct {
		name string
		e    *encoder
		want string
	}{
		{"dispute evidence", dispute, "at most"},
		{"receipt contributors", receiptContributors, "at most"},
		{"receipt signatures", receiptSignatures, "at most"},
		{"evidence longer than the tx", inside, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := append(c.e.buf, make([]byte, ed25519.SignatureSize)...)
			_, err := DecodeTx(raw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, c.want)
			}
			if _, err := Verify(testChain, raw, nil); CodeOf(err) != CodeMalformed {
				t.Fatalf("Verify: %v, want %s", err, CodeMalformed)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	key := testKey("a")
	raw, err := NewTx(key, testChain, 0, &Stake{Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(raw)
	forged[len(forged)-1] ^= 1
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-65] = 6 // the amount
	other, _ := NewTx(key, "other-chain", 0, &Stake{Amount: 5})
	for _, c := range []struct {
		name string
		raw  []byte
		want Code
	}{
		{"forged signature", forged, CodeBadSignature},
		{"tampered amount", tampered, CodeBadSignature},
		{"other chain", other, CodeWrongChain},
		{"garbage", []byte("hello there, this is not a transaction at all, not even close to one........"), CodeMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(testChain, c.raw, nil)
			if got := CodeOf(err); got != c.want {
				t.Fatalf("got %v (%s), want %s", err, got, c.want)
			}
			var te *TxError
			if !errors.As(err, &te) || te.Msg == "" {
				t.Fatalf("want a *TxError with a message, got %v", err)
			}
		})
	}
}

// FuzzDecodeTx holds the decoder to three promises: it never panics, what
// it accepts re-encodes to the same bytes, and Verify agrees with it.
func FuzzDecodeTx(f *testing.F) {
	for i, body := range sampleBodies() {
		raw, err := NewTx(testKey("fuzz"), testChain, uint64(i)*1000, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			if _, verr := Verify(testChain, raw, nil); CodeOf(verr) != CodeMalformed {
				t.Fatalf("decode failed (%v) but Verify said %v", err, verr)
			}
			return
		}
		if got := tx.Encode(); !bytes.Equal(got, raw) {
			t.Fatalf("accepted a non-canonical encoding:\n in %x\nout %x", raw, got)
		}
		again, err := DecodeTx(tx.Encode())
		if err != nil || !reflect.DeepEqual(again.Body, tx.Body) {
			t.Fatalf("re-decode: %v", err)
		}
		_, _ = Verify(tx.ChainID, raw, nil)
	})
}
