// Package ledger is gridmind's token ledger as a pure, deterministic state
// machine: accounts, stakes and unbonding, providers and their offers, jobs
// with escrow, leases, round receipts and their settlement, raw reputation
// counters (rounds finished and failed, uptime attestations, slashes) and
// a slash pool. It does no I/O, reads no clock, uses no floats and never
// iterates a map in an order that matters; chain/ runs it under CometBFT.
//
// Money is gridmind.Amount (µGRID). At every height
//
//	balances + stakes + unbonding + escrow + slash pool + burned fees = genesis supply + minted
//
// CheckSupply verifies it after a block from running totals and what the
// block changed; CheckInvariant verifies it by walking the whole state.
//
// Use:
//
//	base, _ := ledger.NewState(genesis, ledger.Options{})  // height 0
//	raw, _ := ledger.NewTx(key, chainID, nonce, &ledger.Transfer{To: bob, Amount: 5})
//	fork := base.Fork()
//	res, err := ledger.ExecuteBlock(fork, 1, "", [][]byte{raw}, nil)
//	// res.TxResults[i].Code is CodeOK or why tx i was refused; res.AppHash
//	// is the hash of the state after the block.
//	base.Commit(fork)                    // fork.Changes() is what to persist
//
// Transactions are a canonical binary encoding (DecodeTx accepts exactly one
// byte form per transaction) signed with the sender's ed25519 key over a
// domain tag, the chain ID and the sender's nonce. Verify checks the
// signature once and returns a VerifiedTx that State.Apply executes; a
// refused transaction changes nothing and reports a Code and a message.
//
// Transaction types live in a registry (RegisterTx): a new type is one
// file with its Body (encode, decode, check, apply) and an init that
// registers it. Who may send what, what it costs and what stops a lie is
// written down in docs/ARCHITECTURE.md ("The ledger's trust model").
//
// Forks stack: chain/ keeps one fork over the committed state for CheckTx
// (so several transactions from one account can wait for the same block),
// and one per proposal. Restore rebuilds a base from persisted entries;
// Hash is a function of the entries alone.
package ledger
