// Package p2p is gridmind's network layer and the only package that imports
// go-libp2p: a host with TCP and QUIC, Noise, yamux, a resource manager with
// explicit limits, a connection manager, ping, a Kademlia DHT under the
// private prefix /gridmind, and GossipSub with validators.
//
// Its API speaks gridmind's vocabulary only (gridmind.NodeID, strings,
// []byte), so nothing else in the module depends on libp2p types.
//
// Use:
//
//	h, err := p2p.New(ctx, p2p.Config{Key: key, Bootstrap: peers})
//	defer h.Close()
//	err = h.Bootstrap(ctx)                      // dial bootstrap peers, fill the DHT
//	t, err := h.Join("gridmind/presence/1", validate)
//	sub, err := t.Subscribe()
//	err = t.Publish(ctx, data)
//	msg, err := sub.Next(ctx)                   // msg.From is the signed author
//	h.Handle("/gridmind/allreduce/1.0.0", serve)
//	s, err := h.Open(ctx, peerID, "/gridmind/allreduce/1.0.0")
//	err = h.Provide(ctx, "checkpoint/"+hash)    // DHT provider record
//	ids, err := h.FindProviders(ctx, "checkpoint/"+hash, 10)
//
// Tests and devnets set Config.LoopbackOnly, which keeps every listen, dial
// and advertised address on 127.0.0.1. internal/bench/p2pbench measures
// stream throughput, gossip delivery and memory per host through this API
// for `gridmind bench p2p`.
package p2p
