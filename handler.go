package hostguard

import (
	"context"
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
		// The common case, decided from what it needs alone: an allowed
		// Host and no forwarded host. An exempt path changes nothing
		// for an allowed Host.
		reason := g.reason(r.Host)
		if reason == ReasonNone && len(r.Header[headerXFH]) == 0 && len(r.Header[headerForwarded]) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		g.serve(w, r, next, reason)
	})
}

// serve is the rest of the middleware, for a request whose Host the list
// judged hostReason.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler, hostReason Reason) {
	req := Request{
		Host:          r.Host,
		Path:          r.URL.Path,
		RemoteAddr:    r.RemoteAddr,
		ForwardedHost: r.Header[headerXFH],
		Forwarded:     r.Header[headerForwarded],
	}
	v := g.check(&req, hostReason)
	if v.DropForwarded {
		delete(r.Header, headerXFH)
		delete(r.Header, headerForwarded)
	}
	if v.Allowed() {
		next.ServeHTTP(w, r)
		return
	}
	req.UserAgent = r.UserAgent() // for the log only
	g.logRejection(&req, v)
	switch {
	case !v.Enforced:
		// Report-only: logged and counted, then served; the handler
		// may look at what would have happened.
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verdictKey{}, v)))
	case g.reject == nil:
		Reject(w, r)
	default:
		g.reject.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verdictKey{}, v)))
	}
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

// Verdict is what the list says of a request: the outcome of
// [Guard.CheckRequest], and what an [Options.RejectHandler] (or, in
// report-only mode, the next handler) finds with [VerdictFromContext].
// [Decision] is what it says of one Host value.
type Verdict struct {
	// Reason is ReasonNone when the list admits the request; otherwise why
	// it does not.
	Reason Reason
	// Value is the value that failed, the Host or a trusted proxy's
	// forwarded host, as received; never write it out unescaped.
	Value string
	// Exempt says that the path is one of [Options.ExemptPaths]: the Host
	// was not checked (a trusted proxy's forwarded hosts still were).
	Exempt bool
	// DropForwarded says that X-Forwarded-Host and Forwarded came from a
	// peer that is not a trusted proxy: the server must remove them
	// before the application sees the request.
	DropForwarded bool
	// Enforced is false in report-only mode ([Options.ReportOnly]): a
	// rejection is logged and counted, and the request passes anyway.
	Enforced bool
}

// Allowed reports whether the list admits the request.
func (v Verdict) Allowed() bool { return v.Reason == ReasonNone }

// Passes reports whether the request goes on to the application: the list
// admits it, or its rejection is not enforced. A server answers a request
// that does not pass with [RejectStatus] and [RejectBody].
func (v Verdict) Passes() bool { return v.Reason == ReasonNone || !v.Enforced }

// CheckRequest checks r as [Guard.Handler] checks an *http.Request, for
// servers other than net/http: the Host (unless the path is exempt), and,
// from a trusted proxy, every forwarded host. A rejection is logged (rate
// limited) as Handler logs it. A server that enforces it answers with
// [RejectStatus] and [RejectBody], as [Reject] does. It does not allocate
// for a request that passes.
func (g *Guard) CheckRequest(r *Request) Verdict {
	v := g.check(r, g.reason(r.Host))
	if !v.Allowed() {
		g.logRejection(r, v)
	}
	return v
}

// check checks r, whose Host the list judged hostReason.
func (g *Guard) check(r *Request, hostReason Reason) Verdict {
	v := Verdict{Exempt: g.exempt[r.Path], Enforced: !g.reportOnly}
	forwarded := len(r.ForwardedHost) > 0 || len(r.Forwarded) > 0
	// Never hand a forwarded host from an untrusted peer to the
	// application: it would trust it for redirects and links.
	trusted := forwarded && g.TrustedPeer(r.RemoteAddr)
	v.DropForwarded = forwarded && !trusted
	if !v.Exempt && hostReason != ReasonNone {
		v.Reason, v.Value = hostReason, r.Host
		return v
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

// TrustedPeer reports whether remote, a peer's "ip:port" as in
// http.Request.RemoteAddr, is inside [Options.TrustedProxies]: whether its
// X-Forwarded-For and X-Forwarded-Proto may be believed, or, by a server
// that passes requests on, kept and extended. The Host check itself
// decides this for the forwarded hosts ([Verdict.DropForwarded]).
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

type verdictKey struct{}

// VerdictFromContext returns the verdict on a request that the list
// rejects, for the [Options.RejectHandler] serving it, or in report-only
// mode for the next handler. ok is false for a request the list admits.
func VerdictFromContext(ctx context.Context) (v Verdict, ok bool) {
	v, ok = ctx.Value(verdictKey{}).(Verdict)
	return v, ok
}

// The default rejection, for servers that answer a rejected
// [Guard.CheckRequest] themselves: 400 with a short plain-text body that
// never repeats the rejected value. [Reject] writes it to an
// http.ResponseWriter.
const (
	RejectStatus = http.StatusBadRequest
	RejectBody   = "Bad Request: invalid Host header\n"
)

// RejectBody as bytes, and its Content-Length. Write must not change the
// bytes it is given (io.Writer), so every response can share them.
var (
	rejectBody   = []byte(RejectBody)
	rejectLength = strconv.Itoa(len(RejectBody))
)

// Reject writes the default rejection: 400 with a short plain-text body that
// never repeats the rejected value. An [Options.RejectHandler] that only
// counts or logs can end with it.
func Reject(w http.ResponseWriter, _ *http.Request) {
	// The three values share one allocation (Header.Set would make one
	// each); each slice is capped, so appending to one copies it.
	v := make([]string, 3)
	v[0], v[1], v[2] = "text/plain; charset=utf-8", "nosniff", rejectLength
	h := w.Header()
	h["Content-Type"], h["X-Content-Type-Options"], h["Content-Length"] = v[0:1:1], v[1:2:2], v[2:3:3]
	w.WriteHeader(RejectStatus)
	_, _ = w.Write(rejectBody)
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
