//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

import "net"

// canPeek says whether a peeker can look at a connection on this platform.
const canPeek = false

// peeker cannot look at a connection here: a client that leaves is
// noticed only when the proxy next writes to it, and upstream connections
// are not pooled (nothing could tell a stray byte from the next answer).
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

func (*peeker) peek() (data, eof, ok bool) { return false, false, false }

func peek(net.Conn) (data, eof, ok bool) { return false, false, false }
