// Package p2pnet carries gridmind's inference protocol (serve.Protocol)
// over libp2p: a serve.Dialer on p2p.Host streams, the stream handler
// registration for a serve.Server, DHT announcements of served models and
// a serve.Directory built on DHT provider records.
//
// It is separate from serve so that serve (and its tests and benchmark)
// builds without libp2p. A node wires it like this:
//
//	p2pnet.Serve(ctx, host, server)                    // answer inference streams
//	p2pnet.Announce(ctx, host, modelHash)              // "I serve this model" (re-announce periodically)
//	dir := &p2pnet.Directory{Host: host, Lookup: fromHeartbeats}
//	client, _ := serve.NewClient(serve.ClientConfig{Key: key, Dialer: p2pnet.Dialer{Host: host}, Directory: dir})
package p2pnet
