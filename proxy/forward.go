package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// The forwarding steps of Proxy.Serve, for one accepted request: the
// outbound request, the exchange with the upstream (with one retry on a
// pooled connection the upstream had closed), the response passed back, a
// WebSocket tunnel, and the answers when the upstream fails.

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
	keep := c.respond(uc, &req)
	if c.p.access != nil {
		c.logAccess(c.resp.status, c.acc.bytes)
	}
	return keep
}

// exchangeFailed answers the client after a failed exchange, as its error
// says whose fault it was, and reports whether the connection goes on.
func (c *clientConn) exchangeFailed(err error, req *outbound) bool {
	if ce, isClient := err.(*clientError); isClient {
		return c.fail(ce)
	}
	if errors.Is(err, errClientGone) {
		c.canceled()
		if c.p.access != nil {
			c.logAccess(499, 0) // nginx's status for a client that left
		}
		return false
	}
	// The client may go on if none of its body was read: nothing of it
	// is left unread on its connection.
	return c.upstreamError(err, req.body == nil && req.clientKeep)
}

// timed records the upstream's time to its response head d: in the
// histogram and for the access log.
func (c *clientConn) timed(d time.Duration) {
	if c.p.metrics != nil {
		c.p.metrics.upstreamLatency.Observe(d.Seconds())
	}
	c.acc.ttfb = d
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
		c.reqChunked.Reset(c.in, requestTrailerField)
		req.body = &c.reqChunked
	case h.contentLength > 0 && int64(c.in.Buffered()) >= h.contentLength && h.contentLength <= wire.CopyBufSize:
		// The body came with the head: send it with it.
		n := int(h.contentLength)
		c.out = append(c.out, c.in.Next(n)...)
	case h.contentLength > 0:
		c.reqLength.Reset(c.in, h.contentLength)
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
		timed := c.p.metrics != nil || c.p.access != nil
		if timed {
			start = time.Now()
		}
		err = c.send(uc, req)
		if err == nil {
			err = c.readResponse(uc)
		}
		if err == nil {
			if timed {
				c.timed(time.Since(start))
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
	if req.expect && c.in.Buffered() == 0 {
		if _, err := io.WriteString(c.conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return errClientGone
		}
	}
	c.conn.read = slidingDeadline{timeout: c.srv.o.BodyTimeout}
	defer func() { c.conn.read = slidingDeadline{} }()
	buf := c.p.bufs.Get()
	defer c.p.bufs.Put(buf)
	_, readErr, writeErr := wire.CopyBody(uc, req.body, buf, req.chunked)
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
		n, err := readResponseHead(uc.in)
		if err != nil {
			if err == io.EOF {
				err = errUpstreamClosed
			}
			if err == wire.ErrBufferFull {
				err = errUpstreamResponse("header larger than 64 KiB")
			}
			return err
		}
		err = c.resp.parse(uc.in.Next(n))
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
	body, frame, untilClose := c.responseBody(uc, resp, req.isHead, req.minor)
	keep, reusable := c.outcome(uc, req, frame, untilClose)
	c.out = appendResponseHead(c.out[:0], resp, frame, keep, req.minor)
	if frame == frameLength && int64(uc.in.Buffered()) >= resp.contentLength && resp.contentLength <= wire.CopyBufSize {
		// A small body that came with the head: one write.
		n := int(resp.contentLength)
		c.out = append(c.out, uc.in.Next(n)...)
		c.acc.bytes = int64(n)
		body = nil
	}
	if _, err := c.conn.Write(c.out); err != nil {
		uc.conn.Close()
		c.canceled()
		return false
	}
	if body != nil {
		whole, ok := c.copyResponseBody(uc, body, frame)
		if !ok {
			return false
		}
		reusable = reusable && whole
	}
	// A byte already read past the framed answer is not the next answer's:
	// the upstream framed this one wrongly, and the connection ends.
	if reusable && uc.in.Buffered() == 0 {
		p.up.put(uc)
	} else {
		uc.conn.Close()
	}
	return keep
}

// outcome says, before the response body is copied, whether the client's
// connection may go on (keep) and whether uc may carry another request
// (reusable): not after an upgrade refused, a request cut short, the
// upstream's close, a body that ends with the connection, or an answer
// that may not have a body (see responseHead.bodyless).
func (c *clientConn) outcome(uc *upstreamConn, req *outbound, frame int, untilClose bool) (keep, reusable bool) {
	keep = req.clientKeep && !uc.requestCut && !c.srv.closing.Load() && frame != frameClose
	reusable = !req.upgrade && !uc.requestCut && !c.resp.close && !untilClose && !c.resp.bodyless(req.isHead)
	return keep, reusable
}

// copyResponseBody copies the response body to the client. ok is false
// when the exchange broke off (uc is then closed, and the client's
// connection must end); whole is false when the body ended with the
// upstream's connection, which then cannot be reused.
func (c *clientConn) copyResponseBody(uc *upstreamConn, body io.Reader, frame int) (whole, ok bool) {
	buf := c.p.bufs.Get()
	var readErr, writeErr error
	c.acc.bytes, readErr, writeErr = wire.CopyBody(c.conn, body, buf, frame == frameChunked)
	c.p.bufs.Put(buf)
	switch {
	case writeErr != nil:
		uc.conn.Close()
		c.canceled()
		return false, false
	case readErr != nil && frame != frameClose:
		// The upstream broke off in the middle of the body; the client
		// can only learn it from the connection's end.
		uc.conn.Close()
		c.p.upstreamFailure(readErr, errors.Is(readErr, errClientGone), string(c.reqInfo))
		return false, false
	}
	return readErr == nil, true
}

// responseBody returns the reader of the response body and how the proxy
// frames it for the client; untilClose says that the body ends with the
// upstream's connection, which then cannot be reused.
func (c *clientConn) responseBody(uc *upstreamConn, resp *responseHead, isHead bool, minor int) (body io.Reader, frame int, untilClose bool) {
	switch {
	case resp.bodyless(isHead):
		return nil, frameNone, false
	case resp.chunked:
		c.respChunked.Reset(uc.in, responseTrailerField)
		body = &c.respChunked
	case resp.contentLength == 0:
		return nil, frameLength, false
	case resp.contentLength > 0:
		c.respLength.Reset(uc.in, resp.contentLength)
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
	if c.p.access != nil {
		c.logAccess(http.StatusSwitchingProtocols, 0)
	}
	c.state.Store(stateTunnel)
	_ = c.raw.SetReadDeadline(time.Time{})
	_ = uc.conn.SetReadDeadline(time.Time{})
	t := c.p.openTunnel(c.raw, uc.conn)
	clientEarly := c.in.Peek(c.in.Buffered())
	upEarly := uc.in.Peek(uc.in.Buffered())
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
