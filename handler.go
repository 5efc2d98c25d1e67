package hostguard

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

const (
	headerXFH       = "X-Forwarded-Host"
	headerForwarded = "Forwarded"
)

// Handler returns middleware that passes requests whose Host is allowed to
// next and rejects the others. Its shape, func(http.Handler) http.Handler,
// fits every router that takes net/http middleware.
//
// Go's server puts the host of an absolute-form request target
// ("GET http://evil.example/ HTTP/1.1") into Request.Host, so that host is
// checked like any other. See [Options.TrustedProxies] for forwarded headers.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad, reason := g.checkRequest(r)
		if reason == ReasonNone {
			next.ServeHTTP(w, r)
			return
		}
		g.rejectRequest(w, r, bad, reason)
	})
}

// checkRequest returns the offending value and the reason when r must be
// rejected. It removes forwarded headers that came from an untrusted peer.
func (g *Guard) checkRequest(r *http.Request) (string, Reason) {
	req := Request{
		Host:          r.Host,
		Path:          r.URL.Path,
		RemoteAddr:    r.RemoteAddr,
		ForwardedHost: r.Header[headerXFH],
		Forwarded:     r.Header[headerForwarded],
	}
	bad, reason, drop := g.check(&req)
	if drop {
		delete(r.Header, headerXFH)
		delete(r.Header, headerForwarded)
	}
	return bad, reason
}

// Request is what the Guard checks of a request, for servers other than
// net/http (such as fasthttp); see [Guard.Inspect].
type Request struct {
	// Host is the Host header, or the authority of an absolute-form
	// request target ("GET http://host/ HTTP/1.1"), which takes its place.
	Host string
	// Path, RemoteAddr ("ip:port") and UserAgent serve ExemptPaths, the
	// trusted-proxy check and the rejection log.
	Path, RemoteAddr, UserAgent string
	// ForwardedHost and Forwarded hold every X-Forwarded-Host and
	// Forwarded header value.
	ForwardedHost, Forwarded []string
}

// Inspect checks r as [Guard.Handler] checks an *http.Request, for servers
// other than net/http. A rejection is logged (rate limited) as Handler logs
// it, and reported with the offending value and the reason; the server then
// answers with [RejectStatus] and [RejectBody], as [Reject] does. When the
// request may pass and dropForwarded is true, its X-Forwarded-Host and
// Forwarded headers came from an untrusted peer: the server must remove them
// before the application sees the request.
func (g *Guard) Inspect(r *Request) (bad string, reason Reason, dropForwarded bool) {
	bad, reason, dropForwarded = g.check(r)
	if reason != ReasonNone {
		g.logRejection(r, bad, reason)
	}
	return bad, reason, dropForwarded
}

func (g *Guard) check(r *Request) (bad string, reason Reason, dropForwarded bool) {
	if !g.IsExempt(r.Path) {
		if reason := g.verdict(r.Host); reason != ReasonNone {
			return r.Host, reason, false
		}
	}
	if len(r.ForwardedHost) == 0 && len(r.Forwarded) == 0 {
		return "", ReasonNone, false
	}
	if !g.TrustedPeer(r.RemoteAddr) {
		// Never hand a forwarded host from an untrusted peer to the
		// application: it would trust it for redirects and links.
		return "", ReasonNone, true
	}
	for _, v := range r.ForwardedHost {
		if bad, reason := g.checkList(v, false); reason != ReasonNone {
			return bad, reason, false
		}
	}
	for _, v := range r.Forwarded {
		if bad, reason := g.checkList(v, true); reason != ReasonNone {
			return bad, reason, false
		}
	}
	return "", ReasonNone, false
}

// IsExempt reports whether requests for path skip the Host check
// ([Options.ExemptPaths]). A server that passes requests on uses it to
// know that the Host of an accepted request was not checked.
func (g *Guard) IsExempt(path string) bool { return g.exempt != nil && g.exempt[path] }

// TrustedPeer reports whether remote, a Request.RemoteAddr, is inside
// [Options.TrustedProxies].
func (g *Guard) TrustedPeer(remote string) bool {
	if len(g.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkList checks every host in a comma-separated X-Forwarded-Host value,
// or every host= parameter of a Forwarded value (RFC 7239). All of them
// must pass: frameworks disagree on which one they use. A Forwarded value
// that does not follow RFC 7239 is malformed as a whole.
func (g *Guard) checkList(v string, forwarded bool) (string, Reason) {
	if forwarded {
		bad, reason := "", ReasonNone
		ok := forwardedHosts(v, func(h string) bool {
			bad, reason = h, g.forwardedVerdict(h)
			return reason == ReasonNone
		})
		if !ok {
			return v, ReasonForwardedMalformed
		}
		return bad, reason
	}
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		elem = strings.TrimSpace(elem)
		if reason := g.forwardedVerdict(elem); reason != ReasonNone {
			return elem, reason
		}
	}
	return "", ReasonNone
}

// forwardedVerdict checks one host that a trusted proxy forwarded.
func (g *Guard) forwardedVerdict(h string) Reason {
	if h == "" {
		return ReasonForwardedMalformed
	}
	switch g.verdict(h) {
	case ReasonNone:
		return ReasonNone
	case ReasonNotAllowed:
		return ReasonForwardedNotAllowed
	}
	return ReasonForwardedMalformed
}

// Rejection describes a rejected request to an [Options.RejectHandler].
type Rejection struct {
	Host   string // the value that failed, as received; never write it out unescaped
	Reason Reason
}

type rejectionKey struct{}

// RejectionFromContext returns the rejection that an [Options.RejectHandler]
// is serving.
func RejectionFromContext(ctx context.Context) (Rejection, bool) {
	rj, ok := ctx.Value(rejectionKey{}).(Rejection)
	return rj, ok
}

// The default rejection, for servers that answer it themselves (see
// [Guard.Inspect]): 400 with a short plain-text body that never repeats the
// rejected value.
const (
	RejectStatus = http.StatusBadRequest
	RejectBody   = "Bad Request: invalid Host header\n"
)

// Reject writes the default rejection: 400 with a short plain-text body that
// never repeats the rejected value. An [Options.RejectHandler] that only
// counts or logs can end with it.
func Reject(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(RejectBody)))
	w.WriteHeader(RejectStatus)
	_, _ = io.WriteString(w, RejectBody)
}

func (g *Guard) rejectRequest(w http.ResponseWriter, r *http.Request, bad string, reason Reason) {
	g.logRejection(&Request{Path: r.URL.Path, RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent()}, bad, reason)
	if g.reject == nil {
		Reject(w, r)
		return
	}
	ctx := context.WithValue(r.Context(), rejectionKey{}, Rejection{Host: bad, Reason: reason})
	g.reject.ServeHTTP(w, r.WithContext(ctx))
}

// healthCheckers are User-Agent markers of load-balancer health checks.
var healthCheckers = [...]string{"ELB-HealthChecker", "kube-probe", "GoogleHC"}

func (g *Guard) logRejection(r *Request, bad string, reason Reason) {
	if g.limiter == nil {
		return
	}
	if !g.limiter.Allow() {
		g.suppressed.Add(1)
		return
	}
	ua := r.UserAgent
	attrs := []slog.Attr{
		slog.String("host", escape(bad)),
		slog.String("reason", reason.String()),
		slog.String("remote", r.RemoteAddr),
		slog.String("path", escape(r.Path)),
		slog.String("user_agent", escape(ua)),
	}
	if n := g.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", n))
	}
	msg := "hostguard: request rejected"
	if fix := g.healthCheckHint(ua, bad, reason); fix != "" {
		msg = "hostguard: load-balancer health check rejected"
		attrs = append(attrs, slog.String("fix", fix))
	}
	g.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// healthCheckHint explains the classic failure: a load balancer's health
// check addressed to this instance's private IP.
func (g *Guard) healthCheckHint(ua, bad string, reason Reason) string {
	if reason != ReasonNotAllowed {
		return ""
	}
	checker := false
	for _, m := range healthCheckers {
		if strings.Contains(ua, m) {
			checker = true
			break
		}
	}
	var h host
	pr := h.parse(bad)
	if !checker || pr != ReasonNone || !h.isIP() {
		return ""
	}
	if a := h.addr; !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
		return ""
	}
	if g.list.self {
		return "the allow list holds @self but not this address; check discovery with 'hostguard discover --verbose'"
	}
	return "the load balancer checks this instance by its private address; add @self to the allow list"
}

// escape writes control and non-ASCII characters as Go escapes (\r, \n,
// \u00e4), so no handler can be made to print a forged log line.
func escape(s string) string {
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
