package ledger

import (
	"errors"
	"strings"
	"testing"

	"github.com/gridmind/gridmind"
)

// TestCheckSupply: the per-block check from running totals accepts honest
// blocks and catches money created in an account, a job's broken books,
// and running totals that drifted from the state (which the full walk of
// CheckInvariant reports as such).
func TestCheckSupply(t *testing.T) {
	h := newHarness(t, DefaultParams(), Options{}, map[string]gridmind.Amount{"alice": 100 * grid, "bob": 5 * grid})
	h.begin("")
	if r := h.apply("alice", &Transfer{To: h.id("bob"), Amount: grid}); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	if err := h.fork.CheckSupply(); err != nil {
		t.Fatalf("honest block: %v", err)
	}
	h.end()

	t.Run("money created", func(t *testing.T) {
		fork := h.base.Fork()
		a, _ := fork.account(h.id("bob"))
		a.Balance++
		fork.setAccount(a)
		for name, check := range map[string]func() error{"CheckSupply": fork.CheckSupply, "CheckInvariant": fork.CheckInvariant} {
			if err := check(); !errors.Is(err, ErrSupply) {
				t.Errorf("%s = %v, want ErrSupply", name, err)
			}
		}
	})
	t.Run("job books", func(t *testing.T) {
		fork := h.base.Fork()
		// A job whose escrow is counted in the supply (taken from alice)
		// but whose budget says otherwise.
		a, _ := fork.account(h.id("alice"))
		a.Balance -= 10
		fork.setAccount(a)
		fork.setJob(Job{ID: "J1", Escrow: 10, Spec: gridmind.JobSpec{Budget: 11}})
		err := fork.CheckSupply()
		if !errors.Is(err, ErrSupply) || !strings.Contains(err.Error(), "job J1") {
			t.Errorf("CheckSupply = %v, want ErrSupply about job J1", err)
		}
	})
	t.Run("running totals drifted", func(t *testing.T) {
		saved := h.base.totals
		defer func() { h.base.totals = saved }()
		h.base.totals.balances += 3
		h.base.totals.stakes -= 3 // the equation still holds; only the walk can tell
		if err := h.base.CheckSupply(); err != nil {
			t.Fatalf("CheckSupply = %v: the drift was meant to balance out", err)
		}
		err := h.base.CheckInvariant()
		if !errors.Is(err, ErrSupply) || !strings.Contains(err.Error(), "running supply totals") {
			t.Errorf("CheckInvariant = %v, want ErrSupply about the running totals", err)
		}
	})
}
