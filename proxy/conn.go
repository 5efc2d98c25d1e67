package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// A client connection of Proxy.Serve: read a request, check it, pass it to
// the upstream, pass the answer back, again until the connection ends. The
// request's head (request line and fields) is read whole by the parser in
// request.go before anything of it is sent on, and the Host is checked
// before a byte of the body is read; the body is then streamed (it is not
// buffered first).

// Connection states, for a graceful shutdown.
const (
	stateIdle   int32 = iota // waiting for a request
	stateActive              // reading or serving a request
	stateTunnel              // a WebSocket tunnel
	stateClosed              // closed by the shutdown
)

type clientConn struct {
	srv      *server
	p        *Proxy
	raw      net.Conn      // as accepted
	conn     *deadlineConn // raw with the sliding write deadline, and the body's read deadline
	in       *wire.Reader
	out      []byte // the head being written, and small bodies with it
	head     requestHead
	resp     responseHead
	remote   string // "ip:port"
	clientIP string
	trusted  bool      // the peer is a trusted proxy
	tls      *tls.Conn // over raw, when the listener serves HTTPS
	state    atomic.Int32
	reqInfo  []byte // method and path of the request, for the upstream error log
	linger   bool   // drain what the client still sends before closing

	// The body readers of the exchange in progress, kept here so that
	// choosing one allocates nothing.
	reqLength, respLength   wire.LengthReader
	reqChunked, respChunked wire.ChunkedReader

	// The access log's record of the request in progress, and the copy
	// of what it says of the head (which reading the body may overwrite).
	acc    accessRecord
	accBuf []byte
}

func (s *server) newConn(raw net.Conn) *clientConn {
	c := &clientConn{srv: s, p: s.p, raw: raw, remote: raw.RemoteAddr().String()}
	var conn net.Conn = raw
	if s.o.TLSConfig != nil {
		c.tls = tls.Server(raw, s.o.TLSConfig)
		conn = c.tls
	}
	c.conn = &deadlineConn{Conn: conn, write: slidingDeadline{timeout: s.o.WriteTimeout}}
	c.in = wire.NewReader(c.conn, s.o.MaxHeaderBytes)
	c.clientIP = c.remote
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		c.clientIP = host
	}
	c.trusted = s.p.guard.TrustedPeer(c.remote)
	return c
}

// serve serves the connection's requests until it ends.
func (c *clientConn) serve() {
	defer c.close()
	if c.tls != nil && !c.handshake() {
		return
	}
	for c.next() {
	}
}

// handshake runs the TLS handshake within the header timeout. A client
// that speaks plain HTTP to the TLS port gets a plain 400 that says so, as
// from net/http.
func (c *clientConn) handshake() bool {
	_ = c.raw.SetDeadline(time.Now().Add(c.srv.o.ReadHeaderTimeout))
	err := c.tls.Handshake()
	_ = c.raw.SetDeadline(time.Time{})
	if err == nil {
		return true
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
		c.srv.clientError(errPlainHTTP, c.remote)
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"+
			"Client sent an HTTP request to an HTTPS server.\n")
		return false
	}
	c.srv.clientError(errHandshake, c.remote)
	return false
}

// looksLikeHTTP reports whether the first bytes of a connection are an
// HTTP method.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH"} {
		if string(b) == m[:len(b)] {
			return true
		}
	}
	return false
}

func (c *clientConn) close() {
	if c.linger {
		// Answered an error while the client may still be sending: end
		// our side and read what comes for a moment, so that its TCP
		// stack does not meet a reset before it read the answer.
		closeWrite(c.conn)
		_ = c.raw.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, c.raw, 256<<10)
	}
	c.raw.Close()
}

// next reads and serves one request and reports whether the connection
// goes on.
func (c *clientConn) next() bool {
	if c.in.Buffered() == 0 {
		c.in.Shrink()
		if len(c.out) > 64<<10 {
			c.out = nil
		}
		c.state.Store(stateIdle)
		if c.srv.closing.Load() {
			return false
		}
		_ = c.raw.SetReadDeadline(time.Now().Add(c.srv.o.IdleTimeout))
		if err := c.in.Fill(); err != nil {
			return false // idle timeout, the client's close, or the shutdown
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return false // the shutdown closed it
		}
	}
	if c.p.access != nil {
		c.acc = accessRecord{start: time.Now(), remote: c.clientIP, ttfb: -1}
	}
	n, cerr := c.readHead()
	if cerr != nil {
		if cerr == errIncomplete && c.in.Buffered() == 0 {
			return false // the client closed between requests
		}
		return c.fail(cerr)
	}
	return c.serveRequest(n)
}

// readHead reads the request head under the header timeout, which starts
// when the head is found incomplete in what arrived first.
func (c *clientConn) readHead() (int, *clientError) {
	timed := false
	for {
		n, ok := c.in.FindHead(true)
		if ok {
			return n, nil
		}
		if !timed {
			_ = c.raw.SetReadDeadline(time.Now().Add(c.srv.o.ReadHeaderTimeout))
			timed = true
		}
		if err := c.in.Fill(); err != nil {
			switch {
			case err == wire.ErrBufferFull:
				return 0, errHeadTooLarge
			case isTimeout(err):
				return 0, errHeadTimeout
			}
			return 0, errIncomplete
		}
	}
}

// serveRequest serves the request whose head is the next n buffered bytes.
func (c *clientConn) serveRequest(n int) bool {
	h := &c.head
	cerr := h.parse(c.in.Next(n))
	if cerr != nil {
		return c.fail(cerr)
	}
	p := c.p
	if p.access != nil {
		c.captureAccess(h)
	}
	host := unsafeString(h.checkedHost())
	path := unsafeString(h.checkedPath())
	req := hostguard.Request{Host: host, Path: path, RemoteAddr: c.remote, UserAgent: unsafeString(h.userAgent)}
	if c.trusted && h.forwarding {
		req.ForwardedHost, req.Forwarded = forwardedHosts(h)
	}
	v := p.guard.CheckRequest(&req)
	p.count(v)
	if p.access != nil && !v.Allowed() {
		c.acc.reason = v.Reason.Label()
	}
	if !v.Passes() {
		c.writeSimple(hostguard.RejectStatus, hostguard.RejectBody, false)
		c.linger = h.hasBody()
		return false
	}
	in := p.inboundFrom(v, c.clientIP, host, c.tls != nil, c.trusted)
	if c.trusted {
		in.priorOf(h)
	}
	fw, ok := p.decide(in)
	if !ok {
		// An exempt path let a Host through unchecked and the list names
		// no host to send in its place.
		return c.fail(errNoCanonical)
	}
	if p.up == nil {
		return c.echo(h, &fw)
	}
	return c.forward(h, &fw)
}

// forwardedHosts returns the X-Forwarded-Host and Forwarded values of a
// trusted proxy's request, for the Guard to check.
func forwardedHosts(h *requestHead) (xfh, forwarded []string) {
	for _, f := range h.fields {
		switch f.kind {
		case kindXFH:
			xfh = append(xfh, string(f.value))
		case kindForwarded:
			forwarded = append(forwarded, string(f.value))
		}
	}
	return xfh, forwarded
}

// priorOf takes a trusted proxy's X-Forwarded-For, -Host and -Proto from
// the request's fields.
func (in *inbound) priorOf(h *requestHead) {
	for _, f := range h.fields {
		switch f.kind {
		case kindXFF:
			in.priorXFF = joinValue(in.priorXFF, f.value)
		case kindXFH:
			in.priorXFH = joinValue(in.priorXFH, f.value)
		case kindXFP:
			if in.priorXFP == "" {
				in.priorXFP = string(f.value)
			}
		}
	}
}

func joinValue(prior string, v []byte) string {
	if prior == "" {
		return string(v)
	}
	return prior + ", " + string(v)
}

var errNoCanonical = badRequest("the path is exempt from the Host check, and no canonical host is set to send upstream in place of an unchecked one")

// fail answers a request the proxy refuses because of its form, counts and
// logs it, and ends the connection: after a malformed request nothing that
// follows on it can be trusted to start where the proxy thinks.
func (c *clientConn) fail(e *clientError) bool {
	c.srv.clientError(e, c.remote)
	c.writeSimple(e.status, e.body(), false)
	c.linger = true
	return false
}

// gone reports whether the client has closed its connection, looking
// without waiting. Bytes that it sent (a pipelined request) say it is
// there.
func (c *clientConn) gone() bool {
	data, eof, ok := peek(c.raw)
	return ok && !data && eof
}

// unsafeString views b as a string without copying. The string is valid
// only while b is; it is used for values read during one request and
// never kept.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// captureAccess copies what the access log says of the request head: the
// request line, the Host as received, the User-Agent and the Referer.
func (c *clientConn) captureAccess(h *requestHead) {
	b := append(c.accBuf[:0], h.method...)
	b = append(b, ' ')
	b = append(b, h.target...)
	b = append(b, " HTTP/1."...)
	b = strconv.AppendInt(b, int64(h.minor), 10)
	endReq := len(b)
	b = append(b, h.checkedHost()...)
	endHost := len(b)
	b = append(b, h.userAgent...)
	endUA := len(b)
	for _, f := range h.fields {
		if equalFold(f.name, "referer") {
			b = append(b, f.value...)
			break
		}
	}
	c.accBuf = b
	s := unsafeString(b)
	c.acc.request, c.acc.host, c.acc.userAgent, c.acc.referer = s[:endReq], s[endReq:endHost], s[endHost:endUA], s[endUA:]
}

// logAccess writes the access log's line of the request, answered with
// status and n bytes of body.
func (c *clientConn) logAccess(status int, n int64) {
	c.acc.status, c.acc.bytes = status, n
	c.p.access.write(&c.acc, time.Now())
}
