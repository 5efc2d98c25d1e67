package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// The upstream side of Proxy.Serve: connections to the application, kept
// alive in a pool, read with a deadline that is also a chance to notice
// that the client has left.

// pollInterval is how often a wait on the upstream looks whether the client
// is still there: a client that leaves frees its upstream connection within
// about this long.
const pollInterval = time.Second

// idleUpstreamTimeout closes pooled upstream connections unused this long.
const idleUpstreamTimeout = 90 * time.Second

// upstream dials the application and pools its connections.
type upstream struct {
	addr    string // host:port
	prefix  string // the upstream URL's path, without a trailing slash
	tls     *tls.Config
	dial    time.Duration
	timeout time.Duration // between two reads from the upstream, and per write
	maxIdle int
	dialer  func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle []*upstreamConn // most recently used last
}

func newUpstream(o Options) *upstream {
	u := &upstream{
		prefix:  strings.TrimSuffix(o.Upstream.Path, "/"),
		addr:    o.Upstream.Host,
		dial:    o.DialTimeout,
		timeout: o.ResponseTimeout,
		maxIdle: o.MaxIdleConns,
	}
	if o.Upstream.Port() == "" {
		port := "80"
		if o.Upstream.Scheme == "https" {
			port = "443"
		}
		u.addr = net.JoinHostPort(o.Upstream.Hostname(), port)
	}
	if o.Upstream.Scheme == "https" {
		u.tls = upstreamTLS(o)
	}
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	u.dialer = d.DialContext
	return u
}

// upstreamConn is one connection to the application.
type upstreamConn struct {
	conn      net.Conn    // with a sliding write deadline (TLS on top for https)
	raw       net.Conn    // the TCP connection
	look      *peeker     // at raw, before each reuse
	records   *recordConn // between raw and TLS for https; nil for http
	in        *wire.Reader
	timeout   time.Duration
	deadline  time.Time // the read deadline set last
	idleSince time.Time

	// Set for each exchange: who waits (to be asked whether it left), when
	// the wait began, and whether bytes arrived since the last poll.
	waiter    waiter
	waitStart time.Time
	moved     bool
	// requestCut says that the exchange's request did not reach the
	// upstream whole (writing its body failed): the connection holds half
	// a request and is never reused.
	requestCut bool
}

// get returns a pooled connection, or dials a new one. reused says which.
func (u *upstream) get(ctx context.Context) (uc *upstreamConn, reused bool, err error) {
	now := time.Now()
	u.mu.Lock()
	for len(u.idle) > 0 {
		uc = u.idle[len(u.idle)-1]
		u.idle[len(u.idle)-1] = nil
		u.idle = u.idle[:len(u.idle)-1]
		if now.Sub(uc.idleSince) < idleUpstreamTimeout {
			break
		}
		// The rest of the pool is older still.
		stale := append([]*upstreamConn{uc}, u.idle...)
		clear(u.idle)
		u.idle = u.idle[:0]
		uc = nil
		u.mu.Unlock()
		for _, s := range stale {
			s.conn.Close()
		}
		u.mu.Lock()
	}
	u.mu.Unlock()
	if uc != nil {
		// Look at every pooled connection before using it. The upstream
		// may have closed it (gunicorn keeps them 2 s), or sent bytes
		// after the answer it framed (a body on a HEAD answer, a body
		// longer than its Content-Length, bytes after the last chunk):
		// those would be read as the next client's answer. Either way it
		// cannot carry another request.
		// Over TLS, bytes may also have left the socket for crypto/tls:
		// part of a record (recordsWhole) or whole records not yet
		// decrypted (tlsBuffered).
		if !uc.readable() && uc.recordsWhole() && !uc.tlsBuffered() {
			return uc, true, nil
		}
		uc.conn.Close()
	}
	uc, err = u.connect(ctx)
	return uc, false, err
}

// connect dials a new connection.
func (u *upstream) connect(ctx context.Context) (*upstreamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, u.dial)
	defer cancel()
	c, err := u.dialer(ctx, "tcp", u.addr)
	if err != nil {
		return nil, err
	}
	var conn net.Conn = &deadlineConn{Conn: c, write: slidingDeadline{timeout: u.timeout}}
	var records *recordConn
	if u.tls != nil {
		records = &recordConn{Conn: conn}
		tc := tls.Client(records, u.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		conn = tc
	}
	uc := &upstreamConn{conn: conn, raw: c, look: newPeeker(c), records: records, timeout: u.timeout}
	uc.in = wire.NewReader(uc, maxResponseHead)
	return uc, nil
}

// put returns a connection whose last exchange ended cleanly to the pool.
// Where a pooled connection cannot be looked at before reuse (see peek),
// it is closed instead: nothing could tell a stray byte from the next
// answer.
func (u *upstream) put(uc *upstreamConn) {
	if !canPeek {
		uc.conn.Close()
		return
	}
	uc.waiter = nil
	uc.idleSince = time.Now()
	uc.in.Shrink()
	u.mu.Lock()
	if len(u.idle) < u.maxIdle {
		u.idle = append(u.idle, uc)
		uc = nil
	}
	u.mu.Unlock()
	if uc != nil {
		uc.conn.Close()
	}
}

// closeIdle closes every pooled connection.
func (u *upstream) closeIdle() {
	u.mu.Lock()
	idle := u.idle
	u.idle = nil
	u.mu.Unlock()
	for _, uc := range idle {
		uc.conn.Close()
	}
}

// waiter is the side an exchange with the upstream answers: a client
// connection, asked at every poll whether it has left.
type waiter interface{ gone() bool }

// begin starts an exchange: reads wait on behalf of w (nil: nobody to
// watch), and the response timeout counts from now.
func (uc *upstreamConn) begin(w waiter) {
	uc.waiter = w
	uc.requestCut = false
	uc.waitStart = time.Now()
	uc.moved = false
}

// errUpstreamTimeout is a wait on the upstream that exceeded the response
// timeout.
var errUpstreamTimeout = timeoutError("no answer from the upstream within the response timeout")

type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

// Read reads from the upstream for the reader. It waits in slices of
// pollInterval: at the end of each it fails with errUpstreamTimeout if
// nothing arrived for the response timeout, and with errClientGone if the
// client has closed its connection; otherwise it waits again. The timeout is
// thus between two reads, as nginx's proxy_read_timeout, give or take one
// interval.
func (uc *upstreamConn) Read(p []byte) (int, error) {
	for {
		now := time.Now()
		if uc.deadline.Sub(now) < pollInterval/2 {
			uc.deadline = now.Add(pollInterval)
			if err := uc.conn.SetReadDeadline(uc.deadline); err != nil {
				return 0, err
			}
		}
		n, err := uc.conn.Read(p)
		if n > 0 || err == nil || !isTimeout(err) {
			uc.moved = uc.moved || n > 0
			return n, err
		}
		// A poll: the deadline passed without a byte.
		now = time.Now()
		uc.deadline = time.Time{}
		if uc.moved {
			uc.moved, uc.waitStart = false, now
		}
		if now.Sub(uc.waitStart) >= uc.timeout {
			return 0, errUpstreamTimeout
		}
		if uc.waiter != nil && uc.waiter.gone() {
			return 0, errClientGone
		}
	}
}

// Write writes to the upstream (with the connection's sliding write
// deadline).
func (uc *upstreamConn) Write(p []byte) (int, error) { return uc.conn.Write(p) }

// isDead reports whether err, from the first read of a response on a
// reused connection, says that the upstream had closed it while it was
// idle: the request can be sent again on a new one.
func isDead(err error) bool {
	return errors.Is(err, errUpstreamClosed) || errors.Is(err, net.ErrClosed) || isReset(err)
}

// readable reports whether an idle upstream connection has something to
// read: bytes it never should have sent, or its end. Either way it cannot
// carry another request. A connection that cannot be looked at counts as
// readable.
func (uc *upstreamConn) readable() bool {
	data, eof, ok := uc.look.peek()
	return data || eof || !ok
}

// recordsWhole reports whether every TLS record that crypto/tls has read
// from the socket is whole (always true for http): a partial one is the
// start of bytes the upstream sent after its last answer, which neither
// the look at the socket nor a read of crypto/tls shows.
func (uc *upstreamConn) recordsWhole() bool {
	return uc.records == nil || uc.records.atBoundary()
}

// recordConn sits between the TCP connection and crypto/tls and follows
// the TLS record framing of what it hands up (RFC 8446 §5.1, RFC 5246
// §6.2: every record is a 5-byte header whose last two bytes give the
// length of the fragment that follows), so that a pooled https connection
// can tell whether crypto/tls holds part of a record.
type recordConn struct {
	net.Conn
	hdr  [5]byte
	nhdr int // bytes of the current record's header read so far
	left int // bytes of the current record's fragment still to come
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.follow(b[:n])
	return n, err
}

// follow advances the record framing over p.
func (c *recordConn) follow(p []byte) {
	for len(p) > 0 {
		if c.left > 0 {
			k := min(c.left, len(p))
			c.left -= k
			p = p[k:]
			continue
		}
		k := copy(c.hdr[c.nhdr:], p)
		c.nhdr += k
		p = p[k:]
		if c.nhdr == len(c.hdr) {
			c.nhdr, c.left = 0, int(c.hdr[3])<<8|int(c.hdr[4])
		}
	}
}

// atBoundary reports whether everything read so far ends a record.
func (c *recordConn) atBoundary() bool { return c.nhdr == 0 && c.left == 0 }

// tlsBuffered reports whether the TLS layer of an idle https upstream
// connection holds bytes the upstream sent after its last answer: records
// read from the socket along with that answer's last one, which neither
// the reader nor a look at the socket sees. It reads without waiting; a
// byte read means the connection is not reused anyway.
func (uc *upstreamConn) tlsBuffered() bool {
	tc, ok := uc.conn.(*tls.Conn)
	if !ok {
		return false
	}
	if err := tc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return true
	}
	var b [1]byte
	n, err := tc.Read(b[:])
	uc.deadline = time.Time{} // Read sets the next one
	return n > 0 || !isTimeout(err)
}

// isReset reports whether err says that the peer reset the connection or
// that it was closed for writing.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// reap closes the pooled connections idle since before cutoff.
func (u *upstream) reap(cutoff time.Time) {
	u.mu.Lock()
	n := 0
	for n < len(u.idle) && u.idle[n].idleSince.Before(cutoff) {
		n++
	}
	stale := make([]*upstreamConn, n)
	copy(stale, u.idle[:n])
	u.idle = append(u.idle[:0], u.idle[n:]...)
	u.mu.Unlock()
	for _, uc := range stale {
		uc.conn.Close()
	}
}
