// Package testnet holds the test doubles that inference tests and
// benchmarks share: MemNetwork, an in-process network with injected
// round-trip times whose nodes can be killed mid-stream, and
// FakeGenerator, a deterministic model that needs no weights.
//
// It imports none of gridmind's product packages except the root, so
// serve's own (in-package) tests can use it without an import cycle:
//
//	netw := testnet.NewMemNetwork()
//	netw.Listen(srv.ID(), 20*time.Millisecond, srv.Handler(ctx))
//	cli, _ := serve.NewClient(serve.ClientConfig{Dialer: netw.Dialer(clientID), ...})
//	local.Add(model, testnet.FakeGenerator{TokenDelay: time.Millisecond})
package testnet
