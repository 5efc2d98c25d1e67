package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// ServeHandler serves h, any http.Handler, on l with net/http's server
// until ctx is done. Then it stops accepting connections, lets the requests
// in flight finish for up to Grace, and returns nil, or ErrGraceExceeded if
// it had to cut some. When h is a *Proxy, its WebSocket tunnels get the
// rest of the grace period and are then closed.
func ServeHandler(ctx context.Context, l net.Listener, h http.Handler, o ServerOptions) error {
	o.defaults()
	srv := &http.Server{
		Handler:           bodyDeadlines(h, o.BodyTimeout),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	p, _ := h.(*Proxy)
	serve := srv.Serve
	if o.TLSConfig != nil {
		serve = func(l net.Listener) error { return srv.Serve(tls.NewListener(l, o.TLSConfig)) }
	}
	return serveUntilDone(ctx, l, o, serve, func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			_ = srv.Close()
		}
		if p != nil {
			// Hijacked connections are not the server's to wait for.
			for p.openTunnels() > 0 && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			p.endTunnels(o.Logger)
		}
		return err
	})
}

// serveUntilDone runs serve on l, with per-write deadlines, until ctx is
// done; then it calls shutdown with the grace period as its deadline and
// waits for serve to return. A shutdown error means requests were cut.
func serveUntilDone(ctx context.Context, l net.Listener, o ServerOptions,
	serve func(net.Listener) error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve(writeDeadlineListener{l, o.WriteTimeout}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	err := shutdown(sctx)
	<-errc // the server's own "closed" error
	if err != nil {
		return fmt.Errorf("%w (%s): %v", ErrGraceExceeded, o.Grace, err)
	}
	return nil
}

// bodyDeadlines gives every read of a request body a sliding deadline and
// watches it for the client's mistakes (see slidingBody).
func bodyDeadlines(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			b := &slidingBody{ReadCloser: r.Body, deadline: slidingDeadline{timeout: timeout}, set: rc.SetReadDeadline, req: r}
			// The body may be wrapped on its way (ReverseProxy does);
			// the context says what went wrong with it.
			r = r.WithContext(context.WithValue(r.Context(), slidingBodyKey{}, b))
			r.Body = b
		}
		h.ServeHTTP(w, r)
	})
}

type slidingBodyKey struct{}

// slidingBody reads a request body with a sliding read deadline on the
// client's connection, and remembers a failure that was the client's: the
// body stopped arriving, its chunked framing was broken, or its trailer
// held a field that only a header may carry (Host first of all). Such a
// body ends in an error, never in EOF, so the upstream never receives it
// whole.
type slidingBody struct {
	io.ReadCloser
	deadline slidingDeadline
	set      func(time.Time) error
	req      *http.Request // the server's request, whose Trailer the body fills
	failed   atomic.Pointer[clientError]
}

func (b *slidingBody) Read(p []byte) (int, error) {
	if at, move := b.deadline.next(); move {
		if err := b.set(at); err != nil {
			return 0, err
		}
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case err == io.EOF:
		for k := range b.req.Trailer {
			if forbiddenInTrailer(classify([]byte(k))) {
				b.failed.Store(errTrailerField)
				return n, errTrailerField
			}
		}
	case isTimeout(err):
		b.failed.Store(errBodyTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		b.failed.Store(errIncomplete) // answered, should the client still read
	case errors.Is(err, net.ErrClosed), isReset(err):
		// The client left; nobody to answer.
	default:
		b.failed.Store(errBadBody)
	}
	return n, err
}

var errBadBody = badRequest("malformed request body (chunked framing)")

// ServeHTTP checks the request and forwards it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// checkForm refuses, before the Guard, what Serve's parser refuses of a
// request that net/http's server has accepted: versions other than
// HTTP/1.0 and 1.1 (505), CONNECT (400), TRACE (405), methods that are not
// upper-case letters, "*" and targets that are neither a path nor an
// http(s) URL. For an absolute-form target it gives the Guard the
// authority as the client wrote it (net/http drops userinfo from it).
func (p *Proxy) checkForm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cerr *clientError
		switch {
		case r.ProtoMajor != 1 || r.ProtoMinor > 1:
			cerr = errVersionUnsupported
		case r.Method == http.MethodConnect:
			cerr = errConnect
		case r.Method == http.MethodTrace:
			cerr = errTrace
		default:
			h := requestHead{}
			cerr = h.parseRequestLine([]byte(r.Method + " " + r.RequestURI + " HTTP/1.1"))
			if cerr == nil && h.absolute {
				r.Host = string(h.authority)
			}
		}
		if cerr != nil {
			p.refuse(w, cerr)
			return
		}
		if isWebSocket(r) {
			w = &tunnelWriter{ResponseWriter: w, p: p}
		}
		next.ServeHTTP(w, r)
	})
}

// isWebSocket reports whether r asks to switch to WebSocket, the only
// upgrade the proxy lets through.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ProtoAtLeast(1, 1) &&
		strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") &&
		headerHasToken(r.Header["Connection"], "upgrade")
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// tunnelWriter registers the connection that ReverseProxy hijacks for a
// WebSocket as a tunnel of the Proxy: idle timeout, metrics, shutdown.
type tunnelWriter struct {
	http.ResponseWriter
	p *Proxy
}

func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return w.p.openTunnel(c).track(c), brw, nil
}

func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkHost is the Guard's check for the net/http form, with the same
// counting as Serve's: it answers a rejection, passes the rest (and, in
// report-only mode, the rejected ones too) to next.
func (p *Proxy) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := p.guard.CheckRequest(&hostguard.Request{
			Host: r.Host, Path: r.URL.Path, RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent(),
			ForwardedHost: endToEnd(r.Header, "X-Forwarded-Host"), Forwarded: endToEnd(r.Header, "Forwarded"),
		})
		if v.DropForwarded {
			delete(r.Header, "X-Forwarded-Host")
			delete(r.Header, "Forwarded")
		}
		p.count(v)
		if !v.Allowed() && p.access != nil {
			if rec := accessOf(r); rec != nil {
				rec.reason = v.Reason.Label()
			}
		}
		if !v.Passes() {
			hostguard.Reject(w, r)
			return
		}
		if !v.Allowed() || v.Exempt {
			r = r.WithContext(context.WithValue(r.Context(), verdictKey{}, v))
		}
		next.ServeHTTP(w, r)
	})
}

// verdictKey holds the Guard's verdict on a request it passed although
// the Host was not checked (an exempt path) or is rejected (report-only).
type verdictKey struct{}

// prepare runs after the Guard accepted the request. For the echo backend it
// applies to the inbound request what rewrite applies to the outbound one,
// so the echo shows what an upstream would see.
func (p *Proxy) prepare(next http.Handler) http.Handler {
	if p.rp != nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.Header.Del("X-Forwarded-For")
		out.Header.Del("X-Forwarded-Host")
		out.Header.Del("X-Forwarded-Proto")
		if !p.rewrite(&httputil.ProxyRequest{In: r, Out: out}) {
			http.Error(w, errNoCanonical.text, errNoCanonical.status)
			return
		}
		next.ServeHTTP(w, out)
	})
}

// rewrite sets the outbound request's URL, Host and forwarded headers for
// ReverseProxy, which has removed X-Forwarded-For, -Host and -Proto and the
// hop-by-hop headers from Out (but for an upgrade's Connection and
// Upgrade). It reports false when no Host can be sent (see decide);
// ReverseProxy then fails the request on the empty URL.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) bool {
	in, out := pr.In, pr.Out
	if p.upstream != nil {
		pr.SetURL(p.upstream)
	}
	fw, ok := p.decide(p.inboundOf(in))
	if !ok {
		out.URL = &url.URL{}
		return false
	}
	out.Host = fw.host
	for k := range out.Header {
		switch kind := classify([]byte(k)); {
		case kind == kindConnection || kind == kindUpgrade:
			// ReverseProxy kept them for an upgrade; decided below.
		case !p.passesUpstream(kind, &fw):
			delete(out.Header, k)
		}
	}
	if fw.keepClientFields && len(in.Header["Forwarded"]) > 0 {
		// ReverseProxy removed it; a trusted proxy's goes on.
		out.Header["Forwarded"] = in.Header["Forwarded"]
	}
	out.Header.Set("X-Forwarded-For", fw.xff)
	if fw.xfh != "" {
		out.Header.Set("X-Forwarded-Host", fw.xfh)
	}
	out.Header.Set("X-Forwarded-Proto", fw.xfp)
	if !isWebSocket(in) {
		// An upgrade to anything else (h2c: a tunnel of unchecked HTTP/2
		// requests) goes on as a plain request; a 101 to it is a 502.
		out.Header.Del("Upgrade")
		out.Header.Del("Connection")
	}
	out.Trailer = nil // the proxy passes no request trailers, as Serve
	if in.Method == http.MethodHead {
		// Serve never reuses a connection after a HEAD answer, whose body
		// (some servers send one) nothing frames; net/http's Transport
		// does so only when the request says Connection: close.
		out.Close = true
	}
	// net/http's server answers 100-continue itself when the body is
	// first read; the upstream gets the body without waiting.
	out.Header.Del("Expect")
	return true
}

// checkResponse refuses, for the net/http form, what Serve's response
// parser refuses of an answer that net/http's Transport has accepted: a
// status below 100 (ReverseProxy would panic on it) and a field name that
// is not a token ("Content-Length : 5", which the Transport keeps as a
// field of another name and so reads the body until the upstream closes).
// The client gets 502.
func checkResponse(r *http.Response) error {
	if r.StatusCode < 100 || r.StatusCode > 999 {
		return errUpstreamResponse("status code " + strconv.Itoa(r.StatusCode))
	}
	for name := range r.Header {
		for i := range len(name) {
			if !wire.IsTchar(name[i]) {
				return errUpstreamResponse(fmt.Sprintf("field name %q is not a token", name))
			}
		}
	}
	return nil
}

// inboundOf is what decide needs of a net/http request.
func (p *Proxy) inboundOf(r *http.Request) inbound {
	v, _ := r.Context().Value(verdictKey{}).(hostguard.Verdict)
	client := r.RemoteAddr
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		client = ip
	}
	in := p.inboundFrom(v, client, r.Host, r.TLS != nil, p.guard.TrustedPeer(r.RemoteAddr))
	if in.trusted {
		in.priorXFF = strings.Join(endToEnd(r.Header, "X-Forwarded-For"), ", ")
		if v := endToEnd(r.Header, "X-Forwarded-Proto"); len(v) > 0 {
			in.priorXFP = v[0]
		}
		in.priorXFH = strings.Join(endToEnd(r.Header, "X-Forwarded-Host"), ", ")
	}
	return in
}

// endToEnd returns the values of the canonical field name, unless the
// Connection field names it: a hop-by-hop field is not the client's
// forwarding chain (Serve drops it as the request is parsed).
func endToEnd(h http.Header, name string) []string {
	if v := h[name]; len(v) > 0 && !headerHasToken(h["Connection"], name) {
		return v
	}
	return nil
}

// refuse answers a request refused for its form, as Serve's fail does:
// the same status, body and headers, the connection closed; counted.
func (p *Proxy) refuse(w http.ResponseWriter, cerr *clientError) {
	if p.metrics != nil {
		p.metrics.clientErrors.WithLabelValues(cerr.kind).Inc()
	}
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(cerr.status)
	_, _ = io.WriteString(w, cerr.body())
}

// upstreamError answers 502 (504 for a time-out) and logs why; the
// client's own error (408, 400) when it was the request body that failed.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := r.Context().Value(slidingBodyKey{}).(*slidingBody); ok {
		if cerr := b.failed.Load(); cerr != nil {
			p.refuse(w, cerr)
			return
		}
	}
	code, body := p.upstreamFailure(err, r.Context().Err() != nil, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// newTransport builds the net/http form's transport from options with their
// defaults filled in.
func newTransport(o Options) http.RoundTripper {
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 nil, // never send the app's traffic through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: o.ResponseTimeout,
		// One connection per request. net/http's Transport puts a
		// connection back in its pool as soon as the body's last byte is
		// read, before its read loop looks at what follows; a request that
		// takes the connection in that gap reads an upstream's stray bytes
		// (a body longer than its Content-Length, bytes after the last
		// chunk) as its own answer: one client gets another's response.
		// No wrapper can close that gap from outside, so this form never
		// pools (Serve looks at every pooled connection before reuse and
		// keeps its pool). Options.MaxIdleConns applies to Serve only.
		DisableKeepAlives:     true,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass the body through as the app encoded it
		TLSClientConfig:       upstreamTLS(o),
	}
	if o.Metrics != nil || o.AccessLog != nil {
		rt = timeUpstream(rt, o.Metrics)
	}
	return rt
}
