package proxy

import (
	"net"
	"time"
)

// writeDeadlineListener gives every accepted connection a per-write
// deadline.
type writeDeadlineListener struct {
	net.Listener
	timeout time.Duration
}

func (l writeDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, write: slidingDeadline{timeout: l.timeout}}, nil
}

// deadlineConn gives every read, every write or both a deadline, each
// direction with its own slidingDeadline (a zero timeout: none). Reads are
// not concurrent with reads, nor writes with writes (the server serialises
// them; after a hijack the owner does).
type deadlineConn struct {
	net.Conn
	read, write slidingDeadline
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if at, move := c.read.next(); move {
		if err := c.Conn.SetReadDeadline(at); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if at, move := c.write.next(); move {
		if err := c.Conn.SetWriteDeadline(at); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// CloseWrite ends the output of the connection (the half-close that
// net/http uses before closing after an error response, and a tunnel when
// one side is done), or closes it when it cannot be half-closed.
func (c *deadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// slidingDeadline keeps a connection's read or write deadline timeout
// ahead of each operation, like nginx's send_timeout and proxy_read_timeout.
// It moves the deadline only when half of it has passed, sparing a timer
// update per operation, so an operation has between half the timeout and
// all of it.
type slidingDeadline struct {
	timeout time.Duration // zero: no deadline
	at      time.Time     // the deadline set last
}

// next returns the deadline to set before an operation, and false when
// there is no timeout or the deadline set last still has more than half of
// it to run.
func (d *slidingDeadline) next() (time.Time, bool) {
	if d.timeout <= 0 {
		return time.Time{}, false
	}
	if now := time.Now(); d.at.Sub(now) < d.timeout/2 {
		d.at = now.Add(d.timeout)
		return d.at, true
	}
	return time.Time{}, false
}
