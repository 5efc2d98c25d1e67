package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/discover"
	"github.com/hostguard/hostguard/proxy"
)

// proxyConfig is what the flags of hostguard proxy ask for.
type proxyConfig struct {
	allow, trusted                          []string
	listen, upstream, canonical             string
	metricsAddr, logFormat, tlsCert, tlsKey string
	accessLog                               string
	allowEmpty, reportOnly, keepUnderscore  bool
	allowMissing, tlsSelf, check            bool
	refresh                                 time.Duration
	dialTimeout, respTimeout, tunnelIdle    time.Duration
	server                                  proxy.ServerOptions // timeouts, limits, grace
	discovery                               discover.Options
}

func proxyCommand(e *env) subcommand {
	return subcommand{
		use:   "proxy --allow LIST [--listen ADDR] [--upstream URL] [--canonical-host H] [--trusted-proxy CIDR] [--metrics ADDR] [discovery flags]",
		short: "serve a reverse proxy that puts the allow list in front of an application",
		define: func(f *flagSet) func([]string) int {
			parse := defineProxyFlags(f)
			return func(args []string) int {
				cfg, code, ok := parse(args)
				if !ok {
					return code
				}
				return runProxy(e, cfg)
			}
		},
	}
}

// defineProxyFlags registers the flags of hostguard proxy and returns what
// turns them, once parsed, into its configuration, or the exit code when
// the command must stop.
func defineProxyFlags(ef *flagSet) func(args []string) (*proxyConfig, int, bool) {
	e := ef.e
	allow := ef.list("allow", "HOSTGUARD_ALLOW", "allow list entries, such as lhy.kr,@self (required)")
	listen := ef.str("listen", "HOSTGUARD_LISTEN", ":8080", "address to serve on")
	upstream := ef.str("upstream", "HOSTGUARD_UPSTREAM", "", "the application, such as http://127.0.0.1:8000; empty serves a built-in echo backend")
	canonical := ef.str("canonical-host", "HOSTGUARD_CANONICAL_HOST", "", "Host sent upstream in place of an IP literal (default: the first plain name of the list)")
	trusted := ef.list("trusted-proxy", "HOSTGUARD_TRUSTED_PROXY", "addresses or CIDR ranges of proxies in front whose X-Forwarded-* headers are kept")
	allowEmpty := ef.boolean("allow-empty-host", "HOSTGUARD_ALLOW_EMPTY_HOST", "accept requests without a Host (HTTP/1.0, some Classic ELB checks)")
	reportOnly := ef.boolean("report-only", "HOSTGUARD_REPORT_ONLY", "check, log and count every request as usual, but pass on the ones the list rejects (a rollout's first step)")
	metricsAddr := ef.str("metrics", "HOSTGUARD_METRICS", "", "serve Prometheus metrics at /metrics, and the proxy's own liveness at /livez, on this separate address, such as :9090")
	grace := ef.duration("grace", "HOSTGUARD_GRACE", proxy.DefaultGrace, "on SIGTERM, how long requests in flight may finish")
	readHeader := ef.duration("read-header-timeout", "HOSTGUARD_READ_HEADER_TIMEOUT", proxy.DefaultReadHeaderTimeout, "limit for reading a request's headers")
	idle := ef.duration("idle-timeout", "HOSTGUARD_IDLE_TIMEOUT", proxy.DefaultIdleTimeout, "close client keep-alive connections idle this long")
	write := ef.duration("write-timeout", "HOSTGUARD_WRITE_TIMEOUT", proxy.DefaultWriteTimeout, "limit for each write to a client (streams may run longer)")
	body := ef.duration("body-timeout", "HOSTGUARD_BODY_TIMEOUT", proxy.DefaultBodyTimeout, "limit between two reads of a request body (408 past it; uploads that keep moving may run longer)")
	maxHeader := ef.integer("max-header-bytes", "HOSTGUARD_MAX_HEADER_BYTES", proxy.DefaultMaxHeaderBytes, "largest request header block; larger gets 431")
	dialTimeout := ef.duration("upstream-dial-timeout", "HOSTGUARD_UPSTREAM_DIAL_TIMEOUT", proxy.DefaultDialTimeout, "limit for connecting to the upstream")
	respTimeout := ef.duration("upstream-timeout", "HOSTGUARD_UPSTREAM_TIMEOUT", proxy.DefaultResponseTimeout, "limit for waiting on the upstream: for its response headers (504 past it) and between two reads of its body")
	tunnelIdle := ef.duration("tunnel-idle-timeout", "HOSTGUARD_TUNNEL_IDLE_TIMEOUT", proxy.DefaultTunnelIdleTimeout, "close a WebSocket tunnel in which nothing moved either way this long")
	keepUnderscore := ef.boolean("keep-underscore-headers", "HOSTGUARD_KEEP_UNDERSCORE_HEADERS", "pass on header names with '_' (dropped by default, as nginx does: CGI and WSGI servers read X_Forwarded_For as X-Forwarded-For)")
	allowMissing := ef.boolean("allow-missing", "HOSTGUARD_ALLOW_MISSING", "start with the listed names only when discovery of @self fails, and keep retrying")
	refresh := ef.duration("refresh", "HOSTGUARD_REFRESH", 0, "rediscover @self this often (0: only at start and on SIGHUP)")
	logFormat := ef.str("log-format", "HOSTGUARD_LOG_FORMAT", "text", "text or json (the access log's format too)")
	ef.choices("log-format", "text", "json")
	accessLog := ef.str("access-log", "HOSTGUARD_ACCESS_LOG", "", "write a line per request (nginx's combined fields, the Host's verdict, the upstream's time to first byte) to `FILE` (--access-log=FILE), reopened on SIGHUP; --access-log alone (or -) writes to standard error; empty: off")
	ef.Lookup("access-log").NoOptDefVal = stderrAccessLog
	tlsCert := ef.str("tls-cert", "HOSTGUARD_TLS_CERT", "", "serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP")
	tlsKey := ef.str("tls-key", "HOSTGUARD_TLS_KEY", "", "the PEM private key of --tls-cert")
	tlsSelf := ef.boolean("tls-self-signed", "HOSTGUARD_TLS_SELF_SIGNED", "serve HTTPS with a certificate made at start for the canonical host and @self, for load balancers that do not verify their targets (ALB, NLB)")
	// A check is a one-off: a variable that made every start a check
	// would never serve.
	check := ef.boolean("check", "", "validate the flags and the list and exit without discovering or serving")
	df := addDiscoveryFlags(ef)
	return func(args []string) (*proxyConfig, int, bool) {
		fail := e.failer("proxy")
		switch {
		case len(args) > 0 && *accessLog == stderrAccessLog && ef.Changed("access-log"):
			return nil, fail(exitUsage, "unexpected argument %q; to write the access log to it, give --access-log=%s (with =)", args[0], args[0]), false
		case len(args) > 0:
			return nil, fail(exitUsage, "unexpected argument %q", args[0]), false
		case len(*allow) == 0:
			return nil, fail(exitUsage, "no allow list; pass --allow, for example --allow example.com,@self"), false
		case (*tlsCert == "") != (*tlsKey == ""):
			return nil, fail(exitUsage, "--tls-cert and --tls-key go together: give both, or --tls-self-signed"), false
		case *tlsSelf && *tlsCert != "":
			return nil, fail(exitUsage, "--tls-self-signed and --tls-cert exclude each other: pick one"), false
		}
		dopts, err := df.options(e)
		if err != nil {
			return nil, fail(exitUsage, "%v", err), false
		}
		return &proxyConfig{
			allow: *allow, trusted: *trusted, listen: *listen, upstream: *upstream, canonical: *canonical,
			metricsAddr: *metricsAddr, logFormat: *logFormat, tlsCert: *tlsCert, tlsKey: *tlsKey, accessLog: *accessLog,
			allowEmpty: *allowEmpty, reportOnly: *reportOnly, keepUnderscore: *keepUnderscore,
			allowMissing: *allowMissing, tlsSelf: *tlsSelf, check: *check, refresh: *refresh,
			dialTimeout: *dialTimeout, respTimeout: *respTimeout, tunnelIdle: *tunnelIdle,
			server: proxy.ServerOptions{
				ReadHeaderTimeout: *readHeader, IdleTimeout: *idle, WriteTimeout: *write, BodyTimeout: *body,
				MaxHeaderBytes: *maxHeader, Grace: *grace,
			},
			discovery: dopts,
		}, 0, true
	}
}

// proxyRun is a proxy built from its configuration, ready to serve.
type proxyRun struct {
	cfg     *proxyConfig
	log     *slog.Logger
	guard   *hostguard.Guard
	proxy   *proxy.Proxy
	metrics *proxy.Metrics     // nil without --metrics
	cert    *proxy.Certificate // nil for plain HTTP
	up      *url.URL           // nil: the echo backend
	access  *logFile           // the access log file, reopened on SIGHUP; nil: none
	ready   *readiness         // what /readyz answers
}

// build makes the logger, the Guard, the proxy and the certificate. Its
// errors are usage errors: they name the flag or value to fix.
func (c *proxyConfig) build(e *env) (*proxyRun, error) {
	r := &proxyRun{cfg: c}
	switch c.logFormat {
	case "text":
		r.log = slog.New(slog.NewTextHandler(e.stderr, nil))
	case "json":
		r.log = slog.New(slog.NewJSONHandler(e.stderr, nil))
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", c.logFormat)
	}
	if c.upstream != "" {
		// proxy.New says what an upstream URL must be; here it must
		// only parse.
		u, err := url.Parse(c.upstream)
		if err != nil {
			return nil, fmt.Errorf("--upstream %q is not a URL such as http://127.0.0.1:8000", c.upstream)
		}
		r.up = u
	}
	var err error
	switch {
	case c.tlsCert != "":
		if r.cert, err = proxy.LoadCertificate(c.tlsCert, c.tlsKey); err != nil {
			return nil, err
		}
	case c.tlsSelf:
		r.cert = &proxy.Certificate{} // made once @self is known
	}
	if c.metricsAddr != "" {
		r.metrics = proxy.NewMetrics()
		if err := r.metrics.Register(buildInfo()); err != nil {
			return nil, err
		}
	}
	r.guard, err = hostguard.New(hostguard.Options{
		AllowedHosts: c.allow, AllowEmptyHost: c.allowEmpty, TrustedProxies: c.trusted,
		Logger: r.log, ReportOnly: c.reportOnly,
	})
	if err != nil {
		return nil, err
	}
	accessLog, file, err := openAccessLog(c.accessLog, e.stderr)
	if err != nil {
		return nil, err
	}
	r.access = file
	r.proxy, err = proxy.New(proxy.Options{
		Guard: r.guard, Upstream: r.up, CanonicalHost: c.canonical,
		DialTimeout: c.dialTimeout, ResponseTimeout: c.respTimeout, TunnelIdleTimeout: c.tunnelIdle,
		KeepUnderscoreHeaders: c.keepUnderscore, Logger: r.log, Metrics: r.metrics,
		AccessLog: accessLog, AccessLogJSON: c.logFormat == "json",
	})
	return r, err
}

func (r *proxyRun) scheme() string {
	if r.cert != nil {
		return "https"
	}
	return "http"
}

func runProxy(e *env, cfg *proxyConfig) int {
	fail := e.failer("proxy")
	r, err := cfg.build(e)
	if r != nil && r.access != nil {
		defer r.access.Close()
	}
	if err != nil {
		// The library's errors start with its name; the command's is enough.
		return fail(exitUsage, "%s", errText(err))
	}
	if cfg.check {
		fmt.Fprintf(e.stdout, "ok: would serve %s on %s for %s, allow %s, canonical host %q\n",
			r.scheme(), cfg.listen, upstreamName(r.up), strings.Join(cfg.allow, ","), r.proxy.Canonical())
		return exitOK
	}
	if e.getenv("GOGC") == "" {
		// The live heap is a few MB; collecting four times less often
		// costs little memory and a measurable share of CPU per request.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return r.serve(ctx, fail)
}

// serve starts the metrics listener (so that /readyz answers 503 while
// @self is discovered), discovers @self, starts the proxy's listener and
// serves until ctx ends.
func (r *proxyRun) serve(ctx context.Context, fail func(int, string, ...any) int) int {
	cfg, log := r.cfg, r.log
	r.ready = newReadiness(r.up, cfg.dialTimeout, len(r.guard.Entries()))
	if r.metrics != nil {
		if err := r.serveMetrics(ctx); err != nil {
			return fail(exitFail, "%v", err)
		}
	}
	retry, err := r.fillSelf(ctx)
	if err != nil {
		return fail(exitFail, "not starting: discovery of @self failed: %s\n(start with the listed names only with --allow-missing)", flagWords(err))
	}
	if cfg.tlsSelf {
		r.selfSign()
	}
	go keepSelf(ctx, r.guard, cfg.discovery, retry, log, r.metrics, r.ready, r.onHUP)

	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fail(exitFail, "listening on %s: %v", cfg.listen, err)
	}
	r.ready.setListening(l.Addr().String())
	if cfg.reportOnly {
		log.Warn("hostguard proxy: REPORT-ONLY: nothing is enforced; requests the list rejects are logged, counted (enforced=\"false\") and passed on to the application")
	}
	so := cfg.server
	so.Logger = log
	if r.cert != nil {
		so.TLSConfig = r.cert.TLSConfig()
	}
	log.Info("hostguard proxy: serving", "listen", l.Addr().String(), "scheme", r.scheme(), "upstream", upstreamName(r.up),
		"allow", strings.Join(r.guard.Entries(), ","), "canonical_host", r.proxy.Canonical(), "self", addrStrings(r.guard.Self()),
		"trusted_proxies", strings.Join(cfg.trusted, ","))
	if err := r.proxy.Serve(ctx, l, so); err != nil {
		log.Error("hostguard proxy: stopped", "error", err.Error())
		return exitFail
	}
	log.Info("hostguard proxy: stopped after draining requests in flight")
	return exitOK
}

// fillSelf discovers @self when the list holds it, and returns how often
// to rediscover: --refresh, or every 30 s while discovery fails under
// --allow-missing. Without --allow-missing a failure is returned.
func (r *proxyRun) fillSelf(ctx context.Context) (time.Duration, error) {
	retry := r.cfg.refresh
	if !r.guard.HasSelf() {
		r.ready.setSelf(true, "@self not in the list")
		return retry, nil
	}
	res, err := discover.Fill(ctx, r.guard, r.cfg.discovery)
	switch {
	case err != nil && !r.cfg.allowMissing:
		return 0, err
	case err != nil:
		r.log.Warn("hostguard proxy: @self is empty, discovery failed; serving the listed names only and retrying", "error", flagWords(err))
		r.ready.setSelf(true, "@self missing (--allow-missing: serving the listed names only and retrying): discovery failed: "+strings.ReplaceAll(flagWords(err), "\n", "; "))
		if retry == 0 {
			retry = 30 * time.Second
		}
	default:
		logSelf(r.log, res)
		r.ready.setSelf(true, selfState(r.guard))
	}
	if r.metrics != nil {
		r.metrics.SetSelf(len(r.guard.Self()))
	}
	return retry, nil
}

// selfSign makes the self-signed certificate for what the load balancer may
// address: the canonical host, @self and loopback, each once.
func (r *proxyRun) selfSign() {
	addrs := certAddrs(r.guard.Self())
	var names []string
	if c := r.proxy.Canonical(); c != "" {
		names = append(names, strings.SplitN(c, ":", 2)[0])
	}
	if err := r.cert.SelfSigned(names, addrs); err != nil {
		r.log.Error("hostguard proxy: making a self-signed certificate failed", "error", err.Error())
	}
}

// onHUP runs after SIGHUP rediscovered @self: it reopens the access log
// file (logrotate renamed it), and reloads the certificate files, or makes
// a new self-signed certificate for the new addresses.
func (r *proxyRun) onHUP() {
	if r.access != nil {
		if err := r.access.Reopen(); err != nil {
			r.log.Warn("hostguard proxy: reopening the access log failed; writing on to the previous file", "error", err.Error())
		}
	}
	switch {
	case r.cfg.tlsSelf:
		r.selfSign()
	case r.cert != nil:
		if err := r.cert.Load(r.cfg.tlsCert, r.cfg.tlsKey); err != nil {
			r.log.Warn("hostguard proxy: reloading the TLS certificate failed; keeping the previous one", "error", err.Error())
		} else {
			r.log.Info("hostguard proxy: TLS certificate reloaded", "cert", r.cfg.tlsCert)
		}
	}
}

// serveMetrics serves /metrics and /livez on their own listener until ctx
// ends.
func (r *proxyRun) serveMetrics(ctx context.Context) error {
	ml, err := net.Listen("tcp", r.cfg.metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: listening on %s: %w", r.cfg.metricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.metrics.Handler())
	// The proxy's own liveness, for a liveness probe that must not restart
	// the proxy because the app behind it is slow.
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	// Readiness: whether the proxy can serve what the load balancer sends.
	mux.Handle("/readyz", r.ready)
	go func() { _ = proxy.ServeHandler(ctx, ml, mux, proxy.ServerOptions{Logger: r.log, Grace: time.Second}) }()
	r.log.Info("hostguard proxy: metrics", "listen", ml.Addr().String(), "path", "/metrics")
	return nil
}

func upstreamName(u *url.URL) string {
	if u == nil {
		return "built-in echo backend"
	}
	return u.String()
}

func logSelf(log *slog.Logger, res *discover.Result) {
	for _, a := range res.Addresses {
		log.Info("hostguard proxy: @self", "address", a.Addr.String(), "sources", strings.Join(a.Sources, ", "), "platform", res.Platform.String())
	}
}

// keepSelf refreshes @self periodically through discover.Watch (when the
// list holds @self and every > 0) and on SIGHUP, and then calls onHUP. A
// failed refresh keeps the previous addresses.
func keepSelf(ctx context.Context, g *hostguard.Guard, o discover.Options, every time.Duration, log *slog.Logger, m *proxy.Metrics, ready *readiness, onHUP func()) {
	report := func(res *discover.Result, err error) {
		if err != nil {
			log.Warn("hostguard proxy: refreshing @self failed; keeping the previous addresses", "error", flagWords(err))
			return
		}
		logSelf(log, res)
		ready.setSelf(true, selfState(g))
		if m != nil {
			m.SetSelf(len(g.Self()))
		}
	}
	if g.HasSelf() && every > 0 {
		go discover.Watch(ctx, g, o, every, report)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if g.HasSelf() {
				report(discover.Fill(ctx, g, o))
			}
			onHUP()
		}
	}
}

// addrStrings returns addresses as strings, for logs: a JSON log holds
// them as an array.
func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// certAddrs is @self and loopback, each once, in that order.
func certAddrs(self []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range append(slices.Clone(self), netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()) {
		if a = a.Unmap(); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// selfState is @self's state for /readyz.
func selfState(g *hostguard.Guard) string {
	return fmt.Sprintf("@self discovered (%s)", strings.Join(addrStrings(g.Self()), ", "))
}
