// Package probe sends the health check a load balancer sends and explains a
// failure: the Host a checker uses, its User-Agent, its success codes, and
// the likely cause and fix when the answer is not healthy.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Checker names the health checker to imitate.
type Checker string

// The checkers.
const (
	ELB        Checker = "elb"         // ALB / NLB HTTP target groups
	ClassicELB Checker = "classic-elb" // Classic Load Balancer
	Kubernetes Checker = "k8s"         // kubelet probes
	GCE        Checker = "gce"         // Google Cloud load balancers
	AzureAppGW Checker = "azure-appgw" // Azure Application Gateway default probe
)

// Checkers returns every checker, in the order of the documentation.
func Checkers() []Checker { return []Checker{ELB, ClassicELB, Kubernetes, GCE, AzureAppGW} }

// profile is what a checker sends and accepts.
type profile struct {
	userAgent string
	host      func(ip netip.Addr, port string) string // the Host it sends
	expect    string                                  // default success codes
}

var profiles = map[Checker]profile{
	ELB:        {"ELB-HealthChecker/2.0", hostPort, "200"},
	ClassicELB: {"ELB-HealthChecker/1.0", hostPort, "200"},
	Kubernetes: {"kube-probe/1.31", hostPort, "200-399"},
	GCE:        {"GoogleHC/1.0", hostOnly, "200"},
	AzureAppGW: {"", func(netip.Addr, string) string { return "127.0.0.1" }, "200-399"},
}

func hostPort(ip netip.Addr, port string) string { return net.JoinHostPort(ip.String(), port) }
func hostOnly(ip netip.Addr, _ string) string {
	if ip.Is6() {
		return "[" + ip.String() + "]"
	}
	return ip.String()
}

// ParseChecker parses a checker name.
func ParseChecker(s string) (Checker, error) {
	for _, c := range Checkers() {
		if string(c) == s {
			return c, nil
		}
	}
	names := make([]string, len(Checkers()))
	for i, c := range Checkers() {
		names[i] = string(c)
	}
	return "", fmt.Errorf("unknown checker %q; use one of %s", s, strings.Join(names, ", "))
}

// Codes is a set of success codes such as "200" or "200-399,401".
type Codes []Range

// Range is the status codes from Lo to Hi, both included.
type Range struct{ Lo, Hi int }

// ParseCodes parses a comma-separated list of codes and ranges.
func ParseCodes(s string) (Codes, error) {
	var c Codes
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("invalid status codes %q: write codes and ranges from 100 to 599, such as 200 or 200-399,401", s)
		}
		c = append(c, Range{a, b})
	}
	return c, nil
}

// Match reports whether code is in the set.
func (c Codes) Match(code int) bool {
	for _, r := range c {
		if r.Lo <= code && code <= r.Hi {
			return true
		}
	}
	return false
}

// Options configures [Run].
type Options struct {
	URL     string        // the target, such as http://10.0.1.23:8000/health/
	As      Checker       // default ELB
	Host    string        // the application's real name, for the comparison request
	Expect  string        // success codes; default the checker's
	Timeout time.Duration // per request; default 5s
}

// Exchange is one request the probe sent and what came back.
type Exchange struct {
	Method, URL, Host, UserAgent string
	Status                       int    // 0 when no answer
	Location                     string // of a redirect
	Body                         string // the first KiB
	Err                          error
	Duration                     time.Duration
}

// Result is the verdict.
type Result struct {
	Healthy    bool
	Check      Exchange  // the load balancer's request
	Comparison *Exchange // the same request with the real name, when one was sent
	Cause, Fix string    // for an unhealthy result
}

// Run sends the checker's request to the target and, for a rejection,
// a comparison request with the application's name.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.As == "" {
		o.As = ELB
	}
	prof, ok := profiles[o.As]
	if !ok {
		return nil, fmt.Errorf("unknown checker %q", o.As)
	}
	if o.Expect == "" {
		o.Expect = prof.expect
	}
	codes, err := ParseCodes(o.Expect)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	target, ip, port, name, err := resolveTarget(ctx, o.URL, o.Timeout)
	if err != nil {
		return nil, err
	}

	res := &Result{}
	res.Check = send(ctx, o.Timeout, target, prof.host(ip, port), prof.userAgent, nil)
	res.Healthy = res.Check.Err == nil && codes.Match(res.Check.Status)
	if res.Healthy {
		return res, nil
	}
	compareHost := o.Host
	if compareHost == "" {
		compareHost = name
	}
	if compareHost != "" && res.Check.Err == nil && isRejection(res.Check.Status) {
		c := send(ctx, o.Timeout, target, compareHost, prof.userAgent, nil)
		res.Comparison = &c
	}
	res.Cause, res.Fix = diagnose(res, codes, compareHost)
	return res, nil
}

// resolveTarget parses the target URL and, since a load balancer addresses
// a target by its IP, resolves a name in it. It returns the URL with the
// address in place of the name, the address, the port and the name ("" for
// an address).
func resolveTarget(ctx context.Context, raw string, timeout time.Duration) (*url.URL, netip.Addr, string, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, netip.Addr{}, "", "", fmt.Errorf("invalid URL %q: write the target as http://10.0.1.23:8000/health/", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	name := ""
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		name = u.Hostname()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", name)
		cancel()
		if err != nil || len(ips) == 0 {
			return nil, netip.Addr{}, "", "", fmt.Errorf("resolving %s: %v", name, err)
		}
		ip = ips[0].Unmap()
	}
	target := *u
	target.Host = net.JoinHostPort(ip.String(), port)
	return &target, ip, port, name, nil
}

// send sends one check. tlsConf (nil: the default) is the client's TLS
// configuration; it never verifies the target, as load balancers do not.
func send(ctx context.Context, timeout time.Duration, u *url.URL, host, ua string, tlsConf *tls.Config) Exchange {
	ex := Exchange{Method: "GET", URL: u.String(), Host: host, UserAgent: ua}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		ex.Err = err
		return ex
	}
	req.Host = host
	req.Close = true // Connection: close, as load balancers send
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	tlsConf = tlsConf.Clone()
	tlsConf.InsecureSkipVerify = true // load balancers do not verify their targets
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	} else {
		req.Header["User-Agent"] = nil // no User-Agent at all
	}
	client := &http.Client{
		// Load balancers do not verify their targets' certificates.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: tlsConf},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, // checkers never follow
	}
	start := time.Now()
	resp, err := client.Do(req)
	ex.Duration = time.Since(start)
	if err != nil {
		ex.Err = err
		return ex
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	ex.Status, ex.Body, ex.Location = resp.StatusCode, string(b), resp.Header.Get("Location")
	return ex
}

// diagnose names the most likely cause of an unhealthy result and its fix.
func diagnose(res *Result, codes Codes, compareHost string) (cause, fix string) {
	c := res.Check
	if c.Err != nil {
		return diagnoseFailure(&c)
	}
	body := strings.ToLower(c.Body)
	switch {
	case c.Status == 400 && strings.Contains(body, "http request to an https server"):
		return "the target speaks TLS on " + hostOfURL(c.URL) + " and got plain HTTP",
			"check over https:// (an HTTPS target group), or serve plain HTTP there"
	case isRejection(c.Status):
		return diagnoseRejection(res, codes, compareHost, rejecter(body))
	case c.Status >= 300 && c.Status < 400:
		fix := "health checks never follow redirects: serve the health path without one, or add the code to the target group's success codes (matcher)"
		if strings.HasPrefix(c.Location, "https:") {
			fix = "the app redirects plain HTTP to https (Django SECURE_SSL_REDIRECT, Rails force_ssl): exempt the health path (SECURE_REDIRECT_EXEMPT = [r'^health/$'], config.ssl_options = { redirect: { exclude: ... } }) or check over https"
		}
		return fmt.Sprintf("the app redirects (%d to %s)", c.Status, orNone(c.Location)), fix
	case c.Status == 404:
		return "the health path does not exist (404)", "set the target group's health check path to a route the app serves, or add one (a view that returns 200)"
	case c.Status == 401:
		return "the health path needs authentication (401)", "make the health path public"
	case c.Status >= 500:
		return fmt.Sprintf("the app fails (%d)", c.Status),
			"look at the app's log; a 502, 503 or 504 from a proxy in front means the app behind it is down or slow"
	}
	return fmt.Sprintf("status %d is not a success code", c.Status), "change the app's answer or the expected codes (--expect, the target group's matcher)"
}

// diagnoseFailure explains a check that got no HTTP answer.
func diagnoseFailure(c *Exchange) (cause, fix string) {
	var ne net.Error
	var re tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.As(c.Err, &re), strings.Contains(c.Err.Error(), "server gave HTTP response to HTTPS client"):
		return "the target speaks plain HTTP on " + hostOfURL(c.URL) + ", not TLS",
			"check over http://, or serve HTTPS there (hostguard proxy --tls-cert FILE --tls-key FILE, or --tls-self-signed): an HTTPS target group needs a TLS listener"
	case errors.As(c.Err, &ae), strings.Contains(c.Err.Error(), "tls:"):
		return "the TLS handshake with " + hostOfURL(c.URL) + " failed: " + c.Err.Error(),
			"the target and the load balancer share no protocol version or cipher (hostguard serves TLS 1.2 and 1.3; the load balancer's security policy must allow one of them); the certificate is not the cause: load balancers do not verify their targets"
	case errors.Is(c.Err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens on " + hostOfURL(c.URL),
			"start the app, and make it listen on all interfaces (0.0.0.0 or the instance address), not only 127.0.0.1, on the port the target group uses"
	case errors.As(c.Err, &ne) && ne.Timeout(), errors.Is(c.Err, context.DeadlineExceeded):
		return "no answer in time from " + hostOfURL(c.URL),
			"a security group or firewall drops the load balancer's packets to that port, or the app hangs on the health path; allow the load balancer's security group and make the health view answer fast"
	}
	return "the request failed: " + c.Err.Error(), "check that the URL is the target's address, port and scheme"
}

// diagnoseRejection explains a 400, 403 or 421, written by app: the
// allow-list problem when the comparison with the real name passed.
func diagnoseRejection(res *Result, codes Codes, compareHost, app string) (cause, fix string) {
	c := res.Check
	if other := res.Comparison; other != nil && other.Err == nil && codes.Match(other.Status) {
		return fmt.Sprintf("allow-list problem: %s answered %d to the load balancer's Host %q but %d to Host %q; the app's Host allow list does not hold the address the load balancer uses", app, c.Status, c.Host, other.Status, other.Host),
			"let the instance's own addresses in: add @self with hostguard (hostguard exec --allow " + compareHost + ",@self --env DJANGO_ALLOWED_HOSTS -- <your server>, or hostguard proxy --allow " + compareHost + ",@self in front of the app), or add the private address or its CIDR range to ALLOWED_HOSTS / config.hosts"
	}
	if other := res.Comparison; other != nil && other.Err == nil && other.Status != c.Status && !isRejection(other.Status) {
		// The Host decides the rejection, and with an allowed Host the
		// health path fails for another reason: both need fixing.
		next, nextFix := diagnose(&Result{Check: *other}, codes, "")
		return fmt.Sprintf("two problems: allow-list problem: %s answered %d to the load balancer's Host %q but %d to Host %q, so the app's Host allow list does not hold the address the load balancer uses; and with the allowed Host: %s", app, c.Status, c.Host, other.Status, other.Host, next),
			"let the instance's own addresses in: add @self with hostguard (hostguard exec or hostguard proxy with --allow " + compareHost + ",@self), or the private address or its CIDR range to ALLOWED_HOSTS / config.hosts; then: " + nextFix
	}
	if other := res.Comparison; other != nil && other.Err == nil {
		if other.Status == c.Status {
			return fmt.Sprintf("%s answered %d to both Host %q and Host %q: the rejection is not about the load balancer's Host", app, c.Status, c.Host, other.Host),
				"look at the app's log for why it rejects the health path (CSRF, authentication, a path the app does not serve as GET)"
		}
		return fmt.Sprintf("%s answered %d to Host %q and %d to Host %q: the health path is refused whatever the Host, so the rejection is not (only) about the load balancer's Host", app, c.Status, c.Host, other.Status, other.Host),
			"look at the app's log for why it refuses the health path (CSRF, authentication, a path the app does not serve as GET)"
	}
	if other := res.Comparison; other != nil {
		return fmt.Sprintf("%s answered %d to the load balancer's Host %q; the same request with Host %q got no answer (%v)", app, c.Status, c.Host, other.Host, other.Err),
			"run again; if the app answers with its real name, compare the two: a difference means the allow list lacks the load balancer's Host (add @self)"
	}
	if app != "the app" {
		return fmt.Sprintf("allow-list problem: %s rejected the load balancer's Host %q (%d)", app, c.Host, c.Status),
			"add @self (hostguard exec or hostguard proxy) or the private address to the app's allow list; run again with --host <your domain> to confirm"
	}
	return fmt.Sprintf("the app answered %d to Host %q", c.Status, c.Host),
		"if the app checks the Host, that is the allow-list problem: run again with --host <your domain> to compare, and add @self to the list"
}

// isRejection reports whether a status is one an allow list answers with:
// 400 (Django, hostguard), 403 (Rails) or 421 (Misdirected Request).
func isRejection(status int) bool { return status == 400 || status == 403 || status == 421 }

// rejecter recognises who wrote a rejection page.
func rejecter(body string) string {
	switch {
	case strings.Contains(body, "disallowedhost") || strings.Contains(body, "invalid http_host header"):
		return "Django (DisallowedHost)"
	case strings.Contains(body, "bad request (400)"):
		return "Django (its 400 page, as for DisallowedHost)"
	case strings.Contains(body, "blocked host"):
		return "Rails (HostAuthorization)"
	case strings.Contains(body, "invalid host header"):
		return "hostguard"
	}
	return "the app"
}

func hostOfURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Host
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "no Location"
	}
	return s
}
