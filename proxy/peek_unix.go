//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"net"
	"syscall"
)

// canPeek says whether peek can look at a connection on this platform.
const canPeek = true

// peek looks at a connection's receive queue without waiting and without
// consuming anything: data says that bytes are waiting, eof that the peer
// has closed (or reset) its side. ok is false when the connection cannot
// be looked at.
func peek(c net.Conn) (data, eof, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return false, false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false, false
	}
	var buf [1]byte
	var n int
	var rerr error
	// Control, not Read: a read fails before it looks once the
	// connection's read deadline has passed, and a deadline left by an
	// earlier read says nothing about the peer. MSG_DONTWAIT: one look,
	// never a wait.
	err = rc.Control(func(fd uintptr) {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	switch {
	case err != nil:
		return false, true, true // closed here
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return false, false, true
	case rerr != nil:
		return false, true, true // reset
	case n == 0:
		return false, true, true
	}
	return true, false, true
}
