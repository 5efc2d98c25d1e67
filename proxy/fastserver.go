package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// The production server. net/http spends most of a proxied request's cost
// in its server (a Request, a header map and a context per request, a
// background read goroutine, a snapshot of the response header) and its
// Transport (per-connection goroutines); fasthttp reuses all of that per
// connection and reads and writes in the handler's goroutine. [Proxy.Serve]
// therefore serves with fasthttp's Server and forwards with its HostClient,
// while [Proxy.ServeHTTP] keeps the net/http form for embedding.

// Serve serves the proxy on l until ctx is done, then stops accepting
// connections, lets the requests in flight finish for up to o.Grace and
// returns nil, or ErrGraceExceeded if it had to cut some.
func (p *Proxy) Serve(ctx context.Context, l net.Listener, o ServerOptions) error {
	o.defaults()
	handler := func(ctx *fasthttp.RequestCtx) { p.serveFast(ctx, o.BodyTimeout) }
	srv := &fasthttp.Server{
		Handler: handler,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			code := fasthttp.StatusBadRequest
			var small *fasthttp.ErrSmallBuffer
			switch {
			case errors.As(err, &small):
				code = fasthttp.StatusRequestHeaderFieldsTooLarge
			case isTimeout(err):
				code = fasthttp.StatusRequestTimeout
			}
			ctx.Error(fasthttp.StatusMessage(code)+"\n", code)
			ctx.SetConnectionClose()
		},
		// The header must fit the read buffer: a larger one gets 431.
		ReadBufferSize: o.MaxHeaderBytes,
		// Bounds the request line and headers; a body, streamed to the
		// upstream as it arrives, has BodyTimeout between two reads.
		ReadTimeout:                  o.ReadHeaderTimeout,
		IdleTimeout:                  o.IdleTimeout,
		StreamRequestBody:            true,
		MaxRequestBodySize:           1 << 62,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		LazyRequestTime:              true, // ctx.Time is not used
		// fasthttp logs every malformed request; never their bytes,
		// and not more often than a scanner deserves.
		Logger:                newLimitedLogger(o.Logger),
		SecureErrorLogMessage: true,
	}
	return serveUntilDone(ctx, l, o, srv.Serve, srv.ShutdownWithContext)
}

// limitedLogger passes fasthttp's own log records (malformed requests,
// mostly) to slog at Warn: a burst of 10, then one every 6 seconds; the next
// record after a gap counts the ones left out.
type limitedLogger struct {
	log        *slog.Logger
	limit      *rate.Limiter
	suppressed atomic.Uint64
}

func newLimitedLogger(log *slog.Logger) *limitedLogger {
	return &limitedLogger{log: log, limit: rate.NewLimiter(rate.Every(6*time.Second), 10)}
}

// Printf implements fasthttp.Logger.
func (l *limitedLogger) Printf(format string, args ...any) {
	if !l.limit.Allow() {
		l.suppressed.Add(1)
		return
	}
	var attrs []slog.Attr
	if n := l.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "hostguard proxy: "+fmt.Sprintf(format, args...), attrs...)
}

// fastUpstream is the fasthttp side of the upstream.
type fastUpstream struct {
	client  *fasthttp.HostClient
	scheme  string
	prefix  string // the upstream URL's path, without a trailing slash
	addr    string
	tls     *tls.Config
	dial    time.Duration
	timeout time.Duration // between two reads from the upstream
}

// newFastUpstream builds the upstream of Serve from options with their
// defaults filled in.
func newFastUpstream(o Options) *fastUpstream {
	u := &fastUpstream{scheme: o.Upstream.Scheme, prefix: strings.TrimSuffix(o.Upstream.Path, "/"),
		addr: o.Upstream.Host, dial: o.DialTimeout, timeout: o.ResponseTimeout}
	if o.Upstream.Port() == "" {
		port := "80"
		if u.scheme == "https" {
			port = "443"
		}
		u.addr = net.JoinHostPort(o.Upstream.Hostname(), port)
	}
	if u.scheme == "https" {
		u.tls = upstreamTLS(o)
	}
	u.client = &fasthttp.HostClient{
		Addr:  u.addr,
		IsTLS: u.scheme == "https",
		// The TLS handshake happens in fasthttp on the conn we dial.
		TLSConfig: u.tls,
		Dial:      u.dialConn,
		// fasthttp's MaxConns bounds busy and idle connections
		// together and fails a request beyond it (502); as nginx does,
		// bound neither: long polls and streams each hold one.
		MaxConns:                 1 << 20,
		MaxIdleConnDuration:      90 * time.Second,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		StreamResponseBody:       true,
		// A pooled connection the upstream closed while idle fails
		// before it answers; a request without a body is sent again,
		// once. fasthttp has already retried a dead connection if the
		// request was idempotent; nothing else is repeated.
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts < 2 && !req.IsBodyStream() && !hasBody(&req.Header) && !isTimeout(err)
		},
	}
	return u
}

// dialConn connects to the upstream. The connection moves its own read
// deadline before every read, so the response timeout bounds the wait
// between two reads, like nginx's proxy_read_timeout: a stream that keeps
// moving is not cut, one that stalls is.
func (u *fastUpstream) dialConn(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, u.dial)
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, read: slidingDeadline{timeout: u.timeout}}, nil
}

// serveFast is the request handler of Serve.
func (p *Proxy) serveFast(ctx *fasthttp.RequestCtx, bodyTimeout time.Duration) {
	req := &ctx.Request
	remote := ctx.RemoteAddr().String()
	hreq := hostguard.Request{
		Host:       string(req.Host()),
		Path:       string(req.URI().PathOriginal()),
		RemoteAddr: remote,
		UserAgent:  string(req.Header.UserAgent()), // for the rejection log
	}
	if v := req.Header.PeekAll("X-Forwarded-Host"); len(v) > 0 {
		hreq.ForwardedHost = byteStrings(v)
	}
	if v := req.Header.PeekAll("Forwarded"); len(v) > 0 {
		hreq.Forwarded = byteStrings(v)
	}
	bad, reason, drop := p.guard.Inspect(&hreq)
	if reason != hostguard.ReasonNone {
		_ = bad // logged by Inspect
		if p.metrics != nil {
			p.metrics.rejected.WithLabelValues(reason.String()).Inc()
		}
		ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(hostguard.RejectStatus)
		ctx.SetBodyString(hostguard.RejectBody)
		return
	}
	if p.metrics != nil {
		p.metrics.accepted.Inc()
	}
	if drop {
		req.Header.Del("X-Forwarded-Host")
		req.Header.Del("Forwarded")
	}
	var body *slidingBody
	if hasBody(&req.Header) {
		// The headers are in; the body streams to the upstream for as
		// long as it moves (ServerOptions.BodyTimeout).
		body = &slidingBody{ReadCloser: io.NopCloser(req.BodyStream()),
			deadline: slidingDeadline{timeout: bodyTimeout}, set: ctx.Conn().SetReadDeadline}
		req.SetBodyStream(body, req.Header.ContentLength())
	}

	out := outbound{client: remote, tls: ctx.IsTLS(), host: hreq.Host}
	if p.guard.TrustedPeer(remote) {
		out.trusted = true
		out.priorXFF = joinValues(req.Header.PeekAll("X-Forwarded-For"))
		out.priorXFP = string(req.Header.Peek("X-Forwarded-Proto"))
		out.priorXFH = joinValues(hreq.ForwardedHost)
	}
	host, xff, xfh, xfp := p.decide(out)
	upgrade := isUpgrade(&req.Header)
	prepareOutbound(&req.Header, upgrade)
	// Set replaces the first of repeated lines only; Del removes all.
	for _, kv := range [...][2]string{{"X-Forwarded-For", xff}, {"X-Forwarded-Host", xfh}, {"X-Forwarded-Proto", xfp}} {
		req.Header.Del(kv[0])
		req.Header.Set(kv[0], kv[1])
	}
	if !out.trusted {
		req.Header.Del("Forwarded")
	}
	req.Header.SetHost(host)
	req.UseHostHeader = true

	if p.fast == nil {
		echoFast(ctx, host)
		return
	}
	if upgrade {
		p.tunnel(ctx, p.fast.prefix+string(req.URI().RequestURI()))
		return
	}
	if p.fast.prefix != "" {
		req.SetRequestURI(p.fast.prefix + string(req.URI().RequestURI()))
	}
	if uri := req.URI(); string(uri.Scheme()) != p.fast.scheme {
		uri.SetScheme(p.fast.scheme) // HostClient checks it against the upstream's
	}

	var start time.Time
	if p.metrics != nil {
		start = time.Now()
	}
	resp := &ctx.Response
	if err := p.fast.client.Do(req, resp); err != nil {
		resp.Reset()
		if body != nil && body.timedOut.Load() {
			ctx.Error(bodyTimeoutText, fasthttp.StatusRequestTimeout)
			ctx.SetConnectionClose()
			return
		}
		p.fastUpstreamError(ctx, err)
		return
	}
	if p.metrics != nil {
		p.metrics.upstreamLatency.Observe(time.Since(start).Seconds())
	}
	// The client's connection is the client's: the upstream closing its
	// own says nothing about it.
	resp.Header.ResetConnectionClose()
	stripHop(&resp.Header)
}

// hasBody reports whether a request carries a body: a Content-Length above
// zero, or chunked (-1). fasthttp reports -2 for a request with neither.
func hasBody(h *fasthttp.RequestHeader) bool {
	n := h.ContentLength()
	return n > 0 || n == -1
}

// byteStrings copies header values out of fasthttp's buffers.
func byteStrings(v [][]byte) []string {
	s := make([]string, len(v))
	for i, b := range v {
		s[i] = string(b)
	}
	return s
}

func joinValues[T string | []byte](v []T) string {
	if len(v) == 0 {
		return ""
	}
	var b strings.Builder
	for i, s := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// isUpgrade reports whether the request asks to switch protocols
// (WebSocket): an Upgrade header named by Connection.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return len(h.Peek("Upgrade")) > 0 && tokenIn(h.Peek("Connection"), "upgrade")
}

func tokenIn(list []byte, token string) bool {
	for f := range bytes.SplitSeq(list, []byte(",")) {
		if strings.EqualFold(string(bytes.TrimSpace(f)), token) {
			return true
		}
	}
	return false
}

// prepareOutbound removes what must not reach the upstream: hop-by-hop
// headers (kept for an upgrade, which needs Connection and Upgrade), the
// headers Connection names, and Expect, which the server has answered.
func prepareOutbound(h *fasthttp.RequestHeader, upgrade bool) {
	if !hasHop(h.All()) {
		return // the common case: one pass, nothing to delete
	}
	if !upgrade {
		deleteNamed(h.Peek("Connection"), h.DelBytes)
		h.Del("Connection")
		h.Del("Upgrade")
		h.ResetConnectionClose()
	}
	for _, k := range [...]string{"Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Expect"} {
		h.Del(k)
	}
}

// stripHop removes the response's hop-by-hop headers. fasthttp frames the
// body itself (Content-Length or chunked).
func stripHop(h *fasthttp.ResponseHeader) {
	if !hasHop(h.All()) {
		return
	}
	deleteNamed(h.Peek("Connection"), h.DelBytes)
	for _, k := range [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Te", "Trailer", "Upgrade"} {
		h.Del(k)
	}
}

// deleteNamed deletes the headers a Connection value names.
func deleteNamed(connection []byte, del func([]byte)) {
	for f := range bytes.SplitSeq(connection, []byte(",")) {
		if f = bytes.TrimSpace(f); len(f) > 0 {
			del(f)
		}
	}
}

// hasHop reports whether any header is hop-by-hop (or Expect).
func hasHop(all func(func(k, v []byte) bool)) bool {
	for k := range all {
		if isHop(k) {
			return true
		}
	}
	return false
}

func isHop(k []byte) bool {
	var name string
	switch len(k) {
	case 2:
		name = "te"
	case 6:
		name = "expect"
	case 7:
		if k[0]|0x20 == 't' {
			name = "trailer"
		} else {
			name = "upgrade"
		}
	case 10:
		if k[0]|0x20 == 'c' {
			name = "connection"
		} else {
			name = "keep-alive"
		}
	case 16:
		name = "proxy-connection"
	case 18:
		name = "proxy-authenticate"
	case 19:
		name = "proxy-authorization"
	default:
		return false
	}
	return strings.EqualFold(string(k), name)
}

// fastUpstreamError answers 502 (504 for a time-out) and logs why.
func (p *Proxy) fastUpstreamError(ctx *fasthttp.RequestCtx, err error) {
	code, body := p.upstreamFailure(err, false, string(ctx.Method()), string(ctx.Path()))
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(body)
}

// tunnel forwards an upgrade request (WebSocket) over a connection of its
// own and then copies bytes both ways until either side closes.
func (p *Proxy) tunnel(ctx *fasthttp.RequestCtx, requestURI string) {
	var d net.Dialer
	d.Timeout = p.fast.dial
	up, err := d.Dial("tcp", p.fast.addr)
	if err == nil && p.fast.tls != nil {
		tc := tls.Client(up, p.fast.tls)
		if err = tc.Handshake(); err != nil {
			up.Close()
		}
		up = tc
	}
	if err != nil {
		p.fastUpstreamError(ctx, err)
		return
	}
	req := &ctx.Request
	req.Header.SetRequestURI(requestURI)
	bw := bufio.NewWriter(up)
	err = req.Header.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		up.Close()
		p.fastUpstreamError(ctx, err)
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer up.Close()
		// The header read timeout must not cut the tunnel; writes keep
		// their sliding deadline.
		_ = c.SetReadDeadline(time.Time{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(up, c) // the client's frames
			closeWrite(up)
		}()
		_, _ = io.Copy(c, up) // the upstream's answer, then its frames
		closeWrite(c)
		wg.Wait()
	})
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// echoFast is [Echo] for Serve: it shows the request as an upstream would
// receive it.
func echoFast(ctx *fasthttp.RequestCtx, host string) {
	fwd := map[string][]string{}
	for k, v := range ctx.Request.Header.All() {
		if name := strings.ToLower(string(k)); isForwardedHeader(name) {
			fwd[name] = append(fwd[name], string(v))
		}
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(echoText(string(ctx.Method()), host, string(ctx.Request.URI().RequestURI()), fwd))
}
