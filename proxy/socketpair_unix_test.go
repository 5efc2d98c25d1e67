//go:build unix

package proxy

import (
	"net"
	"os"
	"syscall"
)

// socketPair returns the two ends of a connected stream socket pair: real
// sockets, unlike net.Pipe, so that the proxy can look at one (peek) as it
// looks at a TCP connection to the upstream.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, err
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			}
			return nil, nil, err
		}
		conns[i] = c
	}
	return conns[0], conns[1], nil
}
