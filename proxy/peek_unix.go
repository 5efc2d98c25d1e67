//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"net"
	"syscall"
)

// canPeek says whether a peeker can look at a connection on this platform.
const canPeek = true

// peeker looks at one connection's receive queue without waiting and
// without consuming anything. It is made once per connection, so that a
// look costs one system call and no allocation.
type peeker struct {
	rc   syscall.RawConn // nil: the connection cannot be looked at
	look func(fd uintptr)
	buf  [1]byte
	n    int
	err  error
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return p
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return p
	}
	p.rc = rc
	p.look = func(fd uintptr) {
		p.n, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}
	return p
}

// peek reports what is waiting: data says that bytes are, eof that the
// peer has closed (or reset) its side. ok is false when the connection
// cannot be looked at.
func (p *peeker) peek() (data, eof, ok bool) {
	if p.rc == nil {
		return false, false, false
	}
	// Control, not Read: a read fails before it looks once the
	// connection's read deadline has passed, and a deadline left by an
	// earlier read says nothing about the peer. MSG_DONTWAIT: one look,
	// never a wait.
	err := p.rc.Control(p.look)
	switch {
	case err != nil:
		return false, true, true // closed here
	case p.err == syscall.EAGAIN:
		return false, false, true
	case p.err != nil:
		return false, true, true // reset
	case p.n == 0:
		return false, true, true
	}
	return true, false, true
}

// peek looks at c once (see peeker).
func peek(c net.Conn) (data, eof, ok bool) { return newPeeker(c).peek() }
