// Package serve is gridmind's inference service: an OpenAI-compatible
// HTTP API in front of local models and of replicas elsewhere on the
// network, with usage receipts signed by both sides.
//
// The pieces, and how a node wires them:
//
//	local := serve.NewLocal(serve.LocalConfig{})       // bounded queue per model
//	local.Add(modelHash, trainer)                      // any Generator; gridmind.Trainer is one
//	batcher, _ := serve.NewBatcher(serve.BatcherConfig{Submit: payOnLedger})
//	go batcher.Run(ctx)
//	srv, _ := serve.NewServer(serve.ServerConfig{Key: key, Local: local, OnReceipt: batcher.Add})
//	host.Handle(serve.Protocol, srv.Handler(ctx))      // via serve/p2pnet on libp2p
//	cli, _ := serve.NewClient(serve.ClientConfig{Key: key, Dialer: dialer, Directory: dht})
//	api, _ := serve.NewHandler(serve.HandlerConfig{Local: local, Remote: cli})
//	mux.Handle("/v1/", api)
//	heartbeat.Serving = local.Served()                 // queue length and latency
//
// Requests for a model served locally run through Local; others go through
// Client, which picks replicas with route.Router, hedges a request that has
// not answered within the recent p95 to a second replica (the first answer
// wins, the other is cancelled), fails over on errors, and resumes a stream
// mid-way on another replica by regenerating with the same seed and
// skipping the delivered prefix (see Client). The inference stream protocol
// and its framing are documented at Protocol.
//
// Each remote request ends with a Receipt (tokens in and out, model, server,
// client, request id) signed by the server and countersigned by the client;
// the server's Batcher hands receipts to the ledger in batches.
//
// Test doubles (an in-memory network, a deterministic fake model) live in
// internal/testnet; "gridmind bench infer" (internal/bench/inferbench)
// measures fail-over over libp2p with the GoMLX model.
package serve
