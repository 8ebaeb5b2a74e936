// Package chain runs gridmind's ledger (package ledger) as a CometBFT
// v0.38 application, embedded in the gridmind process. It is the only
// package that imports CometBFT.
//
// Make a chain, start its validators, talk to them:
//
//	net, err := chain.InitGenesis(chain.GenesisOptions{
//		ChainID: "gridmind-devnet", Dir: dir,
//		Validators: []chain.ValidatorSpec{{Key: nodeKey}},       // one or more
//		Accounts:   []ledger.GenesisAccount{{Address: id, Balance: 1000 * gridmind.UnitsPerGRID}},
//	})
//	n, err := chain.StartNode(ctx, chain.NodeConfig{Home: net.Validators[0].Home})
//	defer n.Stop()
//	c := n.Client()                                   // in-process
//	c, err = chain.NewClient(net.RPCAddrs(), chain.ClientOptions{}) // over RPC, with fail-over
//	w := chain.NewWallet(c, key)
//	rec, err := w.Send(ctx, to, 5*gridmind.UnitsPerGRID, "thanks")
//	acct, err := c.Account(ctx, id)
//
// The App keeps the committed ledger state in memory and in a bbolt file
// in the validator's data directory. Each block's changes, height and app
// hash are written in one bbolt transaction at Commit, and Info reports
// them, so a validator killed at any moment recovers through CometBFT's
// handshake (which replays the blocks the app is missing). CheckTx runs
// transactions against a pending layer over the committed state, so an
// account may have many transactions in one block; ProcessProposal
// accepts a block only if all its transactions apply, and FinalizeBlock
// reuses that execution. The supply invariant is checked after every
// block before it is committed; if it breaks, FinalizeBlock fails and
// CometBFT's consensus stops: the node halts rather than diverges.
//
// `gridmind bench ledger` (internal/bench/ledgerbench) measures the ledger
// from outside, over the RPC, as a wallet uses it.
package chain
