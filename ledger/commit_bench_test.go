package ledger

import (
	"fmt"
	"testing"

	"github.com/gridmind/gridmind"
)

// BenchmarkBlockEnd is a validator's per-block ledger work after the
// transactions: the supply check, the app hash and the commit into the
// base, for a block that changes 600 of 20,000 accounts (about the state
// and the block `gridmind bench ledger` runs). "incremental" is what
// chain/ does every block; "walk" adds the full walk chain/ does every
// DefaultInvariantEvery blocks.
//
//	go test -run '^$' -bench BlockEnd -benchtime 200x ./ledger/
func BenchmarkBlockEnd(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "incremental"
		if full {
			name = "walk"
		}
		b.Run(name, func(b *testing.B) {
			const accounts, changed = 20_000, 600
			ids := make([]gridmind.NodeID, accounts)
			g := Genesis{ChainID: testChain, Params: DefaultParams()}
			for i := range ids {
				ids[i] = idOf(testKey(fmt.Sprint("bench-", i)))
				g.Accounts = append(g.Accounts, GenesisAccount{Address: ids[i], Balance: 1_000_000})
			}
			base, err := NewState(g, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				fork := base.Fork()
				if _, err := fork.BeginBlock(int64(n+1), ""); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < changed; i += 2 { // transfers of 1 between pairs
					from, _ := fork.account(ids[(n*changed+i)%accounts])
					to, _ := fork.account(ids[(n*changed+i+1)%accounts])
					from.Balance--
					to.Balance++
					fork.setAccount(from)
					fork.setAccount(to)
				}
				b.StartTimer()
				check := fork.CheckSupply
				if full {
					check = fork.CheckInvariant
				}
				if err := check(); err != nil {
					b.Fatal(err)
				}
				_ = fork.Hash()
				if err := base.Commit(fork); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
