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
// checked like any other. See [Options.TrustedProxies] for forwarded
// headers, and [Options.ReportOnly] for a rollout that only reports.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := g.CheckRequest(&Request{
			Host:          r.Host,
			Path:          r.URL.Path,
			RemoteAddr:    r.RemoteAddr,
			UserAgent:     r.UserAgent(),
			ForwardedHost: r.Header[headerXFH],
			Forwarded:     r.Header[headerForwarded],
		})
		if v.DropForwarded {
			delete(r.Header, headerXFH)
			delete(r.Header, headerForwarded)
		}
		switch {
		case !v.Rejected():
			next.ServeHTTP(w, r)
		case !v.Enforced:
			// Report-only: logged and counted, then served; the
			// handler may look at what would have happened.
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), rejectionKey{}, v.rejection())))
		case g.reject == nil:
			Reject(w, r)
		default:
			g.reject.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), rejectionKey{}, v.rejection())))
		}
	})
}

// Request is what the Guard checks of a request: what [Guard.Handler] reads
// of an *http.Request, and what a server other than net/http (a proxy, a
// fasthttp handler) passes to [Guard.CheckRequest].
type Request struct {
	// Host is the Host header, or the authority of an absolute-form
	// request target ("GET http://host/ HTTP/1.1") as the client wrote
	// it, which takes its place.
	Host string
	// Path, RemoteAddr ("ip:port") and UserAgent serve ExemptPaths, the
	// trusted-proxy check and the rejection log.
	Path, RemoteAddr, UserAgent string
	// ForwardedHost and Forwarded hold every X-Forwarded-Host and
	// Forwarded header value.
	ForwardedHost, Forwarded []string
}

// Verdict is the outcome of [Guard.CheckRequest].
type Verdict struct {
	// Reason is ReasonNone when the request passes the list; otherwise why
	// it does not.
	Reason Reason
	// Value is the value that failed, the Host or a trusted proxy's
	// forwarded host, as received; never write it out unescaped.
	Value string
	// Exempt says that the path is one of [Options.ExemptPaths]: the Host
	// was not checked (Reason is ReasonNone).
	Exempt bool
	// DropForwarded says that X-Forwarded-Host and Forwarded came from a
	// peer that is not a trusted proxy: the server must remove them
	// before the application sees the request.
	DropForwarded bool
	// Enforced is false in report-only mode ([Options.ReportOnly]): a
	// rejection is logged and counted, and the request is served anyway.
	Enforced bool
}

// Rejected reports whether the list does not admit the request (whether or
// not that is enforced).
func (v Verdict) Rejected() bool { return v.Reason != ReasonNone }

// Serve reports whether the request goes to the application: it passed, or
// its rejection is not enforced.
func (v Verdict) Serve() bool { return v.Reason == ReasonNone || !v.Enforced }

func (v Verdict) rejection() Rejection { return Rejection{Host: v.Value, Reason: v.Reason} }

// CheckRequest checks r as [Guard.Handler] checks an *http.Request, for
// servers other than net/http: the Host (unless the path is exempt), and,
// from a trusted proxy, every forwarded host. A rejection is logged (rate
// limited) as Handler logs it. A server that enforces it answers with
// [RejectStatus] and [RejectBody], as [Reject] does. It does not allocate
// for a request that passes.
func (g *Guard) CheckRequest(r *Request) Verdict {
	v := g.check(r)
	v.Enforced = !g.reportOnly
	if v.Rejected() {
		g.logRejection(r, v)
	}
	return v
}

func (g *Guard) check(r *Request) Verdict {
	v := Verdict{Exempt: g.exempt[r.Path]}
	forwarded := len(r.ForwardedHost) > 0 || len(r.Forwarded) > 0
	// Never hand a forwarded host from an untrusted peer to the
	// application: it would trust it for redirects and links.
	trusted := forwarded && g.TrustedPeer(r.RemoteAddr)
	v.DropForwarded = forwarded && !trusted
	if !v.Exempt {
		if reason := g.reason(r.Host); reason != ReasonNone {
			v.Reason, v.Value = reason, r.Host
			return v
		}
	}
	if !trusted {
		return v
	}
	for _, h := range r.ForwardedHost {
		if v.Value, v.Reason = g.checkList(h, false); v.Reason != ReasonNone {
			return v
		}
	}
	for _, h := range r.Forwarded {
		if v.Value, v.Reason = g.checkList(h, true); v.Reason != ReasonNone {
			return v
		}
	}
	return v
}

// TrustedPeer reports whether remote, a Request.RemoteAddr, is inside
// [Options.TrustedProxies]: whether a server that passes requests on may
// keep that peer's X-Forwarded-For and X-Forwarded-Proto. The Host check
// itself decides this for the forwarded hosts ([Verdict.DropForwarded]).
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
	switch g.reason(h) {
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

// The default rejection, for servers that answer a rejected
// [Guard.CheckRequest] themselves: 400 with a short plain-text body that
// never repeats the rejected value. [Reject] writes it to an
// http.ResponseWriter.
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

// healthCheckers are User-Agent markers of load-balancer health checks.
var healthCheckers = [...]string{"ELB-HealthChecker", "kube-probe", "GoogleHC"}

func (g *Guard) logRejection(r *Request, v Verdict) {
	if g.log == nil {
		return
	}
	ua := r.UserAgent
	attrs := []slog.Attr{
		slog.String("host", escape(v.Value)),
		slog.String("reason", v.Reason.String()),
		slog.String("remote", r.RemoteAddr),
		slog.String("path", escape(r.Path)),
		slog.String("user_agent", escape(ua)),
	}
	msg := "hostguard: request rejected"
	if fix := g.healthCheckHint(ua, v.Value, v.Reason); fix != "" {
		msg = "hostguard: load-balancer health check rejected"
		attrs = append(attrs, slog.String("fix", fix))
	}
	if !v.Enforced {
		// The same record, said to be unenforced.
		msg += " (report-only: served anyway)"
		attrs = append(attrs, slog.Bool("enforced", false))
	}
	g.log.Log(slog.LevelWarn, msg, attrs...)
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
