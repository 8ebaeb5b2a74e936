// Package netutil holds small networking helpers shared by the local
// network builders (devnet-style chains, benchmarks, in-process networks).
package netutil

import "net"

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// asked. Something else could take one before it is used, which only makes
// a start fail with "address in use", never run on a wrong port.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
