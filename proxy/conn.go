package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hostguard/hostguard"
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
	in       *reader
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
	reqLength, respLength   lengthReader
	reqChunked, respChunked chunkedReader
}

func (s *server) newConn(raw net.Conn) *clientConn {
	c := &clientConn{srv: s, p: s.p, raw: raw, remote: raw.RemoteAddr().String()}
	var conn net.Conn = raw
	if s.o.TLSConfig != nil {
		c.tls = tls.Server(raw, s.o.TLSConfig)
		conn = c.tls
	}
	c.conn = &deadlineConn{Conn: conn, write: slidingDeadline{timeout: s.o.WriteTimeout}}
	c.in = newReader(c.conn, s.o.MaxHeaderBytes)
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
	if c.in.buffered() == 0 {
		c.in.shrink()
		if len(c.out) > 64<<10 {
			c.out = nil
		}
		c.state.Store(stateIdle)
		if c.srv.closing.Load() {
			return false
		}
		_ = c.raw.SetReadDeadline(time.Now().Add(c.srv.o.IdleTimeout))
		if err := c.in.fill(); err != nil {
			return false // idle timeout, the client's close, or the shutdown
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return false // the shutdown closed it
		}
	}
	n, cerr := c.readHead()
	if cerr != nil {
		if cerr == errIncomplete && c.in.buffered() == 0 {
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
		n, ok := c.in.findHead(true)
		if ok {
			return n, nil
		}
		if !timed {
			_ = c.raw.SetReadDeadline(time.Now().Add(c.srv.o.ReadHeaderTimeout))
			timed = true
		}
		if err := c.in.fill(); err != nil {
			switch {
			case err == errBufferFull:
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
	cerr := h.parse(c.in.buf[c.in.r : c.in.r+n])
	c.in.r += n
	if cerr != nil {
		return c.fail(cerr)
	}
	p := c.p
	host := unsafeString(h.checkedHost())
	path := unsafeString(h.checkedPath())
	req := hostguard.Request{Host: host, Path: path, RemoteAddr: c.remote, UserAgent: unsafeString(h.userAgent)}
	if c.trusted && h.forwarding {
		for _, f := range h.fields {
			switch f.kind {
			case kindXFH:
				req.ForwardedHost = append(req.ForwardedHost, string(f.value))
			case kindForwarded:
				req.Forwarded = append(req.Forwarded, string(f.value))
			}
		}
	}
	v := p.guard.CheckRequest(&req)
	p.count(v)
	if !v.Serve() {
		c.writeSimple(hostguard.RejectStatus, hostguard.RejectBody, false)
		c.linger = h.hasBody()
		return false
	}
	in := inbound{client: c.clientIP, tls: c.tls != nil, host: host, checked: true, reported: v.Rejected(), trusted: c.trusted}
	if v.Exempt {
		in.checked = p.guard.Allow(host)
	}
	if c.trusted {
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

func joinValue(prior string, v []byte) string {
	if prior == "" {
		return string(v)
	}
	return prior + ", " + string(v)
}

var errNoCanonical = badRequest("the path is exempt from the Host check, and no canonical host is set to send upstream in place of an unchecked one")

// outbound is a request on its way to the upstream: everything needed of
// the head once the body is read (which may overwrite the buffer the head
// is in).
type outbound struct {
	body               io.Reader // nil: no body, or one sent with the head in c.out
	isHead, idempotent bool
	upgrade, expect    bool
	chunked            bool // the body is chunked (framed anew for the upstream)
	clientKeep         bool // the client asked to go on after this request
	minor              int
}

// forward passes the request to the upstream and its answer back, and
// reports whether the connection goes on.
func (c *clientConn) forward(h *requestHead, fw *forwarding) bool {
	req := c.outbound(h, fw)
	uc, err := c.exchange(&req)
	if err != nil {
		return c.exchangeFailed(err, &req)
	}
	resp := &c.resp
	if resp.status == http.StatusSwitchingProtocols {
		if !req.upgrade || !equalFold(trimOWS(resp.upgrade), "websocket") {
			uc.conn.Close()
			return c.upstreamError(errUpstreamResponse("101 Switching Protocols to a protocol the client did not ask for"), false)
		}
		c.tunnel(uc, resp)
		return false
	}
	return c.respond(uc, &req)
}

// exchangeFailed answers the client after a failed exchange, as its error
// says whose fault it was, and reports whether the connection goes on.
func (c *clientConn) exchangeFailed(err error, req *outbound) bool {
	if ce, isClient := err.(*clientError); isClient {
		return c.fail(ce)
	}
	if errors.Is(err, errClientGone) {
		c.canceled()
		return false
	}
	// The client may go on if none of its body was read: nothing of it
	// is left unread on its connection.
	return c.upstreamError(err, req.body == nil && req.clientKeep)
}

// outbound writes the request head for the upstream into c.out, with the
// body when it came whole with the head, and returns the request.
func (c *clientConn) outbound(h *requestHead, fw *forwarding) outbound {
	req := outbound{
		isHead:  string(h.method) == http.MethodHead,
		upgrade: h.upgrade, expect: h.expect, chunked: h.chunked, clientKeep: !h.close, minor: h.minor,
	}
	// Safe to send twice (RFC 9110 §9.2.2), as nginx's proxy_next_upstream
	// and Go's Transport see it.
	req.idempotent = req.isHead || string(h.method) == http.MethodGet || string(h.method) == http.MethodOptions
	c.reqInfo = append(append(append(c.reqInfo[:0], h.method...), ' '), h.path...)
	c.out = c.p.appendRequestHead(c.out[:0], h, fw)
	switch {
	case h.chunked:
		c.reqChunked = chunkedReader{in: c.in, forbidden: forbiddenInTrailer}
		req.body = &c.reqChunked
	case h.contentLength > 0 && int64(c.in.buffered()) >= h.contentLength && h.contentLength <= copyBufSize:
		// The body came with the head: send it with it.
		n := int(h.contentLength)
		c.out = append(c.out, c.in.buf[c.in.r:c.in.r+n]...)
		c.in.r += n
	case h.contentLength > 0:
		c.reqLength = lengthReader{in: c.in, left: h.contentLength}
		req.body = &c.reqLength
	}
	return req
}

// exchange sends the request to the upstream and reads its response head
// into c.resp. It returns the upstream connection, or the error that ended
// the exchange: a *clientError for the client's mistakes in the body,
// errClientGone when the client left, else the upstream's failure.
func (c *clientConn) exchange(req *outbound) (*upstreamConn, error) {
	u := c.p.up
	var start time.Time
	for attempt := 0; ; attempt++ {
		var uc *upstreamConn
		var reused bool
		var err error
		if req.upgrade {
			uc, err = u.connect(context.Background())
		} else {
			uc, reused, err = u.get(context.Background())
		}
		if err != nil {
			return nil, err
		}
		uc.begin(c)
		if c.p.metrics != nil {
			start = time.Now()
		}
		err = c.send(uc, req)
		if err == nil {
			err = c.readResponse(uc)
		}
		if err == nil {
			if c.p.metrics != nil {
				c.p.metrics.upstreamLatency.Observe(time.Since(start).Seconds())
			}
			return uc, nil
		}
		uc.conn.Close()
		// A pooled connection the upstream had closed: send the request
		// again on a new one, if it is idempotent and had no body that was
		// read from the client (those bytes are gone).
		if reused && req.idempotent && req.body == nil && attempt == 0 && isDead(err) {
			continue
		}
		return nil, err
	}
}

// send writes the request head and body to uc. Its error is a
// *clientError for the client's mistakes in the body, errClientGone when
// the client left, or the upstream's write error. When the upstream stops
// reading the body it may have answered already: send then returns nil
// and marks uc.requestCut, so that neither connection goes on after the
// answer (the upstream's holds half a request, the client's the rest of
// the body, unread).
func (c *clientConn) send(uc *upstreamConn, req *outbound) error {
	if _, err := uc.Write(c.out); err != nil || req.body == nil {
		return err
	}
	err := c.sendBody(uc, req)
	if _, isClient := err.(*clientError); err == nil || isClient || errors.Is(err, errClientGone) {
		return err
	}
	uc.requestCut = true
	return nil
}

// sendBody streams the request body to the upstream: 100 Continue first if
// the client waits for it, then the body with the body timeout between two
// reads. The error is a *clientError for the client's mistakes, and
// errClientGone when it left.
func (c *clientConn) sendBody(uc *upstreamConn, req *outbound) error {
	if req.expect && c.in.buffered() == 0 {
		if _, err := io.WriteString(c.conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return errClientGone
		}
	}
	c.conn.read = slidingDeadline{timeout: c.srv.o.BodyTimeout}
	defer func() { c.conn.read = slidingDeadline{} }()
	buf := c.p.bufs.Get()
	defer c.p.bufs.Put(buf)
	_, readErr, writeErr := copyBody(uc, req.body, buf, req.chunked)
	if readErr != nil {
		if ce, ok := asClientError(readErr); ok {
			return ce
		}
		return errClientGone
	}
	return writeErr
}

// maxInformational bounds the informational (1xx) responses the proxy
// skips before the final one: an upstream that sends more is broken.
const maxInformational = 16

// readResponse reads the upstream's response head into c.resp, skipping
// informational responses other than 101.
func (c *clientConn) readResponse(uc *upstreamConn) error {
	for i := 0; ; i++ {
		if i > maxInformational {
			return errUpstreamResponse("more than 16 informational (1xx) responses")
		}
		n, err := uc.in.readResponseHead()
		if err != nil {
			if err == io.EOF {
				err = errUpstreamClosed
			}
			if err == errBufferFull {
				err = errUpstreamResponse("header larger than 64 KiB")
			}
			return err
		}
		err = c.resp.parse(uc.in.buf[uc.in.r : uc.in.r+n])
		uc.in.r += n
		if err != nil {
			return err
		}
		if c.resp.status >= 200 || c.resp.status == http.StatusSwitchingProtocols {
			return nil
		}
	}
}

// Framing of the body the proxy sends the client.
const (
	frameNone   = iota // no body (HEAD, 1xx, 204, 304)
	frameLength        // Content-Length
	frameChunked
	frameClose // the body ends with the connection (an HTTP/1.0 client)
)

// respond passes the response on to the client and reports whether the
// client's connection goes on. Afterwards uc goes back to the pool only if
// it can carry nothing of this exchange into the next (see reusable).
func (c *clientConn) respond(uc *upstreamConn, req *outbound) bool {
	p := c.p
	resp := &c.resp
	keep := req.clientKeep && !uc.requestCut && !c.srv.closing.Load()
	body, frame, untilClose := c.responseBody(uc, resp, req.isHead, req.minor)
	reusable := !req.upgrade && !uc.requestCut && !resp.close && !untilClose && !resp.bodyless(req.isHead)
	if frame == frameClose {
		keep = false
	}
	c.out = appendResponseHead(c.out[:0], resp, frame, keep, req.minor)
	if frame == frameLength && int64(uc.in.buffered()) >= resp.contentLength && resp.contentLength <= copyBufSize {
		// A small body that came with the head: one write.
		n := int(resp.contentLength)
		c.out = append(c.out, uc.in.buf[uc.in.r:uc.in.r+n]...)
		uc.in.r += n
		body = nil
	}
	if _, err := c.conn.Write(c.out); err != nil {
		uc.conn.Close()
		c.canceled()
		return false
	}
	if body != nil {
		buf := p.bufs.Get()
		_, readErr, writeErr := copyBody(c.conn, body, buf, frame == frameChunked)
		p.bufs.Put(buf)
		switch {
		case writeErr != nil:
			uc.conn.Close()
			c.canceled()
			return false
		case readErr != nil && frame != frameClose:
			// The upstream broke off in the middle of the body; the
			// client can only learn it from the connection's end.
			uc.conn.Close()
			c.p.upstreamFailure(readErr, errors.Is(readErr, errClientGone), string(c.reqInfo))
			return false
		case readErr != nil:
			reusable = false
		}
	}
	// A byte already read past the framed answer is not the next answer's:
	// the upstream framed this one wrongly, and the connection ends.
	if reusable && uc.in.buffered() == 0 {
		p.up.put(uc)
	} else {
		uc.conn.Close()
	}
	return keep
}

// responseBody returns the reader of the response body and how the proxy
// frames it for the client; untilClose says that the body ends with the
// upstream's connection, which then cannot be reused.
func (c *clientConn) responseBody(uc *upstreamConn, resp *responseHead, isHead bool, minor int) (body io.Reader, frame int, untilClose bool) {
	switch {
	case resp.bodyless(isHead):
		return nil, frameNone, false
	case resp.chunked:
		c.respChunked = chunkedReader{in: uc.in}
		body = &c.respChunked
	case resp.contentLength == 0:
		return nil, frameLength, false
	case resp.contentLength > 0:
		c.respLength = lengthReader{in: uc.in, left: resp.contentLength}
		return &c.respLength, frameLength, false
	default:
		body, untilClose = uc.in, true
	}
	// A body of unknown length: chunked for HTTP/1.1 clients; an HTTP/1.0
	// client reads it until the connection closes.
	if minor == 0 {
		return body, frameClose, untilClose
	}
	return body, frameChunked, untilClose
}

// tunnel answers the client's WebSocket handshake with the upstream's 101
// and copies bytes both ways until the tunnel ends.
func (c *clientConn) tunnel(uc *upstreamConn, resp *responseHead) {
	c.out = appendResponseHead(c.out[:0], resp, frameNone, true, 1)
	if _, err := c.conn.Write(c.out); err != nil {
		uc.conn.Close()
		return
	}
	c.state.Store(stateTunnel)
	_ = c.raw.SetReadDeadline(time.Time{})
	_ = uc.conn.SetReadDeadline(time.Time{})
	t := c.p.openTunnel(c.raw, uc.conn)
	clientEarly := c.in.buf[c.in.r:c.in.w]
	upEarly := uc.in.buf[uc.in.r:uc.in.w]
	t.pipe(t.track(c.conn), uc.conn, clientEarly, upEarly)
}

// canceled counts an exchange that ended because the client left.
func (c *clientConn) canceled() {
	if c.p.metrics != nil {
		c.p.metrics.upstreamErrors.WithLabelValues("canceled").Inc()
	}
}

// upstreamError answers 502, or 504 for a time-out, and logs why; keep
// says whether the client's connection may go on.
func (c *clientConn) upstreamError(err error, keep bool) bool {
	code, text := c.p.upstreamFailure(err, false, string(c.reqInfo))
	keep = keep && !c.srv.closing.Load()
	c.writeSimple(code, text, keep)
	return keep
}

// fail answers a request the proxy refuses because of its form, counts and
// logs it, and ends the connection: after a malformed request nothing that
// follows on it can be trusted to start where the proxy thinks.
func (c *clientConn) fail(e *clientError) bool {
	c.srv.clientError(e, c.remote)
	c.writeSimple(e.status, strconv.Itoa(e.status)+" "+http.StatusText(e.status)+": "+e.text+"\n", false)
	c.linger = true
	return false
}

// writeSimple writes a short plain-text response of the proxy's own.
func (c *clientConn) writeSimple(code int, text string, keep bool) {
	b := append(c.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	if !keep {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, text...)
	c.out = b
	_, _ = c.conn.Write(b)
}

// echo answers with what an upstream would have received: the built-in
// backend of a proxy without one.
func (c *clientConn) echo(h *requestHead, fw *forwarding) bool {
	if h.hasBody() {
		// The echo does not read bodies; end the connection instead of
		// reading one.
		h.close = true
		c.linger = true
	}
	fwd := map[string][]string{
		"x-forwarded-for": {fw.xff}, "x-forwarded-host": {fw.xfh}, "x-forwarded-proto": {fw.xfp},
	}
	if fw.keepClientFields {
		for _, f := range h.fields {
			if f.kind == kindForwarded || f.kind == kindForwarding {
				k := string(toLower(f.name))
				fwd[k] = append(fwd[k], string(f.value))
			}
		}
	}
	target := string(h.path)
	if h.slash {
		target = "/" + target
	}
	text := echoText(string(h.method), fw.host, target, fwd)
	b := append(c.out[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	if h.close {
		b = append(b, "\r\nConnection: close"...)
	} else if h.minor == 0 {
		b = append(b, "\r\nConnection: keep-alive"...)
	}
	b = append(b, "\r\n\r\n"...)
	if string(h.method) != http.MethodHead {
		b = append(b, text...)
	}
	c.out = b
	_, err := c.conn.Write(b)
	return err == nil && !h.close && !c.srv.closing.Load()
}

func toLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return out
}

// gone reports whether the client has closed its connection, looking
// without waiting. Bytes that it sent (a pipelined request) say it is
// there.
func (c *clientConn) gone() bool {
	data, eof, ok := peek(c.raw)
	return ok && !data && eof
}

// appendRequestHead appends the head the upstream receives: the request
// line in origin form under the upstream's path, the client's fields but
// the hop-by-hop, framing and forwarding ones, then Host, the forwarding
// fields and the framing the proxy decided.
func (p *Proxy) appendRequestHead(b []byte, h *requestHead, fw *forwarding) []byte {
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, p.up.prefix...)
	if h.slash {
		b = append(b, '/')
	}
	b = append(b, h.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, fw.host...)
	b = append(b, "\r\n"...)
	for i := range h.fields {
		f := &h.fields[i]
		switch f.kind {
		case kindOther, kindUserAgent:
		case kindUnderscore:
			if !p.keepUnderscore {
				continue
			}
		case kindForwarded, kindForwarding:
			if !fw.keepClientFields {
				continue
			}
		default:
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = appendField(b, "X-Forwarded-For", fw.xff)
	if fw.xfh != "" {
		b = appendField(b, "X-Forwarded-Host", fw.xfh)
	}
	b = appendField(b, "X-Forwarded-Proto", fw.xfp)
	switch {
	case h.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case h.contentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, h.contentLength, 10)
		b = append(b, "\r\n"...)
	}
	if h.upgrade {
		b = append(b, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	}
	return append(b, "\r\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendResponseHead appends the head the client receives: the upstream's
// status and fields but the hop-by-hop and framing ones, then the framing
// and connection fields of this hop.
func appendResponseHead(b []byte, resp *responseHead, frame int, keep bool, minor int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.status), 10)
	b = append(b, ' ')
	if len(resp.reason) > 0 {
		b = append(b, resp.reason...)
	} else {
		b = append(b, http.StatusText(resp.status)...)
	}
	b = append(b, "\r\n"...)
	switching := resp.status == http.StatusSwitchingProtocols
	for i := range resp.fields {
		f := &resp.fields[i]
		switch f.kind {
		case kindConnection, kindHop, kindTransferEncoding:
			continue
		case kindUpgrade:
			if !switching {
				continue
			}
		case kindContentLength:
			// Kept where the proxy sends no body of its framing: HEAD
			// and 304 describe the body they would have had.
			if frame != frameNone || resp.status < 200 || resp.status == 204 {
				continue
			}
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	switch frame {
	case frameLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, resp.contentLength, 10)
		b = append(b, "\r\n"...)
	case frameChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case switching:
		b = append(b, "Connection: Upgrade\r\n"...)
	case !keep:
		b = append(b, "Connection: close\r\n"...)
	case minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
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

// clientError counts and logs a request refused for its form.
func (s *server) clientError(e *clientError, remote string) {
	if s.p.metrics != nil {
		s.p.metrics.clientErrors.WithLabelValues(e.kind).Inc()
	}
	s.log.Log(slog.LevelWarn, "hostguard proxy: bad request", slog.Int("status", e.status),
		slog.String("kind", e.kind), slog.String("error", e.text), slog.String("remote", remote))
}
