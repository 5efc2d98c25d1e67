//go:build !unix

package proxy

import "net"

// socketPair falls back to net.Pipe where socket pairs are missing; the
// proxy cannot look at a pipe, and so pools nothing.
func socketPair() (net.Conn, net.Conn, error) {
	a, b := net.Pipe()
	return a, b, nil
}
