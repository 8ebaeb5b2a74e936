package p2p

import (
	"errors"
	"net"
	"strconv"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/gridmind/gridmind"
)

// checkListenPorts binds every listen address that names a fixed port once,
// plainly (no SO_REUSEPORT), and lets it go again. libp2p binds with
// SO_REUSEPORT and only fails when no address at all could be bound, so a
// port already held by another process (another gridmind node, IPFS) would
// otherwise be shared or silently skipped. A port in use is an error that
// names the address and what to do.
func checkListenPorts(addrs []string) error {
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return gridmind.E(gridmind.KindInvalid, "p2p.listen", "%q is not a multiaddr: %v", s, err)
		}
		ip, err := m.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if ip, err = m.ValueForProtocol(ma.P_IP6); err != nil {
				continue
			}
		}
		network, port := "tcp", ""
		if p, err := m.ValueForProtocol(ma.P_TCP); err == nil {
			port = p
		} else if p, err := m.ValueForProtocol(ma.P_UDP); err == nil {
			network, port = "udp", p
		}
		if port == "" || port == "0" {
			continue
		}
		hostport := net.JoinHostPort(ip, port)
		var closeFn func() error
		if network == "tcp" {
			l, lerr := net.Listen("tcp", hostport)
			err = lerr
			if l != nil {
				closeFn = l.Close
			}
		} else {
			c, lerr := net.ListenPacket("udp", hostport)
			err = lerr
			if c != nil {
				closeFn = c.Close
			}
		}
		if closeFn != nil {
			closeFn()
		}
		if err != nil {
			why := err.Error()
			if errors.Is(err, syscall.EADDRINUSE) {
				why = network + " port " + port + " is already in use (another gridmind node? gridmind defaults to 4201; IPFS uses 4001)"
			}
			return gridmind.E(gridmind.KindUnavailable, "p2p.listen", "cannot listen on %s: %s; pick a free port with `gridmind node --listen /ip4/0.0.0.0/tcp/PORT` (or listen: in config.yaml), or port 0 for any", s, why)
		}
	}
	return nil
}

// missingListen are the configured listen addresses that libp2p did not
// bind (a port 0 matches any port of the same address and transport).
func missingListen(configured []string, bound []ma.Multiaddr) []string {
	var out []string
	for _, c := range configured {
		found := false
		for _, b := range bound {
			if b.String() == c || zeroPort(b.String()) == c {
				found = true
				break
			}
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}

// zeroPort replaces a multiaddr's tcp or udp port by 0.
func zeroPort(s string) string {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return s
	}
	out := ""
	ma.ForEach(m, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_TCP, ma.P_UDP:
			out += "/" + c.Protocol().Name + "/" + strconv.Itoa(0)
		default:
			out += c.String()
		}
		return true
	})
	return out
}
