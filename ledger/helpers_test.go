package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

const testChain = "gridmind-test"

// testKey derives a deterministic key from a name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("ledger-test/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func idOf(k ed25519.PrivateKey) gridmind.NodeID {
	return gridmind.NodeIDFromPublicKey(k.Public().(ed25519.PublicKey))
}

const grid = gridmind.UnitsPerGRID

// harness runs blocks against a state and keeps nonces, like a wallet.
type harness struct {
	t      testing.TB
	base   *State
	fork   *State
	height int64
	nonces map[gridmind.NodeID]uint64
	keys   map[string]ed25519.PrivateKey
	ids    map[string]gridmind.NodeID
}

func newHarness(t testing.TB, params Params, opts Options, funded map[string]gridmind.Amount) *harness {
	t.Helper()
	h := &harness{t: t, nonces: map[gridmind.NodeID]uint64{}, keys: map[string]ed25519.PrivateKey{}, ids: map[string]gridmind.NodeID{}}
	g := Genesis{ChainID: testChain, Params: params}
	for _, name := range sortedNames(funded) {
		k := h.key(name)
		g.Accounts = append(g.Accounts, GenesisAccount{Address: idOf(k), Balance: funded[name]})
	}
	g.Validators = []Validator{{Address: "VAL0", Account: h.id("validator")}}
	base, err := NewState(g, opts)
	if err != nil {
		t.Fatalf("NewState: %v", err)
	}
	h.base = base
	return h
}

func sortedNames(m map[string]gridmind.Amount) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (h *harness) key(name string) ed25519.PrivateKey {
	if k, ok := h.keys[name]; ok {
		return k
	}
	k := testKey(name)
	h.keys[name] = k
	return k
}

func (h *harness) id(name string) gridmind.NodeID {
	if id, ok := h.ids[name]; ok {
		return id
	}
	id := idOf(h.key(name))
	h.ids[name] = id
	return id
}

// begin opens the next block.
func (h *harness) begin(proposer string) []Event {
	h.t.Helper()
	if h.fork != nil {
		h.t.Fatalf("block %d still open", h.height)
	}
	h.fork = h.base.Fork()
	h.height++
	ev, err := h.fork.BeginBlock(h.height, proposer)
	if err != nil {
		h.t.Fatalf("BeginBlock(%d): %v", h.height, err)
	}
	return ev
}

// end checks the invariant and commits the open block.
func (h *harness) end() {
	h.t.Helper()
	if err := h.fork.CheckInvariant(); err != nil {
		h.t.Fatalf("after block %d: %v", h.height, err)
	}
	if err := h.fork.CheckSupply(); err != nil {
		h.t.Fatalf("after block %d: the incremental check disagrees with the walk: %v", h.height, err)
	}
	want := h.fork.Hash()
	if err := h.base.Commit(h.fork); err != nil {
		h.t.Fatal(err)
	}
	if got := h.base.Hash(); got != want {
		h.t.Fatalf("hash after commit %s, fork said %s", got, want)
	}
	h.fork = nil
}

// sign builds a signed tx from name with its next nonce (not yet counted).
func (h *harness) sign(name string, body Body) []byte {
	h.t.Helper()
	k := h.key(name)
	raw, err := NewTx(k, testChain, h.nonces[idOf(k)], body)
	if err != nil {
		h.t.Fatalf("sign %s: %v", body.Type(), err)
	}
	return raw
}

// apply submits body from name in the open block (opening and closing one
// around it when none is open) and returns the result; the nonce advances
// on success.
func (h *harness) apply(name string, body Body) TxResult {
	h.t.Helper()
	own := h.fork == nil
	if own {
		h.begin("")
	}
	raw := h.sign(name, body)
	r := h.applyRaw(raw)
	if r.Code == CodeOK {
		h.nonces[h.id(name)]++
	}
	if own {
		h.end()
	}
	return r
}

func (h *harness) applyRaw(raw []byte) TxResult {
	h.t.Helper()
	v, err := Verify(testChain, raw, nil)
	if err != nil {
		return result(err.(*TxError))
	}
	before := h.fork.Hash()
	r := h.fork.Apply(v)
	if r.Code == CodeInternal {
		h.t.Fatalf("internal error: %s", r.Log)
	}
	if r.Code != CodeOK && h.fork.Hash() != before {
		h.t.Fatalf("refused %s (%s) changed the state", v.Tx().Body.Type(), r.Log)
	}
	return r
}

// must applies and fails the test unless the tx succeeds.
func (h *harness) must(name string, body Body) TxResult {
	h.t.Helper()
	r := h.apply(name, body)
	if r.Code != CodeOK {
		h.t.Fatalf("%s by %s: %s: %s", body.Type(), name, r.Code, r.Log)
	}
	return r
}

// refuse applies and fails the test unless the tx is refused with code.
func (h *harness) refuse(code Code, name string, body Body) TxResult {
	h.t.Helper()
	r := h.apply(name, body)
	if r.Code != code {
		h.t.Fatalf("%s by %s: got %s (%s), want %s", body.Type(), name, r.Code, r.Log, code)
	}
	return r
}

func (h *harness) state() *State {
	if h.fork != nil {
		return h.fork
	}
	return h.base
}

func (h *harness) balance(name string) gridmind.Amount { return h.state().Account(h.id(name)).Balance }

func (h *harness) emptyBlocks(n int) {
	for i := 0; i < n; i++ {
		h.begin("")
		h.end()
	}
}

func fmtAmount(a gridmind.Amount) string { return fmt.Sprintf("%d µGRID", uint64(a)) }

// beginAt opens the next block at a block time (Unix seconds).
func (h *harness) beginAt(unix int64) {
	h.t.Helper()
	if h.fork != nil {
		h.t.Fatalf("block %d still open", h.height)
	}
	h.fork = h.base.Fork()
	h.height++
	if _, err := h.fork.BeginBlockAt(h.height, unix, ""); err != nil {
		h.t.Fatalf("BeginBlockAt(%d): %v", h.height, err)
	}
}

// lease is requester's AssignLease of provider from round from, carrying
// the provider's acceptance.
func (h *harness) lease(job JobID, requester, provider string, from uint64) *AssignLease {
	const until = 1 << 40
	return &AssignLease{Job: job, Provider: h.id(provider), FromRound: from, ValidUntil: until,
		Acceptance: SignLeaseAcceptance(h.key(provider), testChain, job, h.id(requester), from, until)}
}

// receipt is a receipt of round with model hash {round} and contributors.
func receipt(job JobID, round uint64, contributors ...gridmind.NodeID) *SubmitReceipt {
	c := slices.Clone(contributors)
	slices.Sort(c)
	return &SubmitReceipt{Job: job, Round: round, ModelHash: Hash{byte(round)}, Contributors: c}
}

// signed adds the signatures of signers (names) over the receipt.
func (h *harness) signed(r *SubmitReceipt, signers ...string) *SubmitReceipt {
	out := *r
	out.Signatures = nil
	for _, n := range signers {
		out.Signatures = append(out.Signatures, SignReceipt(h.key(n), testChain, r.Job, r.Round, r.ModelHash, r.Contributors))
	}
	slices.SortFunc(out.Signatures, func(a, b NodeSignature) int { return strings.Compare(string(a.Node), string(b.Node)) })
	return &out
}

// settleable runs empty blocks until round's dispute window has passed.
func (h *harness) settleable(job JobID, round uint64) {
	h.t.Helper()
	r, ok := h.state().Receipt(job, round)
	if !ok {
		h.t.Fatalf("no receipt for round %d", round)
	}
	for h.height+1 < r.SubmittedHeight+h.state().Params().SettleDelayBlocks {
		h.emptyBlocks(1)
	}
}
