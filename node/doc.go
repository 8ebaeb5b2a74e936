// Package node is the gridmind agent: it owns the libp2p host, announces
// the node on the presence topic with signed heartbeats, validates every
// gossip message before it is accepted, keeps the peer table (last seen,
// RTT, latest offer), and exposes status and Prometheus metrics.
//
// Use: Init a home (key + config), LoadConfig, New, then Run until the
// context is cancelled; Close releases everything. Later layers (ledger
// client, training, serving) attach to a Node through Host(), JoinTopic
// and Publish.
package node
