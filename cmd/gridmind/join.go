package main

import (
	"net/url"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/gridmind/gridmind"
)

// checkJoinAddr checks a peer multiaddr given to --join or --bootstrap: it
// must parse and end in /p2p/<peer id>.
func checkJoinAddr(flag, s string) error {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return gridmind.E(gridmind.KindInvalid, flag, "%q is not a multiaddr (%v); want one like /ip4/192.0.2.1/tcp/27000/p2p/12D3KooW… (a running node prints its own as `addr` lines, and `gridmind status` lists them)", s, err)
	}
	if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
		return gridmind.E(gridmind.KindInvalid, flag, "%q must end in /p2p/<peer id> (%v); copy a full `addr` line from the peer's `gridmind status`", s, err)
	}
	return nil
}

// checkRPCURL checks a ledger RPC URL given to --rpc.
func checkRPCURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp") || u.Host == "" || strings.Contains(u.Host, " ") {
		return gridmind.E(gridmind.KindInvalid, flag, "%q is not a validator RPC URL; want http://HOST:PORT (a devnet's first validator answers at http://127.0.0.1:26757)", s)
	}
	if u.Port() == "" {
		return gridmind.E(gridmind.KindInvalid, flag, "%q names no port; want http://HOST:PORT (CometBFT's RPC port, e.g. 26757 on a devnet)", s)
	}
	return nil
}

// checkListenAddr checks a libp2p listen multiaddr given to --listen.
func checkListenAddr(flag, s string) error {
	if _, err := ma.NewMultiaddr(s); err != nil || (!strings.HasPrefix(s, "/ip4/") && !strings.HasPrefix(s, "/ip6/")) {
		return gridmind.E(gridmind.KindInvalid, flag, "%q is not a listen multiaddr; want one like /ip4/0.0.0.0/tcp/4201 or /ip4/0.0.0.0/udp/4201/quic-v1", s)
	}
	return nil
}
