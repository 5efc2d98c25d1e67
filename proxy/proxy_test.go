package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/internal/syncbuf"
)

// seen is what the recording upstream received.
type seen struct {
	Host, XFH, XFF, XFP, Forwarded string
}

// recordingUpstream records every request's Host and forwarded headers.
type recordingUpstream struct {
	mu   sync.Mutex
	reqs []seen
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	all := func(k string) string { return strings.Join(r.Header.Values(k), ", ") } // every line of a repeated header
	u.reqs = append(u.reqs, seen{r.Host, all("X-Forwarded-Host"), all("X-Forwarded-For"), all("X-Forwarded-Proto"), all("Forwarded")})
	u.mu.Unlock()
	switch r.URL.Path {
	case "/slow":
		time.Sleep(2 * time.Second)
	case "/sum":
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		return
	}
	fmt.Fprint(w, "app ok")
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *recordingUpstream) last() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.reqs[len(u.reqs)-1]
}

// assertAllAllowed checks that the upstream never saw a Host or
// X-Forwarded-Host outside the list.
func (u *recordingUpstream) assertAllAllowed(t *testing.T, g *hostguard.Guard, reportOnly bool) {
	if reportOnly {
		return // it lets through what the list rejects, on purpose
	}
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.reqs {
		if !g.Allow(s.Host) {
			t.Errorf("upstream saw Host %q outside the allow list", s.Host)
		}
		for _, x := range strings.Split(s.XFH, ",") {
			if x = strings.TrimSpace(x); x != "" && !g.Allow(x) {
				t.Errorf("upstream saw X-Forwarded-Host %q outside the allow list", x)
			}
		}
	}
}

type fixture struct {
	url      string // the proxy
	addr     string
	guard    *hostguard.Guard
	upstream *recordingUpstream
	stop     context.CancelFunc
	done     chan error
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start serves a proxy with Proxy.Serve, the production server.
func start(t *testing.T, gopts hostguard.Options, popts Options, sopts ServerOptions) *fixture {
	t.Helper()
	return startWith(t, gopts, popts, sopts, (*Proxy).Serve)
}

// startHandler serves a proxy as an http.Handler on net/http (Serve), the
// form for embedding.
func startHandler(t *testing.T, gopts hostguard.Options, popts Options, sopts ServerOptions) *fixture {
	t.Helper()
	return startWith(t, gopts, popts, sopts, func(p *Proxy, ctx context.Context, l net.Listener, o ServerOptions) error {
		return ServeHandler(ctx, l, p, o)
	})
}

// bothServers names the two ways to serve a Proxy, for tests that must
// hold on both.
var bothServers = map[string]func(*testing.T, hostguard.Options, Options, ServerOptions) *fixture{
	"Serve": start, "net/http": startHandler,
}

func startWith(t *testing.T, gopts hostguard.Options, popts Options, sopts ServerOptions,
	serve func(*Proxy, context.Context, net.Listener, ServerOptions) error) *fixture {
	t.Helper()
	f := &fixture{upstream: &recordingUpstream{}}
	if popts.Upstream == nil {
		up := httptest.NewServer(f.upstream)
		t.Cleanup(up.Close)
		popts.Upstream, _ = url.Parse(up.URL)
	}
	if gopts.Logger == nil {
		gopts.Logger = quiet()
	}
	g, err := hostguard.New(gopts)
	if err != nil {
		t.Fatal(err)
	}
	f.guard = g
	popts.Guard, popts.Logger = g, quiet()
	p, err := New(popts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.url = "http://" + f.addr
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan error, 1)
	if sopts.Logger == nil {
		sopts.Logger = quiet()
	}
	go func() { f.done <- serve(p, ctx, l, sopts) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
		f.upstream.assertAllAllowed(t, g, gopts.ReportOnly)
	})
	return f
}

func get(t *testing.T, rawURL, host string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	req.Host = host
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGoodAndBadHost(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr", "@self"}}, Options{}, ServerOptions{})
	if code, body := get(t, f.url+"/", "lhy.kr", nil); code != 200 || body != "app ok" {
		t.Fatalf("good host: %d %q", code, body)
	}
	if s := f.upstream.last(); s.Host != "lhy.kr" || s.XFH != "lhy.kr" || s.XFF != "127.0.0.1" || s.XFP != "http" {
		t.Errorf("upstream saw %+v", s)
	}
	n := len(f.upstream.reqs)
	if code, body := get(t, f.url+"/", "evil.example", nil); code != 400 || strings.Contains(body, "evil") {
		t.Errorf("bad host: %d %q", code, body)
	}
	if len(f.upstream.reqs) != n {
		t.Error("a rejected request reached the upstream")
	}
}

func TestSelfRewrite(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr", "@self"}}, Options{}, ServerOptions{})
	f.guard.SetSelf([]netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("fd00::23")})
	for _, host := range []string{"10.0.1.23:80", "10.0.1.23", "[fd00::23]:8080"} {
		code, _ := get(t, f.url+"/health", host, map[string]string{"User-Agent": "ELB-HealthChecker/2.0"})
		if s := f.upstream.last(); code != 200 || s.Host != "lhy.kr" || s.XFH != host {
			t.Errorf("health check with Host %q: %d, upstream saw %+v", host, code, s)
		}
	}
	if code, _ := get(t, f.url+"/health", "10.0.1.24:80", nil); code != 400 {
		t.Errorf("another instance's address: %d", code)
	}
}

func TestCanonicalHostOption(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"a.lhy.kr", "www.lhy.kr", "10.0.0.0/8"}}, Options{CanonicalHost: "www.lhy.kr"}, ServerOptions{})
	get(t, f.url+"/", "10.1.2.3", nil)
	if s := f.upstream.last(); s.Host != "www.lhy.kr" || s.XFH != "10.1.2.3" {
		t.Errorf("upstream saw %+v", s)
	}
	get(t, f.url+"/", "a.lhy.kr", nil)
	if s := f.upstream.last(); s.Host != "a.lhy.kr" {
		t.Errorf("names pass unchanged: %+v", s)
	}
}

func TestNewErrors(t *testing.T) {
	g, _ := hostguard.New(hostguard.Options{AllowedHosts: []string{".lhy.kr", "@self"}})
	if _, err := New(Options{Guard: g}); err == nil || !strings.Contains(err.Error(), "--canonical-host") {
		t.Errorf("no canonical host: %v", err)
	}
	if _, err := New(Options{Guard: g, CanonicalHost: "other.example"}); err == nil || !strings.Contains(err.Error(), `"other.example"`) {
		t.Errorf("canonical outside the list: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("no Guard accepted")
	}
	u, _ := url.Parse("ftp://x")
	if _, err := New(Options{Guard: g, CanonicalHost: "a.lhy.kr", Upstream: u}); err == nil || !strings.Contains(err.Error(), "ftp://x") {
		t.Errorf("bad upstream: %v", err)
	}
	g2, _ := hostguard.New(hostguard.Options{AllowedHosts: []string{"@self", ".a.example", "*.b.example", "10.0.0.1", "[::1]:80", "c.example:8443", "D.Example.", "e.example"}})
	if p, err := New(Options{Guard: g2}); err != nil || p.Canonical() != "d.example" {
		t.Errorf("default canonical host: %v %v", p, err)
	}
}

func TestSpoofedForwardedHeaders(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{})
	code, _ := get(t, f.url+"/", "lhy.kr", map[string]string{
		"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
		"Forwarded": "for=6.6.6.6;host=evil.example;proto=https",
	})
	s := f.upstream.last()
	if code != 200 || s.XFF != "127.0.0.1" || s.XFP != "http" || s.XFH != "lhy.kr" || s.Forwarded != "" {
		t.Errorf("spoofed headers passed: %d %+v", code, s)
	}
}

func TestTrustedProxy(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}, TrustedProxies: []string{"127.0.0.0/8"}},
		Options{}, ServerOptions{})
	code, _ := get(t, f.url+"/", "lhy.kr", map[string]string{
		"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "lhy.kr",
	})
	s := f.upstream.last()
	if code != 200 || s.XFF != "203.0.113.5, 127.0.0.1" || s.XFP != "https" || s.XFH != "lhy.kr" {
		t.Errorf("trusted proxy's headers: %d %+v", code, s)
	}
	if code, _ := get(t, f.url+"/", "lhy.kr", map[string]string{"X-Forwarded-Host": "evil.example"}); code != 400 {
		t.Errorf("trusted proxy's evil X-Forwarded-Host: %d", code)
	}
}

func TestUpstreamDownThenUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	u, _ := url.Parse("http://" + addr)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	if code, body := get(t, f.url+"/", "lhy.kr", nil); code != http.StatusBadGateway || !strings.Contains(body, "502") {
		t.Fatalf("upstream down: %d %q", code, body)
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	up := &http.Server{Handler: f.upstream}
	go func() { _ = up.Serve(l) }()
	defer up.Close()
	if code, body := get(t, f.url+"/", "lhy.kr", nil); code != 200 || body != "app ok" {
		t.Errorf("upstream back: %d %q", code, body)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{ResponseTimeout: 200 * time.Millisecond}, ServerOptions{})
	if code, _ := get(t, f.url+"/slow", "lhy.kr", nil); code != http.StatusGatewayTimeout {
		t.Errorf("slow upstream: %d, want 504", code)
	}
}

// TestGracefulDrain starts requests that are in flight when the server is
// told to stop: every one must complete, and Serve must return nil.
func TestGracefulDrain(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		fmt.Fprint(w, "done")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{Grace: 20 * time.Second})
	const n = 5
	results := make(chan error, n)
	for range n {
		go func() {
			req, _ := http.NewRequest("GET", f.url+"/work", nil)
			req.Host = "lhy.kr"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "done" {
				err = fmt.Errorf("status %d body %q", resp.StatusCode, b)
			}
			results <- err
		}()
	}
	for range n {
		<-started
	}
	f.stop() // as SIGTERM does
	// New connections are refused once the listener is closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	for range n {
		if err := <-results; err != nil {
			t.Errorf("request in flight lost: %v", err)
		}
	}
	if err := <-f.done; err != nil {
		t.Errorf("Serve after drain: %v", err)
	}
	f.done <- nil // for the cleanup
}

func TestGraceExceeded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{Grace: 100 * time.Millisecond})
	go func() {
		req, _ := http.NewRequest("GET", f.url+"/", nil)
		req.Host = "lhy.kr"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	f.stop()
	if err := <-f.done; !errors.Is(err, ErrGraceExceeded) {
		t.Errorf("Serve = %v, want ErrGraceExceeded", err)
	}
	f.done <- nil
}

func TestWebSocketPassThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Host != "lhy.kr" {
			http.Error(w, "want an upgrade for lhy.kr", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw) // echo
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	// The pause below is longer than the write timeout and the header
	// read timeout: neither may cut a tunnel that is only quiet.
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u},
		ServerOptions{WriteTimeout: time.Second, ReadHeaderTimeout: time.Second})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: lhy.kr\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	// Longer than the write timeout between messages: the connection
	// stays up because no write stalls.
	for i, msg := range []string{"hello", "again after a pause"} {
		if i == 1 {
			time.Sleep(1500 * time.Millisecond)
		}
		fmt.Fprint(c, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: %q %v", msg, buf, err)
		}
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "second\n")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	req, _ := http.NewRequest("GET", f.url+"/stream", nil)
	req.Host = "lhy.kr"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n') // arrives while the upstream still waits
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q %v", line, err)
	}
	close(next)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
}

func TestLargeBody(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{})
	const size = 32 << 20
	body := io.LimitReader(zeros{}, size)
	req, _ := http.NewRequest("POST", f.url+"/sum", body)
	req.Host = "lhy.kr"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(zeros{}, size))
	if want := fmt.Sprintf("%d %x", size, h.Sum(nil)); string(got) != want {
		t.Errorf("upstream got %q, want %q", got, want)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestRawMalformedRequests speaks raw HTTP/1.1 to the proxy.
func TestRawMalformedRequests(t *testing.T) {
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{MaxHeaderBytes: 4096})
	for _, tt := range []struct {
		name string
		raw  string
		code int
	}{
		{"good", "GET / HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", 200},
		{"double Host", "GET / HTTP/1.1\r\nHost: lhy.kr\r\nHost: evil.example\r\n\r\n", 400},
		{"CRLF injection in Host", "GET / HTTP/1.1\r\nHost: lhy.kr\rX-Evil: 1\r\n\r\n", 400},
		{"bare LF header split", "GET / HTTP/1.1\r\nHost: evil.example\nX: lhy.kr\r\n\r\n", 400},
		{"absolute-form with another host", "GET http://evil.example/ HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", 400},
		{"absolute-form with an allowed host", "GET http://lhy.kr/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200},
		{"oversize headers", "GET / HTTP/1.1\r\nHost: lhy.kr\r\nX-Big: " + strings.Repeat("a", 8192) + "\r\n\r\n", 431},
		{"host with userinfo", "GET / HTTP/1.1\r\nHost: lhy.kr@evil.example\r\n\r\n", 400},
		{"no Host (HTTP/1.0)", "GET / HTTP/1.0\r\n\r\n", 400},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
		{"NUL in Host", "GET / HTTP/1.1\r\nHost: lhy.kr\x00evil\r\n\r\n", 400},
		{"double Host in other case", "GET / HTTP/1.1\r\nhost: lhy.kr\r\nHOST: evil.example\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : evil.example\r\nHost: lhy.kr\r\n\r\n", 400},
		{"folded Host", "GET / HTTP/1.1\r\nHost: evil.example\r\n lhy.kr\r\n\r\n", 400},
		{"two Content-Lengths", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"unknown transfer coding", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 501},
		{"chunked not last", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501},
		// RFC 9112 §6.3: a request with both may be smuggling; nginx 400s it too.
		{"Transfer-Encoding and Content-Length", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, f.addr, tt.raw)
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
		})
	}
}

func TestEchoBackend(t *testing.T) {
	g, _ := hostguard.New(hostguard.Options{AllowedHosts: []string{"example.com", "@self"}, Logger: quiet()})
	g.SetSelf([]netip.Addr{netip.MustParseAddr("10.0.1.23")})
	p, err := New(Options{Guard: g, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/health?x=1", nil)
	r.Host = "10.0.1.23:80"
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	body := w.Body.String()
	for _, want := range []string{`host: "example.com"`, `path: "/health?x=1"`, `x-forwarded-host: "10.0.1.23:80"`, `x-forwarded-for: "192.0.2.1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("echo lacks %s:\n%s", want, body)
		}
	}
}

func TestMetrics(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			m := NewMetrics()
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Metrics: m}, ServerOptions{})
			get(t, f.url+"/", "lhy.kr", nil)
			get(t, f.url+"/", "evil.example", nil)
			get(t, f.url+"/", "a..b", nil)
			m.SetSelf(2)
			body := scrape(t, m)
			for _, want := range []string{
				"hostguard_requests_accepted_total 1",
				`hostguard_requests_rejected_total{enforced="true",reason="not_allowed"} 1`,
				`hostguard_requests_rejected_total{enforced="true",reason="empty_label"} 1`,
				"hostguard_upstream_duration_seconds_count 1",
				"hostguard_self_addresses 2",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

// TestStalePooledConnection: the upstream closes idle keep-alive
// connections; the next request must not fail on the dead pooled one.
func TestStalePooledConnection(t *testing.T) {
	rec := &recordingUpstream{}
	up := httptest.NewUnstartedServer(rec)
	up.Config.IdleTimeout = 50 * time.Millisecond
	up.Start()
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	for i := range 3 {
		if code, body := get(t, f.url+"/", "lhy.kr", nil); code != 200 || body != "app ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		time.Sleep(200 * time.Millisecond) // the upstream closes the idle connection
	}
}

// TestClientGoneCancelsUpstream: on net/http, a client that leaves while
// the upstream works ends the upstream request too. (Proxy.Serve looks at
// the client once a second while it waits: TestClientLeavingFreesUpstream.)
func TestClientGoneCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(20 * time.Second):
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := startHandler(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /wait HTTP/1.1\r\nHost: lhy.kr\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request outlived its client")
	}
}

func TestInformationalResponseSkipped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		fmt.Fprint(w, "final")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	if code, body := get(t, f.url+"/", "lhy.kr", nil); code != 200 || body != "final" {
		t.Errorf("after 103: %d %q", code, body)
	}
}

// TestWhatTheUpstreamReceives checks the request line and headers the
// upstream gets: the path as sent, no hop-by-hop headers (nor those the
// Connection header names), a body framed once.
func TestWhatTheUpstreamReceives(t *testing.T) {
	type got struct {
		uri    string
		header http.Header
		body   string
		cl     int64
		te     []string
	}
	gotc := make(chan got, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotc <- got{r.RequestURI, r.Header.Clone(), string(b), r.ContentLength, r.TransferEncoding}
		w.Header().Set("Connection", "X-Up-Secret")
		w.Header().Set("X-Up-Secret", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprint(w, "ok")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	for _, tt := range []struct {
		name, raw, uri, body string
		chunked              bool
	}{
		{"path kept as sent", "GET /a/../b%2Fc//d?x=1&y=%20 HTTP/1.1\r\nHost: lhy.kr\r\n" +
			"Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eDp5\r\nTe: trailers\r\n\r\n",
			"/a/../b%2Fc//d?x=1&y=%20", "", false},
		{"absolute-form becomes origin-form", "GET http://lhy.kr/p?q HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", "/p?q", "", false},
		{"chunked body", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "/sum", "abc", true},
		{"sized body", "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: 5\r\n\r\nhello", "/sum", "hello", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, f.addr, tt.raw)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, k := range []string{"X-Up-Secret", "Keep-Alive"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("client got hop-by-hop response header %s: %q", k, v)
				}
			}
			g := <-gotc
			if g.uri != tt.uri {
				t.Errorf("upstream request-target %q, want %q", g.uri, tt.uri)
			}
			for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Te", "Connection"} {
				if v := g.header.Get(k); v != "" {
					t.Errorf("upstream got hop-by-hop header %s: %q", k, v)
				}
			}
			if g.body != tt.body {
				t.Errorf("upstream body %q, want %q", g.body, tt.body)
			}
			if tt.chunked && (g.cl != -1 || len(g.te) != 1 || g.te[0] != "chunked") {
				t.Errorf("upstream framing: Content-Length %d, Transfer-Encoding %q; want chunked alone", g.cl, g.te)
			}
		})
	}
}

// TestRejectionLog: a rejection is logged with the request's details, and a
// load balancer's health check on a private address gets the @self hint.
func TestRejectionLog(t *testing.T) {
	var buf syncbuf.Buffer
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}, Logger: slog.New(slog.NewTextHandler(&buf, nil))},
		Options{}, ServerOptions{})
	if code, _ := get(t, f.url+"/health", "10.0.1.23:80", map[string]string{"User-Agent": "ELB-HealthChecker/2.0"}); code != 400 {
		t.Fatalf("code %d", code)
	}
	log := buf.String()
	for _, want := range []string{"load-balancer health check rejected", "host=10.0.1.23:80", "path=/health",
		"user_agent=ELB-HealthChecker/2.0", "add @self"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// rawRequest sends raw bytes on a new connection and reads one response,
// whose body it closes.
func rawRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestServerLogIsLimited: fasthttp logs every malformed request; a scanner
// must not flood the log with them, nor put their bytes in it.
func TestServerLogIsLimited(t *testing.T) {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: []string{"lhy.kr"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Guard: g, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l, ServerOptions{Logger: slog.New(slog.NewTextHandler(&buf, nil))}) }()
	for range 50 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: lhy.kr\r\nHost: SECRET-BYTES\r\n\r\n")
		_, _ = io.ReadAll(c)
		c.Close()
	}
	cancel()
	<-done
	log := buf.String()
	if n := strings.Count(log, "\n"); n < 1 || n > 12 {
		t.Errorf("%d log lines for 50 malformed requests, want 1 to 12:\n%s", n, log)
	}
	if strings.Contains(log, "SECRET-BYTES") {
		t.Errorf("the log repeats request bytes:\n%s", log)
	}
}

// TestStalledBody: a client that stops sending its body is dropped with 408
// after BodyTimeout; one that keeps sending, slower than that in total, is
// not. Both servers.
func TestStalledBody(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			// fasthttp reads a small body before the handler runs, under
			// the header timeout; a large one streams under BodyTimeout.
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{},
				ServerOptions{BodyTimeout: 300 * time.Millisecond, ReadHeaderTimeout: time.Second})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			// 5 bytes in 5 pieces, 100 ms apart: 500 ms in all, never
			// 300 ms without a byte.
			fmt.Fprint(c, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: 5\r\n\r\n")
			for _, b := range "hello" {
				time.Sleep(100 * time.Millisecond)
				fmt.Fprint(c, string(b))
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "5 ") {
				t.Fatalf("slow but steady body: %d %q", resp.StatusCode, b)
			}
			// Now 2 of 10 bytes, then nothing.
			fmt.Fprint(c, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: 10\r\n\r\nhe")
			start := time.Now()
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("stalled body: no answer after %v: %v", time.Since(start), err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("stalled body: %d, want 408", resp.StatusCode)
			}

			// A large body that keeps moving for longer than every
			// timeout arrives whole.
			c2, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			_ = c2.SetDeadline(time.Now().Add(20 * time.Second))
			const chunk, chunks = 64 << 10, 32
			fmt.Fprintf(c2, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: %d\r\n\r\n", chunk*chunks)
			piece := bytes.Repeat([]byte("x"), chunk)
			for range chunks {
				if _, err := c2.Write(piece); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // 1.6 s in all
			}
			resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprint(chunk * chunks); resp.StatusCode != 200 || !strings.HasPrefix(string(b), want+" ") {
				t.Errorf("steady large body: %d %q, want 200 and %s bytes", resp.StatusCode, b, want)
			}
		})
	}
}

// TestWhatTheClientReceives: the upstream's status, headers (every
// Set-Cookie as written, repeated headers) and body reach the client, for
// GET, HEAD and bodiless statuses.
func TestWhatTheClientReceives(t *testing.T) {
	cookies := []string{
		"a=1; Path=/; HttpOnly; SameSite=Lax; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
		"b=2; Domain=lhy.kr; Secure; Max-Age=60",
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range cookies {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header()["X-Multi"] = []string{"1", "2"}
		switch r.URL.Path {
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			fmt.Fprint(w, "hello")
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	for _, tt := range []struct {
		method, path string
		code         int
		length       int64
		body         string
	}{
		{"GET", "/", 200, 5, "hello"},
		{"HEAD", "/", 200, 5, ""},
		{"GET", "/304", 304, 0, ""},
		{"GET", "/204", 204, 0, ""},
	} {
		req, _ := http.NewRequest(tt.method, f.url+tt.path, nil)
		req.Host = "lhy.kr"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := tt.method + " " + tt.path
		if resp.StatusCode != tt.code || resp.ContentLength != tt.length || string(b) != tt.body {
			t.Errorf("%s: %d, length %d, %q; want %d, %d, %q", name, resp.StatusCode, resp.ContentLength, b, tt.code, tt.length, tt.body)
		}
		if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, cookies) {
			t.Errorf("%s: Set-Cookie %q, want %q", name, got, cookies)
		}
		if got := resp.Header.Values("X-Multi"); !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("%s: X-Multi %q", name, got)
		}
	}
}

// TestForwardedHeadersAnyCase: header names are case-insensitive, so a
// spoofed "x-forwarded-for" or "FORWARDED" from an untrusted peer is
// replaced like the canonical spelling, and a trusted proxy's lower-case
// "x-forwarded-host" is checked against the list.
func TestForwardedHeadersAnyCase(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	spoof := "x-forwarded-for: 6.6.6.6\r\nX-FORWARDED-FOR: 7.7.7.7\r\nx-forwarded-host: evil.example\r\n" +
		"x-forwarded-proto: https\r\nFORWARDED: host=evil.example\r\n"

	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
	if resp := rawRequest(t, f.addr, "GET / HTTP/1.1\r\nHost: lhy.kr\r\n"+spoof+"\r\n"); resp.StatusCode != 200 {
		t.Fatalf("untrusted: %d", resp.StatusCode)
	}
	mu.Lock()
	want := map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Host": {"lhy.kr"}, "X-Forwarded-Proto": {"http"}, "Forwarded": nil}
	for k, v := range want {
		if !slices.Equal(got.Values(k), v) {
			t.Errorf("untrusted peer: upstream got %s %q, want %q", k, got.Values(k), v)
		}
	}
	mu.Unlock()

	ft := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}, TrustedProxies: []string{"127.0.0.1"}}, Options{Upstream: u}, ServerOptions{})
	if resp := rawRequest(t, ft.addr, "GET / HTTP/1.1\r\nHost: lhy.kr\r\nx-forwarded-host: evil.example\r\n\r\n"); resp.StatusCode != 400 {
		t.Errorf("trusted peer, lower-case evil X-Forwarded-Host: %d, want 400", resp.StatusCode)
	}
}

// TestTLSUpstream: an https:// upstream, trusted through Options.TLSConfig,
// on both servers; unknown roots give 502.
func TestTLSUpstream(t *testing.T) {
	rec := &recordingUpstream{}
	up := httptest.NewTLSServer(rec)
	defer up.Close()
	u, _ := url.Parse(up.URL)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}},
				Options{Upstream: u, TLSConfig: &tls.Config{RootCAs: roots}}, ServerOptions{})
			if code, body := get(t, f.url+"/", "lhy.kr", nil); code != 200 || body != "app ok" {
				t.Errorf("trusted upstream: %d %q", code, body)
			}
			untrusted := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
			if code, _ := get(t, untrusted.url+"/", "lhy.kr", nil); code != http.StatusBadGateway {
				t.Errorf("upstream certificate from unknown roots: %d, want 502", code)
			}
		})
	}
}
