// Package netutil holds small networking helpers shared by the local
// network builders (devnet-style chains, benchmarks, in-process networks).
package netutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// asked. Something else could take one before it is used, which only makes
// a start fail with "address in use", never run on a wrong port.
//
// The ports are drawn below the kernel's ephemeral range: ports there are
// handed to every listener on port 0 and to every outgoing connection's
// source, so under parallel tests one picked there is often taken again
// before it is bound (CI saw it). Below the range only another explicit
// choice can collide.
func FreePorts(n int) ([]int, error) {
	lo, hi := 10000, ephemeralStart()
	pick := func() int { return lo + rand.IntN(hi-lo) }
	if hi-lo < 4*n {
		pick = func() int { return 0 } // no room below the range: the kernel chooses
	}
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var lastErr error
	for tries := 0; len(ports) < n; tries++ {
		if tries > 64*n {
			return nil, fmt.Errorf("no free port on 127.0.0.1 after %d tries (below %d where there is room): %w", tries, hi, lastErr)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pick())))
		if err != nil {
			lastErr = err
			continue // taken; holding the others keeps the set distinct
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range, or
// 32768 (Linux's default) where it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 0 || p > 65535 {
		return 32768
	}
	return p
}
