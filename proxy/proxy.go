// Package proxy is a reverse proxy that puts a hostguard allow list in front
// of any web application, so that the application only ever sees a Host it
// allows.
//
// Requests whose Host fails the list get the Guard's rejection. Accepted
// requests go to the upstream. A request accepted through an IP-literal
// entry (a health check on the instance's private address, admitted by
// "@self", an address or a CIDR range) reaches the upstream with Host set to
// the canonical host and the original value in X-Forwarded-Host, so an
// application whose own list holds only its name keeps working unchanged.
// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded from
// peers outside the trusted proxies are replaced, never passed through.
//
// [Proxy.Serve] is the production server (fasthttp's server and client, the
// form `hostguard proxy` runs). A Proxy is also an http.Handler, built on
// httputil.ReverseProxy, for embedding in a net/http server; it is slower
// but behaves alike.
package proxy

import (
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
	"strings"
	"sync"
	"time"

	"github.com/hostguard/hostguard"
)

// Defaults for the upstream side.
const (
	DefaultDialTimeout     = 5 * time.Second
	DefaultResponseTimeout = 60 * time.Second
	DefaultMaxIdleConns    = 256
)

// Options configures a [Proxy].
type Options struct {
	// Guard checks every request. Required. Its TrustedProxies are the
	// peers whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and
	// Forwarded are kept and extended; from every other peer they are
	// replaced.
	Guard *hostguard.Guard

	// Upstream is the application, such as http://127.0.0.1:8000. Nil
	// serves the built-in echo backend, which shows what it received.
	Upstream *url.URL

	// CanonicalHost replaces an IP-literal Host on the way to the
	// upstream. Empty: the first plain name of the Guard's list.
	CanonicalHost string

	// DialTimeout bounds connecting to the upstream. ResponseTimeout
	// bounds the wait between two reads from it, like nginx's
	// proxy_read_timeout (so the wait for the response headers, and any
	// stall of a streamed body); as an http.Handler the Proxy bounds the
	// wait for the headers only. Zero: the defaults above.
	DialTimeout, ResponseTimeout time.Duration

	// MaxIdleConns is the size of the keep-alive pool to the upstream of
	// the http.Handler form. Zero: DefaultMaxIdleConns. [Proxy.Serve]
	// keeps every connection that falls idle for up to 90 seconds, and
	// limits neither idle nor busy ones (nginx's keepalive does the same).
	MaxIdleConns int

	// TLSConfig is used for an https:// upstream: roots to trust, a client
	// certificate. Nil: the system's roots, TLS 1.2 or later, the
	// upstream's host name as the server name.
	TLSConfig *tls.Config

	// Logger receives upstream errors. Nil: slog.Default().
	Logger *slog.Logger

	// Metrics, when set, counts requests, rejections and upstream errors
	// and times the upstream.
	Metrics *Metrics
}

// defaults fills in the zero (or negative) options.
func (o *Options) defaults() {
	o.DialTimeout = positiveOr(o.DialTimeout, DefaultDialTimeout)
	o.ResponseTimeout = positiveOr(o.ResponseTimeout, DefaultResponseTimeout)
	o.MaxIdleConns = positiveOr(o.MaxIdleConns, DefaultMaxIdleConns)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// positiveOr returns v, or def when v is zero or negative.
func positiveOr[T ~int | ~int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Proxy is an http.Handler that checks the Host and forwards to the
// upstream.
type Proxy struct {
	guard     *hostguard.Guard
	handler   http.Handler // the Guard's middleware around forward
	canonical string
	upstream  *url.URL
	rp        *httputil.ReverseProxy
	fast      *fastUpstream // the upstream for Serve; nil for the echo backend
	bufs      *bufferPool
	log       *slog.Logger
	metrics   *Metrics
}

// New builds a Proxy. It fails when no canonical host can be had for a list
// that admits IP literals, or when an option is invalid.
func New(o Options) (*Proxy, error) {
	if o.Guard == nil {
		return nil, errors.New("proxy: Options.Guard is required")
	}
	o.defaults()
	p := &Proxy{guard: o.Guard, upstream: o.Upstream, log: o.Logger, metrics: o.Metrics, canonical: o.CanonicalHost}
	if p.canonical == "" {
		p.canonical = o.Guard.FirstName()
	}
	if p.canonical != "" && !o.Guard.Allow(p.canonical) {
		return nil, fmt.Errorf("proxy: canonical host %q is not allowed by the list itself; add it to the list", p.canonical)
	}
	if p.canonical == "" && o.Guard.AdmitsIPs() {
		return nil, errors.New("proxy: the list admits IP addresses (@self, an address or a CIDR range) but names no plain host to send the upstream instead; add one (--allow example.com) or set --canonical-host")
	}
	var next http.Handler
	if o.Upstream == nil {
		next = http.HandlerFunc(Echo)
	} else {
		if o.Upstream.Scheme != "http" && o.Upstream.Scheme != "https" || o.Upstream.Host == "" {
			return nil, fmt.Errorf("proxy: upstream %q is not an http:// or https:// URL with a host", o.Upstream)
		}
		if o.Upstream.RawQuery != "" || o.Upstream.Fragment != "" || o.Upstream.User != nil {
			return nil, fmt.Errorf("proxy: upstream %q: give scheme, host, port and at most a path", o.Upstream)
		}
		p.fast = newFastUpstream(o)
		p.bufs = newBufferPool()
		p.rp = &httputil.ReverseProxy{
			Rewrite:      p.rewrite,
			Transport:    newTransport(o),
			BufferPool:   p.bufs,
			ErrorHandler: p.upstreamError,
			ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		}
		next = p.rp
	}
	if p.metrics != nil {
		next = p.metrics.countAccepted(next)
	}
	p.handler = o.Guard.Handler(p.prepare(next))
	return p, nil
}

// ServeHTTP checks the request and forwards it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Canonical returns the host sent to the upstream in place of IP literals.
func (p *Proxy) Canonical() string { return p.canonical }

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
		p.rewrite(&httputil.ProxyRequest{In: r, Out: out})
		next.ServeHTTP(w, out)
	})
}

// rewrite sets the outbound request's URL, Host and forwarded headers for
// ReverseProxy, which has removed X-Forwarded-For, -Host and -Proto from Out.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	if p.upstream != nil {
		pr.SetURL(p.upstream)
	}
	host, xff, xfh, xfp, keepForwarded := p.outboundHeaders(pr.In)
	out := pr.Out
	out.Host = host
	out.Header.Set("X-Forwarded-For", xff)
	out.Header.Set("X-Forwarded-Host", xfh)
	out.Header.Set("X-Forwarded-Proto", xfp)
	if !keepForwarded {
		out.Header.Del("Forwarded")
	}
}

// outboundHeaders decides what the upstream receives as Host and forwarded
// headers. From a trusted proxy the X-Forwarded-For chain is extended and
// its X-Forwarded-Proto, X-Forwarded-Host and Forwarded are kept (the Guard
// has checked their hosts); from anyone else they are replaced. An IP-literal
// Host becomes the canonical host, the original going to X-Forwarded-Host.
func (p *Proxy) outboundHeaders(in *http.Request) (host, xff, xfh, xfp string, keepForwarded bool) {
	o := outbound{client: in.RemoteAddr, tls: in.TLS != nil, host: in.Host}
	if p.guard.TrustedPeer(in.RemoteAddr) {
		o.trusted = true
		o.priorXFF = strings.Join(in.Header["X-Forwarded-For"], ", ")
		if v := in.Header["X-Forwarded-Proto"]; len(v) > 0 {
			o.priorXFP = v[0]
		}
		o.priorXFH = strings.Join(in.Header["X-Forwarded-Host"], ", ")
	}
	host, xff, xfh, xfp = p.decide(o)
	return host, xff, xfh, xfp, o.trusted
}

// outbound is what decide needs of an accepted request, whichever server
// read it.
type outbound struct {
	client   string // the peer, "ip:port"
	tls      bool   // the request came over TLS
	host     string // the Host the Guard accepted
	trusted  bool   // the peer is a trusted proxy
	priorXFF string // from a trusted peer: its X-Forwarded-For, -Proto and -Host
	priorXFP string
	priorXFH string
}

// decide returns the Host and forwarded headers for the upstream.
func (p *Proxy) decide(o outbound) (host, xff, xfh, xfp string) {
	client, _, err := net.SplitHostPort(o.client)
	if err != nil {
		client = o.client
	}
	xff, xfp, host = client, "http", o.host
	if o.tls {
		xfp = "https"
	}
	if o.trusted {
		if o.priorXFF != "" {
			xff = o.priorXFF + ", " + client
		}
		if o.priorXFP != "" {
			xfp = o.priorXFP
		}
		xfh = o.priorXFH
	}
	if xfh == "" {
		xfh = o.host
	}
	if p.canonical != "" && hostguard.IsIPLiteral(o.host) {
		host, xfh = p.canonical, o.host
	}
	return host, xff, xfh, xfp
}

// upstreamError answers 502 (504 for a time-out) and logs why; 408 when
// it was the client's body that stopped arriving.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := r.Context().Value(slidingBodyKey{}).(*slidingBody); ok && b.timedOut.Load() {
		w.Header().Set("Connection", "close")
		http.Error(w, strings.TrimSuffix(bodyTimeoutText, "\n"), http.StatusRequestTimeout)
		return
	}
	code, body := p.upstreamFailure(err, r.Context().Err() != nil, r.Method, r.URL.Path)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// bodyTimeoutText answers a request whose body stopped arriving (408).
const bodyTimeoutText = "Request Timeout: the request body stopped arriving\n"

// upstreamFailure classifies a failed exchange with the upstream, counts
// and logs it (not when the client left: canceled), and returns the status
// and body to answer, for either server.
func (p *Proxy) upstreamFailure(err error, canceled bool, method, path string) (code int, body string) {
	code, kind := http.StatusBadGateway, "unreachable"
	switch {
	case canceled:
		kind = "canceled" // the client went away; nobody reads the answer
	case isTimeout(err):
		code, kind = http.StatusGatewayTimeout, "timeout"
	}
	if p.metrics != nil {
		p.metrics.upstreamErrors.WithLabelValues(kind).Inc()
	}
	if !canceled {
		p.log.LogAttrs(context.Background(), slog.LevelError, "hostguard proxy: upstream error",
			slog.String("upstream", p.upstream.String()), slog.String("kind", kind),
			slog.String("method", method), slog.String("path", path), slog.String("error", err.Error()))
	}
	return code, fmt.Sprintf("%d %s: the application behind hostguard did not answer\n", code, http.StatusText(code))
}

// isTimeout reports whether err is a time-out: a net.Error's, or
// fasthttp.ErrTimeout, which has only the Timeout method.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// newTransport builds the net/http form's transport from options with their
// defaults filled in.
func newTransport(o Options) http.RoundTripper {
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 nil, // never send the app's traffic through HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: o.ResponseTimeout,
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConns, // the default, 2, reconnects under any load
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass the body through as the app encoded it
		TLSClientConfig:       upstreamTLS(o),
	}
	if o.Metrics != nil {
		rt = o.Metrics.timeUpstream(rt)
	}
	return rt
}

const copyBufSize = 32 << 10

// bufferPool reuses the 32 KiB copy buffers of ReverseProxy. It
// pools array pointers, so neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufSize]byte)[:] }

func (b *bufferPool) Put(s []byte) {
	if cap(s) >= copyBufSize {
		b.p.Put((*[copyBufSize]byte)(s[:copyBufSize]))
	}
}

// upstreamTLS is the TLS configuration for an https:// upstream.
func upstreamTLS(o Options) *tls.Config {
	if o.TLSConfig != nil {
		c := o.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = o.Upstream.Hostname()
		}
		return c
	}
	return &tls.Config{ServerName: o.Upstream.Hostname(), MinVersion: tls.VersionTLS12}
}
