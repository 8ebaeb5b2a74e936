// Package inferbench measures edge inference fail-over, the harness behind
// `gridmind bench infer`.
//
// RunP2P measures the production path: replica processes serve the GoMLX
// model over libp2p on loopback and announce it in the DHT, and a client
// built as a node builds it (serve.Client over serve/p2pnet, found through
// p2pnet.Directory) sends streaming requests, first with no failure, then
// with one replica killed (SIGKILL) and one frozen (SIGSTOP) mid-run. The
// binary it starts as replicas must call ServeReplica when IsReplica:
//
//	if inferbench.IsReplica() {
//		return inferbench.ServeReplica(ctx)
//	}
//	rep, err := inferbench.RunP2P(ctx, inferbench.P2POptions{Exe: self, Args: args}, progress)
//
// RunMemory is the older, cheaper harness: a fake model on
// internal/testnet's in-memory network, where a killed replica resets
// its streams at once.
package inferbench
