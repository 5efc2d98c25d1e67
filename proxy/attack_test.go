package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/internal/hostcorpus"
	"github.com/hostguard/hostguard/internal/syncbuf"
)

// Tests for the attacks of issue #10, each on both server forms.

// dial opens a raw connection with a deadline for the whole test step.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readStatus(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestUpgradeAnswered200KeepsChecking: an Upgrade the upstream answers with
// 200 opens no tunnel; the next request on the connection, sent after the
// answer, is parsed and checked like any other.
func TestUpgradeAnswered200KeepsChecking(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{})
			for _, upgrade := range []string{"websocket", "h2c"} {
				c, br := dial(t, f.addr)
				n := f.upstream.count()
				fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: lhy.kr\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", upgrade)
				if code := readStatus(t, br); code != 200 {
					t.Fatalf("%s: %d", upgrade, code)
				}
				fmt.Fprint(c, "GET /admin HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
				if code := readStatus(t, br); code != 400 {
					t.Errorf("%s: the request after a refused upgrade got %d, want 400", upgrade, code)
				}
				if got := f.upstream.count() - n; got != 1 {
					t.Errorf("%s: the upstream saw %d requests, want 1", upgrade, got)
				}
			}
		})
	}
}

// wsUpstream answers a WebSocket handshake with 101 and echoes bytes.
func wsUpstream(t *testing.T) *url.URL {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	return u
}

// openTunnel sends a WebSocket handshake and checks the 101.
func openTunnel(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := dial(t, addr)
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: lhy.kr\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if code := readStatus(t, br); code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", code)
	}
	return c, br
}

// TestTunnelIdleTimeout: a tunnel in which bytes keep moving stays open
// past the idle timeout; one that falls quiet is closed after it.
func TestTunnelIdleTimeout(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			m := NewMetrics()
			const idle = 400 * time.Millisecond
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}},
				Options{Upstream: wsUpstream(t), TunnelIdleTimeout: idle, Metrics: m}, ServerOptions{})
			c, br := openTunnel(t, f.addr)
			buf := make([]byte, 4)
			for range 6 { // 6 × 150 ms: longer than idle, never quiet that long
				time.Sleep(150 * time.Millisecond)
				fmt.Fprint(c, "ping")
				if _, err := io.ReadFull(br, buf); err != nil {
					t.Fatalf("a busy tunnel was closed: %v", err)
				}
			}
			if body := scrape(t, m); !strings.Contains(body, "hostguard_tunnels_open 1") || !strings.Contains(body, "hostguard_tunnels_total 1") {
				t.Errorf("metrics while open:\n%s", grepMetrics(body, "tunnels"))
			}
			start := time.Now()
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("a quiet tunnel sent a byte")
			}
			if waited := time.Since(start); waited > 5*time.Second {
				t.Errorf("a quiet tunnel was closed after %v, idle timeout %v", waited, idle)
			}
			waitFor(t, func() bool { return strings.Contains(scrape(t, m), "hostguard_tunnels_open 0") })
		})
	}
}

// TestTunnelClosedAfterGrace: on shutdown a tunnel gets the grace period,
// then it is closed; that alone is no error.
func TestTunnelClosedAfterGrace(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}},
				Options{Upstream: wsUpstream(t)}, ServerOptions{Grace: 300 * time.Millisecond})
			c, br := openTunnel(t, f.addr)
			f.stop()
			// Still open during the grace period.
			fmt.Fprint(c, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(br, buf); err != nil {
				t.Fatalf("the tunnel was cut before the grace period ended: %v", err)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("the tunnel outlived the grace period")
			}
			if err := <-f.done; err != nil {
				t.Errorf("Serve = %v; closing tunnels at the end of the grace period is no error", err)
			}
			f.done <- nil // for the cleanup
		})
	}
}

// TestClientErrorsAreTheClients: broken chunked bodies are the client's
// error: 400, counted as client errors, never as upstream errors, and
// logged at a limited rate without the client's bytes.
func TestClientErrorsAreTheClients(t *testing.T) {
	bodies := []string{
		"zz\r\nabc\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "ffffffffffffffff5\r\nhello\r\n0\r\n\r\n",
		strings.Repeat("0", 100) + "5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n", "5\nhello\n0\n\n",
		"3\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\nHost: SECRET-BYTES\r\n\r\n",
	}
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			var logs syncbuf.Buffer
			m := NewMetrics()
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Metrics: m},
				ServerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			const rounds = 25
			for i := range rounds * len(bodies) {
				c, br := dial(t, f.addr)
				fmt.Fprint(c, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nTransfer-Encoding: chunked\r\n\r\n"+bodies[i%len(bodies)])
				if code := readStatus(t, br); code != 400 {
					t.Fatalf("body %q: %d, want 400", bodies[i%len(bodies)], code)
				}
				c.Close()
			}
			body := scrape(t, m)
			if want := fmt.Sprintf(`hostguard_client_errors_total{kind="malformed"} %d`, rounds*len(bodies)); !strings.Contains(body, want) {
				t.Errorf("metrics lack %s:\n%s", want, grepMetrics(body, "client_errors"))
			}
			if strings.Contains(body, "hostguard_upstream_errors_total") {
				t.Errorf("the client's errors were counted against the upstream:\n%s", grepMetrics(body, "upstream_errors"))
			}
			if n := strings.Count(logs.String(), "\n"); n > 12 {
				t.Errorf("%d log lines for %d bad requests, want at most 12", n, rounds*len(bodies))
			}
			if strings.Contains(logs.String(), "SECRET") {
				t.Errorf("the log repeats the client's bytes:\n%s", logs.String())
			}
		})
	}
}

// TestExpectContinue: a bad Host is refused before any body is asked for
// (no 100 Continue); a good one gets 100 Continue, then the body goes
// through.
func TestExpectContinue(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{})
			c, br := dial(t, f.addr)
			fmt.Fprint(c, "POST /sum HTTP/1.1\r\nHost: evil.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
			if code := readStatus(t, br); code != 400 {
				t.Errorf("bad Host with Expect: %d, want 400 at once", code)
			}

			c, br = dial(t, f.addr)
			fmt.Fprint(c, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
			if code := readStatus(t, br); code != http.StatusContinue {
				t.Fatalf("good Host with Expect: %d, want 100 before the body", code)
			}
			fmt.Fprint(c, "hello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "5 ") {
				t.Errorf("after 100 Continue: %d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestSlowUploadUnderDefaults: with the default settings an upload that
// sends 5 bytes every 1.5 s, for longer than the header timeout, arrives
// whole: only the body timeout, between two reads, bounds a body.
func TestSlowUploadUnderDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 12 s")
	}
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			const pieces = 8 // 12 s in all, beyond the 10 s header timeout
			fmt.Fprintf(c, "POST /sum HTTP/1.1\r\nHost: lhy.kr\r\nContent-Length: %d\r\n\r\n", 5*pieces)
			for range pieces {
				time.Sleep(1500 * time.Millisecond)
				fmt.Fprint(c, "abcde")
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("%d ", 5*pieces); resp.StatusCode != 200 || !strings.HasPrefix(string(b), want) {
				t.Errorf("slow upload: %d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestClientLeavingFreesUpstream: 300 clients ask a slow endpoint and hang
// up; every upstream request ends soon after (Serve looks at the client
// every second while it waits; net/http's server watches it all along).
func TestClientLeavingFreesUpstream(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			const clients = 300
			// Each client leaves once its own request reached the upstream
			// (however loaded the machine), so that every one of them must
			// be ended by the proxy, not merely never sent.
			arrived := make([]chan struct{}, clients)
			for i := range arrived {
				arrived[i] = make(chan struct{})
			}
			var started, ended atomic.Int64
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started.Add(1)
				defer ended.Add(1)
				if i, err := strconv.Atoi(r.URL.Query().Get("c")); err == nil && i >= 0 && i < clients {
					close(arrived[i])
				}
				select {
				case <-r.Context().Done():
				case <-time.After(60 * time.Second):
				}
			}))
			t.Cleanup(up.Close)
			u, _ := url.Parse(up.URL)
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u}, ServerOptions{})
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("tcp", f.addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					fmt.Fprintf(c, "GET /slow?c=%d HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", i)
					select {
					case <-arrived[i]:
					case <-time.After(30 * time.Second):
						t.Errorf("client %d: its request never reached the upstream", i)
					}
				}()
			}
			wg.Wait()
			waitFor(t, func() bool { return started.Load() == clients && ended.Load() == clients })
		})
	}
}

// TestForwardedParameterTwice: from a trusted proxy, a Forwarded element
// that gives host twice is malformed (RFC 7239) and refused.
func TestForwardedParameterTwice(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}, TrustedProxies: []string{"127.0.0.0/8"}},
				Options{}, ServerOptions{})
			for _, tt := range []struct {
				value string
				code  int
			}{
				{"for=1.2.3.4;host=lhy.kr", 200},
				{"for=1.2.3.4;host=lhy.kr;host=evil.example", 400},
				{"for=1.2.3.4;host=lhy.kr, for=5.6.7.8;host=evil.example", 400},
			} {
				resp := rawRequest(t, f.addr, "GET / HTTP/1.1\r\nHost: lhy.kr\r\nForwarded: "+tt.value+"\r\n\r\n")
				if resp.StatusCode != tt.code {
					t.Errorf("Forwarded: %s: %d, want %d", tt.value, resp.StatusCode, tt.code)
				}
				if tt.code == 200 {
					if got := f.upstream.last().Forwarded; got != tt.value {
						t.Errorf("a trusted proxy's Forwarded reached the upstream as %q", got)
					}
				}
			}
		})
	}
}

// TestUnderscoreHeaders: names with an underscore are dropped by default;
// KeepUnderscoreHeaders passes them, but never a forwarding or framing
// name spelt with underscores.
func TestUnderscoreHeaders(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			for _, keep := range []bool{false, true} {
				var mu sync.Mutex
				var got http.Header
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					got = r.Header.Clone()
					mu.Unlock()
				}))
				u, _ := url.Parse(up.URL)
				f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u, KeepUnderscoreHeaders: keep}, ServerOptions{})
				resp := rawRequest(t, f.addr, "GET / HTTP/1.1\r\nHost: lhy.kr\r\nX_Custom: 1\r\nX_Forwarded_For: 6.6.6.6\r\n"+
					"X_Forwarded_Host: evil.example\r\nx_forwarded_proto: https\r\nX_Real_IP: 6.6.6.6\r\nContent_Length: 5\r\n\r\n")
				up.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("keep=%v: %d", keep, resp.StatusCode)
				}
				mu.Lock()
				for k := range got {
					if strings.Contains(k, "_") && (!keep || k != "X_custom") {
						t.Errorf("keep=%v: the upstream got %s", keep, k)
					}
				}
				if keep && got.Get("X_custom") != "1" {
					t.Errorf("keep=%v: X_Custom did not pass: %v", keep, got)
				}
				mu.Unlock()
			}
		})
	}
}

// TestUpstreamGetsNormalisedHost: the upstream sees the host as the list
// compared it.
func TestUpstreamGetsNormalisedHost(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr", "@self"}}, Options{}, ServerOptions{})
			f.guard.SetSelf([]netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("fd00::23")})
			for _, tt := range []struct{ sent, host, xfh string }{
				{"LHY.KR.", "lhy.kr", "lhy.kr"},
				{"lhy.kr:" + strings.Repeat("0", 5000) + "80", "lhy.kr:80", "lhy.kr:80"},
				{"Lhy.Kr.:0443", "lhy.kr:443", "lhy.kr:443"},
				{"10.0.1.23:080", "lhy.kr", "10.0.1.23:80"},
				{"[FD00:0::23]:8080", "lhy.kr", "[fd00::23]:8080"},
			} {
				resp := rawRequest(t, f.addr, "GET / HTTP/1.1\r\nHost: "+tt.sent+"\r\n\r\n")
				if s := f.upstream.last(); resp.StatusCode != 200 || s.Host != tt.host || s.XFH != tt.xfh {
					t.Errorf("Host %.40q: %d, upstream saw Host %q X-Forwarded-Host %q; want %q, %q",
						tt.sent, resp.StatusCode, s.Host, s.XFH, tt.host, tt.xfh)
				}
			}
		})
	}
}

// TestProxyAgreesWithGuard sends every Host value of the library's
// conformance corpus through the proxy and compares the verdict with
// Guard.Allow. A value is sent as one Host field, so values with CR or LF
// (which end the field on the wire) are left to the parser's own tests;
// spaces and tabs around a value are not part of it (RFC 9110 §5.5).
func TestProxyAgreesWithGuard(t *testing.T) {
	lists := append(hostcorpus.Lists(), hostcorpus.HostileList)
	var self []netip.Addr
	for _, a := range hostcorpus.Self {
		self = append(self, netip.MustParseAddr(a))
	}
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			for _, list := range lists {
				f := startFn(t, hostguard.Options{AllowedHosts: list}, Options{CanonicalHost: canonicalFor(list)}, ServerOptions{})
				f.guard.SetSelf(self)
				for _, h := range hostcorpus.Hosts() {
					if strings.ContainsAny(h, "\r\n") {
						continue
					}
					want := f.guard.Allow(strings.Trim(h, " \t"))
					resp := rawRequest(t, f.addr, "GET / HTTP/1.1\r\nHost: "+h+"\r\n\r\n")
					if got := resp.StatusCode == 200; got != want {
						t.Errorf("list %q, Host %q: proxy answered %d, Guard.Allow says %v", list, h, resp.StatusCode, want)
					}
				}
			}
		})
	}
}

// canonicalFor picks a plain name of list for lists that have one only
// behind a wildcard.
func canonicalFor(list []string) string {
	for _, e := range list {
		if e == "*" {
			return "example.com"
		}
		if e == ".com" {
			return "example.com"
		}
	}
	return ""
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

func grepMetrics(body, substr string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReportOnlyProxy: in report-only mode a Host the list rejects goes to
// the upstream as sent, counted as an unenforced rejection; forged
// forwarding headers are still replaced.
func TestReportOnlyProxy(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			m := NewMetrics()
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}, ReportOnly: true}, Options{Metrics: m}, ServerOptions{})
			code, body := get(t, f.url+"/", "Evil.Example.", map[string]string{"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example"})
			s := f.upstream.last()
			if code != 200 || body != "app ok" || s.Host != "evil.example" || s.XFF != "127.0.0.1" || s.XFH != "evil.example" {
				t.Errorf("report-only: %d %q, upstream saw %+v", code, body, s)
			}
			if got := scrape(t, m); !strings.Contains(got, `hostguard_requests_rejected_total{enforced="false",reason="not_allowed"} 1`) {
				t.Errorf("metrics:\n%s", grepMetrics(got, "rejected"))
			}
		})
	}
}
