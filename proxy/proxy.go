// Package proxy is a reverse proxy that puts a hostguard allow list in front
// of any web application, so that the application only ever sees a Host it
// allows, and never a forwarding header that a client forged.
//
// Requests whose Host fails the list get the Guard's rejection. Accepted
// requests go to the upstream with the Host normalised (lower case, no
// trailing dot, the port in plain decimal). A request accepted through an
// IP-literal entry (a health check on the instance's private address,
// admitted by "@self", an address or a CIDR range) reaches the upstream with
// Host set to the canonical host and the original value in
// X-Forwarded-Host, so an application whose own list holds only its name
// keeps working unchanged. X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host are set by the proxy; from peers outside the trusted
// proxies, every other X-Forwarded-* field, X-Real-IP and Forwarded are
// removed, and so is every field whose name holds an underscore (CGI and
// WSGI servers read X_Forwarded_For as X-Forwarded-For); forwarding names
// spelt with underscores, X-Host and X-Original-Host are removed even from
// trusted proxies.
//
// [Proxy.Serve] is the production server: a strict HTTP/1.1 parser (see
// request.go for its rules) and a keep-alive pool to the upstream, the form
// `hostguard proxy` runs. A Proxy is also an http.Handler, built on
// httputil.ReverseProxy, for embedding in a net/http server; it is slower
// but decides alike.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/proxy/internal/wire"
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

	// MaxIdleConns is the size of the keep-alive pool to the upstream:
	// connections that fall idle beyond it are closed, and idle ones are
	// closed after 90 seconds. Busy connections are not limited (long polls
	// and streams each hold one), as with nginx's keepalive. Zero:
	// DefaultMaxIdleConns. Serve only: the net/http form opens a connection
	// per request (see newTransport).
	MaxIdleConns int

	// TunnelIdleTimeout closes a WebSocket tunnel in which no byte moved
	// either way for this long. Zero: DefaultTunnelIdleTimeout.
	TunnelIdleTimeout time.Duration

	// KeepUnderscoreHeaders passes on header fields whose names hold an
	// underscore ("X_Custom"). Off by default, as in nginx
	// (underscores_in_headers): CGI and WSGI servers cannot tell
	// X_Forwarded_For from X-Forwarded-For. Even when set, names that read
	// as framing, hop-by-hop or forwarding fields with '-' for '_' are
	// dropped.
	KeepUnderscoreHeaders bool

	// TLSConfig is used for an https:// upstream: roots to trust, a client
	// certificate. Nil: the system's roots, TLS 1.2 or later, the
	// upstream's host name as the server name.
	TLSConfig *tls.Config

	// Logger receives upstream errors. Nil: slog.Default().
	Logger *slog.Logger

	// Metrics, when set, counts requests, rejections and upstream errors
	// and times the upstream.
	Metrics *Metrics

	// AccessLog, when set, receives one line per request, in both server
	// forms: the fields of nginx's combined log format, then the Host as
	// received, the Guard's reason when it rejects it, the upstream's time
	// to its response head and the request's time (see docs/proxy.md).
	// Rejections, malformed requests and upstream failures get a line,
	// and a WebSocket tunnel gets one when it opens. Each line is one
	// Write, and Writes are not concurrent; a file to be reopened (on
	// SIGHUP) is the Writer's business. Nil: no access log, at no cost.
	AccessLog io.Writer

	// AccessLogJSON writes the access log as one JSON object per line.
	AccessLogJSON bool
}

// defaults fills in the zero (or negative) options.
func (o *Options) defaults() {
	o.DialTimeout = positiveOr(o.DialTimeout, DefaultDialTimeout)
	o.ResponseTimeout = positiveOr(o.ResponseTimeout, DefaultResponseTimeout)
	o.MaxIdleConns = positiveOr(o.MaxIdleConns, DefaultMaxIdleConns)
	o.TunnelIdleTimeout = positiveOr(o.TunnelIdleTimeout, DefaultTunnelIdleTimeout)
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

// Proxy checks the Host of requests and forwards the accepted ones to the
// upstream. Serve it with [Proxy.Serve], or use it as an http.Handler.
type Proxy struct {
	guard          *hostguard.Guard
	handler        http.Handler // the net/http form: the Guard's middleware around the ReverseProxy
	canonical      string
	upstream       *url.URL
	rp             *httputil.ReverseProxy
	up             *upstream // the upstream for Serve; nil for the echo backend
	bufs           *bufferPool
	log            *slog.Logger
	metrics        *Metrics
	access         *accessLog // nil: off
	keepUnderscore bool
	tunnelIdle     time.Duration

	tunnelsMu sync.Mutex
	tunnels   map[*tunnel]struct{}
}

// New builds a Proxy. It fails when no canonical host can be had for a list
// that admits IP literals, or when an option is invalid.
func New(o Options) (*Proxy, error) {
	if o.Guard == nil {
		return nil, errors.New("proxy: Options.Guard is required")
	}
	o.defaults()
	p := &Proxy{guard: o.Guard, upstream: o.Upstream, log: o.Logger, metrics: o.Metrics,
		keepUnderscore: o.KeepUnderscoreHeaders, tunnelIdle: o.TunnelIdleTimeout,
		bufs: newBufferPool(), tunnels: map[*tunnel]struct{}{}}
	if o.AccessLog != nil {
		p.access = newAccessLog(o.AccessLog, o.AccessLogJSON)
	}
	var admitsIPs bool
	p.canonical, admitsIPs = canonicalName(o.Guard)
	if o.CanonicalHost != "" {
		d := o.Guard.Check(o.CanonicalHost)
		if !d.Allowed() {
			return nil, fmt.Errorf("proxy: canonical host %q is not allowed by the list itself; add it to the list", o.CanonicalHost)
		}
		p.canonical = d.Host
	}
	if p.canonical == "" && admitsIPs {
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
		p.up = newUpstream(o)
		p.rp = &httputil.ReverseProxy{
			Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(pr) },
			ModifyResponse: checkResponse,
			Transport:      newTransport(o),
			BufferPool:     p.bufs,
			ErrorHandler:   p.upstreamError,
			ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		}
		next = p.rp
	}
	p.handler = p.checkForm(p.checkHost(p.prepare(next)))
	if p.access != nil {
		p.handler = p.logAccess(p.handler)
	}
	return p, nil
}

// count counts a request's verdict in the metrics.
func (p *Proxy) count(v hostguard.Verdict) {
	if p.metrics == nil {
		return
	}
	if !v.Allowed() {
		enforced := "true"
		if !v.Enforced {
			enforced = "false"
		}
		p.metrics.rejected.WithLabelValues(v.Reason.Label(), enforced).Inc()
		return
	}
	p.metrics.accepted.Inc()
}

// Canonical returns the host sent to the upstream in place of IP literals.
func (p *Proxy) Canonical() string { return p.canonical }

// inbound is what decide needs of an accepted request, whichever server
// read it.
type inbound struct {
	client  string // the peer's address
	tls     bool   // the request came over TLS
	host    string // the host the client sent (Host, or the absolute-form authority)
	checked bool   // false: an exempt path let host through without the list
	// reported says that the list rejects host and the Guard only reports
	// it (report-only): it goes on as the client sent it.
	reported bool
	trusted  bool // the peer is a trusted proxy
	// From a trusted peer: its X-Forwarded-For, -Proto and -Host.
	priorXFF, priorXFP, priorXFH string
}

// inboundFrom builds, for either server form, what decide needs of a
// request the Guard passed with verdict v: the client's address (without
// the port), the host it sent, whether it came over TLS or from a trusted
// proxy. The host counts as checked unless an exempt path let it through,
// in which case the list decides now; a host the list rejects but the
// Guard only reports goes on as reported. The caller adds a trusted
// proxy's prior forwarding values.
func (p *Proxy) inboundFrom(v hostguard.Verdict, client, host string, tls, trusted bool) inbound {
	in := inbound{client: client, tls: tls, host: host, checked: true, reported: !v.Allowed(), trusted: trusted}
	if v.Exempt {
		in.checked = p.guard.Allow(host)
	}
	return in
}

// forwarding is what the upstream receives in place of the client's Host
// and forwarding fields.
type forwarding struct {
	host          string // Host
	xff, xfh, xfp string // X-Forwarded-For, -Host (none when empty) and -Proto
	// keepClientFields passes the client's Forwarded, X-Real-IP and other
	// X-Forwarded-* fields: they come from a trusted proxy.
	keepClientFields bool
}

// decide returns the Host and forwarding fields for the upstream. From a
// trusted proxy the X-Forwarded-For chain is extended and its
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded are kept (the Guard has
// checked their hosts); from anyone else they are replaced. The host goes
// on normalised; an IP literal, an empty host or one that an exempt path
// let through unchecked becomes the canonical host, the checked original
// going to X-Forwarded-Host. A host the list rejects but the Guard only
// reports goes on as the client sent it (normalised when well formed). ok
// is false when no host can be sent: an unchecked one and no canonical
// host.
func (p *Proxy) decide(in inbound) (f forwarding, ok bool) {
	f.xff, f.xfp = in.client, "http"
	if in.tls {
		f.xfp = "https"
	}
	switch {
	case in.host != "" && (in.checked || in.reported):
		f.host = p.normalize(in.host)
		if f.host == "" {
			f.host = in.host // malformed, and served only because nothing is enforced
		}
		f.xfh = f.host
		if c := f.host[0]; c == '[' || c >= '0' && c <= '9' {
			if isIPLiteral(f.host) {
				f.host = p.canonical
			}
		}
	case in.checked:
		f.host = p.canonical // an empty Host the list allows
	default:
		f.host = p.canonical
		if f.host == "" {
			return f, false
		}
	}
	if in.trusted {
		f.extend(&in)
	}
	return f, true
}

// extend keeps a trusted proxy's forwarding fields: its X-Forwarded-For
// chain with the client appended, its X-Forwarded-Proto and -Host.
func (f *forwarding) extend(in *inbound) {
	f.keepClientFields = true
	if in.priorXFF != "" {
		f.xff = in.priorXFF + ", " + in.client
	}
	if in.priorXFP != "" {
		f.xfp = in.priorXFP
	}
	if in.priorXFH != "" {
		f.xfh = in.priorXFH
	}
}

// passesUpstream reports whether a client's field of kind k goes to the
// upstream as the client sent it: the one rule of both server forms. Every
// other field is dropped, or replaced by what the proxy decides (Host, the
// body's framing, X-Forwarded-For, -Host and -Proto, and Connection and
// Upgrade for a WebSocket handshake).
func (p *Proxy) passesUpstream(k fieldKind, fw *forwarding) bool {
	switch k {
	case kindOther, kindUserAgent:
		return true
	case kindUnderscore:
		return p.keepUnderscore
	case kindForwarded, kindForwarding:
		return fw.keepClientFields
	}
	return false
}

// normalize returns an accepted host as the list compared it: lower case,
// without a trailing dot, IPv6 in canonical form, the port in plain
// decimal. Most hosts already are; the rest take the Guard's Check.
func (p *Proxy) normalize(h string) string {
	colon := -1
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'A' <= c && c <= 'Z', c == '[':
			return p.guard.Check(h).Host
		case c == ':':
			colon = i
		}
	}
	name := h
	if colon >= 0 {
		if colon+1 < len(h) && h[colon+1] == '0' {
			return p.guard.Check(h).Host
		}
		name = h[:colon]
	}
	if name != "" && name[len(name)-1] == '.' {
		return p.guard.Check(h).Host
	}
	return h
}

// upstreamFailure classifies a failed exchange with the upstream, counts
// and logs it (not when the client left: canceled), and returns the status
// and body to answer, for either server. request is the method and path.
func (p *Proxy) upstreamFailure(err error, canceled bool, request string) (code int, body string) {
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
			slog.String("request", request), slog.String("error", err.Error()))
	}
	return code, fmt.Sprintf("%d %s: the application behind hostguard did not answer\n", code, http.StatusText(code))
}

// isTimeout reports whether err is a time-out: a net.Error's, or any error
// with a Timeout method that says so.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// bufferPool reuses the 32 KiB copy buffers of ReverseProxy. It
// pools array pointers, so neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([wire.CopyBufSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[wire.CopyBufSize]byte)[:] }

func (b *bufferPool) Put(s []byte) {
	if cap(s) >= wire.CopyBufSize {
		b.p.Put((*[wire.CopyBufSize]byte)(s[:wire.CopyBufSize]))
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
