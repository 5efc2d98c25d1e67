package main

import (
	"context"
	"crypto/tls"
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
	"strings"
	"syscall"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/discover"
	"github.com/hostguard/hostguard/proxy"
)

const proxyArgs = "--allow LIST [--listen ADDR] [--upstream URL] [--canonical-host H] [--trusted-proxy CIDR] [--metrics ADDR] [discovery flags]"

func runProxy(e *env, args []string) int {
	ef := newEnvFlags(e, "proxy", proxyArgs)
	fs := ef.fs
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
	logFormat := ef.str("log-format", "HOSTGUARD_LOG_FORMAT", "text", "text or json")
	tlsCert := ef.str("tls-cert", "HOSTGUARD_TLS_CERT", "", "serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP")
	tlsKey := ef.str("tls-key", "HOSTGUARD_TLS_KEY", "", "the PEM private key of --tls-cert")
	tlsSelf := ef.boolean("tls-self-signed", "HOSTGUARD_TLS_SELF_SIGNED", "serve HTTPS with a certificate made at start for the canonical host and @self, for load balancers that do not verify their targets (ALB, NLB)")
	check := fs.Bool("check", false, "validate the flags and the list and exit without discovering or serving")
	df := addDiscoveryFlags(ef)
	if code, ok := ef.parse(args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(e.stderr, "hostguard proxy: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "unexpected argument %q", fs.Arg(0))
	}
	if len(*allow) == 0 {
		return fail(exitUsage, "no allow list; pass --allow, for example --allow example.com,@self")
	}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(e.stderr, nil))
	case "json":
		log = slog.New(slog.NewJSONHandler(e.stderr, nil))
	default:
		return fail(exitUsage, "--log-format %q: use text or json", *logFormat)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fail(exitUsage, "--tls-cert and --tls-key go together: give both, or --tls-self-signed")
	}
	if *tlsSelf && *tlsCert != "" {
		return fail(exitUsage, "--tls-self-signed and --tls-cert exclude each other: pick one")
	}
	var cert *proxy.Certificate
	if *tlsCert != "" {
		c, err := proxy.LoadCertificate(*tlsCert, *tlsKey)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		cert = c
	}
	var up *url.URL
	if *upstream != "" {
		u, err := url.Parse(*upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail(exitUsage, "--upstream %q is not a URL such as http://127.0.0.1:8000", *upstream)
		}
		up = u
	}
	var metrics *proxy.Metrics
	gopts := hostguard.Options{AllowedHosts: *allow, AllowEmptyHost: *allowEmpty, TrustedProxies: *trusted, Logger: log, ReportOnly: *reportOnly}
	if *metricsAddr != "" {
		metrics = proxy.NewMetrics() // the proxy counts rejections itself
	}
	g, err := hostguard.New(gopts)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	p, err := proxy.New(proxy.Options{
		Guard: g, Upstream: up, CanonicalHost: *canonical,
		DialTimeout: *dialTimeout, ResponseTimeout: *respTimeout, TunnelIdleTimeout: *tunnelIdle,
		KeepUnderscoreHeaders: *keepUnderscore, Logger: log, Metrics: metrics,
	})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	dopts, err := df.options(e)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	scheme := "http"
	if cert != nil || *tlsSelf {
		scheme = "https"
	}
	if *check {
		fmt.Fprintf(e.stdout, "ok: would serve %s on %s for %s, allow %s, canonical host %q\n", scheme, *listen, upstreamName(up), strings.Join(*allow, ","), p.Canonical())
		return exitOK
	}

	if e.getenv("GOGC") == "" {
		// The live heap is a few MB; collecting four times less often
		// costs little memory and a measurable share of CPU per request.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	retry := *refresh
	if g.HasSelf() {
		res, err := discover.Fill(ctx, g, dopts)
		switch {
		case err != nil && !*allowMissing:
			return fail(exitFail, "not starting: discovery of @self failed: %s\n(start with the listed names only with --allow-missing)", flagWords(err))
		case err != nil:
			log.Warn("hostguard proxy: @self is empty, discovery failed; serving the listed names only and retrying", "error", flagWords(err))
			if retry == 0 {
				retry = 30 * time.Second
			}
		default:
			logSelf(log, res)
		}
		if metrics != nil {
			metrics.SetSelf(len(g.Self()))
		}
	}
	// The self-signed certificate names what the load balancer may
	// address: the canonical host, @self and loopback.
	selfSign := func() {
		addrs := append(g.Self(), netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback())
		var names []string
		if p.Canonical() != "" {
			names = append(names, strings.SplitN(p.Canonical(), ":", 2)[0])
		}
		if err := cert.SelfSigned(names, addrs); err != nil {
			log.Error("hostguard proxy: making a self-signed certificate failed", "error", err.Error())
		}
	}
	if *tlsSelf {
		cert = &proxy.Certificate{}
		selfSign()
	}
	// SIGHUP rediscovers @self and reloads the certificate (files), or
	// makes a new one for the new addresses (self-signed).
	onHUP := func() {
		switch {
		case *tlsSelf:
			selfSign()
		case cert != nil:
			if err := cert.Load(*tlsCert, *tlsKey); err != nil {
				log.Warn("hostguard proxy: reloading the TLS certificate failed; keeping the previous one", "error", err.Error())
			} else {
				log.Info("hostguard proxy: TLS certificate reloaded", "cert", *tlsCert)
			}
		}
	}
	go keepSelf(ctx, g, dopts, retry, log, metrics, onHUP)

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(exitFail, "listening on %s: %v", *listen, err)
	}
	if metrics != nil {
		ml, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			l.Close()
			return fail(exitFail, "metrics: listening on %s: %v", *metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		// The proxy's own liveness, for a liveness probe that must not
		// restart the proxy because the app behind it is slow.
		mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		go func() { _ = proxy.ServeHandler(ctx, ml, mux, proxy.ServerOptions{Logger: log, Grace: time.Second}) }()
		log.Info("hostguard proxy: metrics", "listen", ml.Addr().String(), "path", "/metrics")
	}
	if g.ReportOnly() {
		log.Warn("hostguard proxy: REPORT-ONLY: nothing is enforced; requests the list rejects are logged, counted (enforced=\"false\") and passed on to the application")
	}
	var tlsConfig *tls.Config
	if cert != nil {
		tlsConfig = cert.TLSConfig()
	}
	log.Info("hostguard proxy: serving", "listen", l.Addr().String(), "scheme", scheme, "upstream", upstreamName(up),
		"allow", strings.Join(g.Entries(), ","), "canonical_host", p.Canonical(), "self", fmt.Sprint(g.Self()),
		"trusted_proxies", strings.Join(*trusted, ","))
	err = p.Serve(ctx, l, proxy.ServerOptions{
		ReadHeaderTimeout: *readHeader, IdleTimeout: *idle, WriteTimeout: *write, BodyTimeout: *body,
		MaxHeaderBytes: *maxHeader, Grace: *grace, Logger: log, TLSConfig: tlsConfig,
	})
	if err != nil {
		log.Error("hostguard proxy: stopped", "error", err.Error())
		return exitFail
	}
	log.Info("hostguard proxy: stopped after draining requests in flight")
	return exitOK
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
func keepSelf(ctx context.Context, g *hostguard.Guard, o discover.Options, every time.Duration, log *slog.Logger, m *proxy.Metrics, onHUP func()) {
	report := func(res *discover.Result, err error) {
		if err != nil {
			log.Warn("hostguard proxy: refreshing @self failed; keeping the previous addresses", "error", flagWords(err))
			return
		}
		logSelf(log, res)
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
