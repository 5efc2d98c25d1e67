package hostguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder is a next handler that records what reached it.
type recorder struct {
	hits  int
	hosts []string
	xfh   []string
	fwd   []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.hits++
	rec.hosts = append(rec.hosts, r.Host)
	rec.xfh = append(rec.xfh, r.Header.Get("X-Forwarded-Host"))
	rec.fwd = append(rec.fwd, r.Header.Get("Forwarded"))
	_, _ = io.WriteString(w, "ok")
}

func newLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerAcceptsAndRejects(t *testing.T) {
	var logs bytes.Buffer
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: newLogger(&logs)})
	rec := &recorder{}
	h := g.Handler(rec)

	if w := serve(h, httptest.NewRequest("GET", "http://lhy.kr/", nil)); w.Code != 200 || rec.hits != 1 {
		t.Fatalf("allowed host: code %d, hits %d", w.Code, rec.hits)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Host = "<script>evil.example"
	w := serve(h, r)
	if w.Code != http.StatusBadRequest || rec.hits != 1 {
		t.Fatalf("bad host: code %d, hits %d", w.Code, rec.hits)
	}
	if body := w.Body.String(); strings.Contains(body, "evil") || strings.Contains(body, "<") {
		t.Errorf("rejection body reflects the host: %q", body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.Contains(logs.String(), `reason="invalid character`) || !strings.Contains(logs.String(), `evil.example`) {
		t.Errorf("log = %s", logs.String())
	}
}

func TestHandlerLogEscapesHost(t *testing.T) {
	var logs bytes.Buffer
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: newLogger(&logs)})
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "evil\r\nlevel=ERROR msg=forged"
	serve(g.Handler(&recorder{}), r)
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("log injection: %d lines: %s", n, logs.String())
	}
}

func TestHandlerRateLimitsLogs(t *testing.T) {
	var logs bytes.Buffer
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: newLogger(&logs), LogLimit: 3})
	h := g.Handler(&recorder{})
	for range 50 {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = "scanner.example"
		if w := serve(h, r); w.Code != 400 {
			t.Fatalf("code %d", w.Code)
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 3 {
		t.Errorf("logged %d of 50 rejections with LogLimit 3, want 3", n)
	}
	if n := g.log.Suppressed(); n != 47 {
		t.Errorf("suppressed = %d, want 47", n)
	}

	logs.Reset()
	g = mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: newLogger(&logs), LogLimit: -1})
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "scanner.example"
	serve(g.Handler(&recorder{}), r)
	if logs.Len() != 0 {
		t.Errorf("LogLimit -1 logged: %s", logs.String())
	}
}

func TestHandlerHealthCheckHint(t *testing.T) {
	for _, tt := range []struct {
		list   []string
		ua     string
		host   string
		expect string
	}{
		{[]string{"lhy.kr"}, "ELB-HealthChecker/2.0", "10.0.1.23:80", "add @self"},
		{[]string{"lhy.kr"}, "kube-probe/1.31", "[fd00::5]:8080", "add @self"},
		{[]string{"lhy.kr", "@self"}, "ELB-HealthChecker/2.0", "10.0.1.23", "hostguard discover --verbose"},
		{[]string{"lhy.kr"}, "curl/8", "10.0.1.23:80", "request rejected"},
		{[]string{"lhy.kr"}, "ELB-HealthChecker/2.0", "8.8.8.8", "request rejected"},
	} {
		var logs bytes.Buffer
		g := mustNew(t, Options{AllowedHosts: tt.list, Logger: newLogger(&logs)})
		r := httptest.NewRequest("GET", "/health", nil)
		r.Host = tt.host
		r.Header.Set("User-Agent", tt.ua)
		serve(g.Handler(&recorder{}), r)
		if !strings.Contains(logs.String(), tt.expect) {
			t.Errorf("%s from %s: log %q lacks %q", tt.host, tt.ua, logs.String(), tt.expect)
		}
	}
}

func TestHandlerForwardedHeaders(t *testing.T) {
	g := mustNew(t, Options{
		AllowedHosts:   []string{"lhy.kr", "10.0.0.0/8"},
		TrustedProxies: []string{"10.0.0.5", "192.168.0.0/16"},
		Logger:         slog.New(slog.DiscardHandler),
	})
	tests := []struct {
		name    string
		remote  string
		xfh     []string
		fwd     []string
		code    int
		keepXFH bool
		drop    bool // CheckRequest says DropForwarded
	}{
		{"untrusted peer: evil XFH stripped", "203.0.113.9:5555", []string{"evil.example"}, nil, 200, false, true},
		{"untrusted peer: Forwarded stripped", "203.0.113.9:5555", nil, []string{"host=evil.example"}, 200, false, true},
		{"trusted peer: good XFH kept", "10.0.0.5:40000", []string{"lhy.kr"}, nil, 200, true, false},
		{"trusted peer: bad XFH", "10.0.0.5:40000", []string{"evil.example"}, nil, 400, false, false},
		{"trusted range, IPv4-mapped peer", "[::ffff:192.168.3.3]:1", []string{"evil.example"}, nil, 400, false, false},
		{"trusted: last of a list is good, first is not", "10.0.0.5:1", []string{"evil.example, lhy.kr"}, nil, 400, false, false},
		{"trusted: CVE-2021-44528 shape", "10.0.0.5:1", []string{"//evil.example"}, nil, 400, false, false},
		{"trusted: two header lines", "10.0.0.5:1", []string{"lhy.kr", "evil.example"}, nil, 400, false, false},
		{"trusted: empty element", "10.0.0.5:1", []string{"lhy.kr,,"}, nil, 400, false, false},
		{"trusted: Forwarded good", "10.0.0.5:1", nil, []string{`for=1.2.3.4;host="lhy.kr:443";proto=https`}, 200, false, false},
		{"trusted: Forwarded bad", "10.0.0.5:1", nil, []string{`for=1.2.3.4, for=10.0.0.1;Host=evil.example`}, 400, false, false},
		{"trusted: Forwarded without host", "10.0.0.5:1", nil, []string{`for=1.2.3.4;proto=https`}, 200, false, false},
		{"trusted: Forwarded malformed", "10.0.0.5:1", nil, []string{`host="lhy.kr@evil"`}, 400, false, false},
		{"trusted: Forwarded host given twice", "10.0.0.5:1", nil, []string{`for=1.2.3.4;host=lhy.kr;host=evil.example`}, 400, false, false},
		{"trusted: Forwarded not RFC 7239", "10.0.0.5:1", nil, []string{`host=lhy.kr evil`}, 400, false, false},
		{"trusted: Forwarded quoted comma", "10.0.0.5:1", nil, []string{`for="_a,_b";host=lhy.kr`}, 200, false, false},
		{"garbage remote addr is untrusted", "nonsense", []string{"evil.example"}, nil, 200, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = "lhy.kr"
			r.RemoteAddr = tt.remote
			for _, v := range tt.xfh {
				r.Header.Add("X-Forwarded-Host", v)
			}
			for _, v := range tt.fwd {
				r.Header.Add("Forwarded", v)
			}
			// CheckRequest, for servers other than net/http, decides alike.
			v := g.CheckRequest(&Request{Host: r.Host, Path: "/", RemoteAddr: tt.remote, ForwardedHost: tt.xfh, Forwarded: tt.fwd})
			if v.Passes() != (tt.code == 200) || v.Allowed() != (tt.code == 200) || !v.Enforced {
				t.Errorf("CheckRequest: %+v, want code %d", v, tt.code)
			}
			if v.DropForwarded != tt.drop {
				t.Errorf("CheckRequest: DropForwarded %v, want %v", v.DropForwarded, tt.drop)
			}
			w := serve(g.Handler(rec), r)
			if w.Code != tt.code {
				t.Fatalf("code %d, want %d", w.Code, tt.code)
			}
			if tt.code != 200 {
				return
			}
			if tt.keepXFH != (rec.xfh[0] != "") {
				t.Errorf("X-Forwarded-Host seen by next = %q", rec.xfh[0])
			}
			if strings.Contains(rec.fwd[0], "evil") || strings.Contains(rec.xfh[0], "evil") {
				t.Errorf("forwarded evil host reached next: %q %q", rec.xfh[0], rec.fwd[0])
			}
		})
	}
}

func TestHandlerExemptPathsAndEmptyHost(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, ExemptPaths: []string{"/health"}, Logger: slog.New(slog.DiscardHandler)})
	h := g.Handler(&recorder{})
	r := httptest.NewRequest("GET", "/health", nil)
	r.Host = "10.0.1.23"
	if w := serve(h, r); w.Code != 200 {
		t.Errorf("exempt path: %d", w.Code)
	}
	r = httptest.NewRequest("GET", "/health/x", nil)
	r.Host = "10.0.1.23"
	if w := serve(h, r); w.Code != 400 {
		t.Errorf("path below an exempt path: %d", w.Code)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Host = ""
	if w := serve(h, r); w.Code != 400 {
		t.Errorf("empty host: %d", w.Code)
	}
}

func TestCustomRejectHandler(t *testing.T) {
	var got Verdict
	var gotOK bool
	g := mustNew(t, Options{
		AllowedHosts: []string{"lhy.kr"},
		Logger:       slog.New(slog.DiscardHandler),
		RejectHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, gotOK = VerdictFromContext(r.Context())
			w.WriteHeader(http.StatusMisdirectedRequest)
		}),
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "evil.example"
	if w := serve(g.Handler(&recorder{}), r); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("code %d", w.Code)
	}
	if !gotOK || got.Value != "evil.example" || got.Reason != ReasonNotAllowed || !got.Enforced || got.Passes() {
		t.Errorf("verdict = %+v, %v", got, gotOK)
	}
	if _, ok := VerdictFromContext(r.Context()); ok {
		t.Error("VerdictFromContext on a plain context")
	}
}

// TestRawRequests sends requests over a real TCP connection, as an attacker
// would, to a real net/http server with the middleware.
func TestRawRequests(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: slog.New(slog.DiscardHandler)})
	rec := &recorder{}
	srv := httptest.NewServer(g.Handler(rec))
	defer srv.Close()
	tests := []struct {
		name string
		raw  string
		code int
	}{
		{"good", "GET / HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", 200},
		{"upper case, trailing dot", "GET / HTTP/1.1\r\nHost: LHY.KR.\r\n\r\n", 200},
		{"absolute-form with another host", "GET http://evil.example/ HTTP/1.1\r\nHost: lhy.kr\r\n\r\n", 400},
		{"absolute-form with the good host", "GET http://lhy.kr/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200},
		{"double port", "GET / HTTP/1.1\r\nHost: lhy.kr:80:80\r\n\r\n", 400},
		{"double Host", "GET / HTTP/1.1\r\nHost: lhy.kr\r\nHost: evil.example\r\n\r\n", 400},
		{"userinfo", "GET / HTTP/1.1\r\nHost: lhy.kr@evil.example\r\n\r\n", 400},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 400},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
		{"suffix attack", "GET / HTTP/1.1\r\nHost: lhy.kr.evil.example\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, tt.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("%q: status %d, want %d", tt.raw, resp.StatusCode, tt.code)
			}
		})
	}
	for _, h := range rec.hosts {
		if !g.Allow(h) {
			t.Errorf("next handler saw disallowed host %q", h)
		}
	}
}

// nopWriter is a ResponseWriter that allocates nothing itself.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// TestHandlerAllocations holds the middleware to its budget: nothing for
// an accepted request, one allocation (the header values) for a rejection
// answered by Reject.
func TestHandlerAllocations(t *testing.T) {
	g := mustNew(t, Options{AllowedHosts: []string{".example.org", "10.0.0.0/8"}, LogLimit: -1, TrustedProxies: []string{"10.0.0.5"}})
	h := g.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tt := range []struct {
		host, xfh string // xfh from the trusted proxy
		max       float64
	}{
		{"www.example.org:8443", "", 0}, {"WWW.Example.ORG.", "", 0}, {"10.0.1.23:80", "", 0},
		{"10.0.1.23:80", "www.example.org", 0},
		{"evil.example", "", 1}, {"a..b", "", 1}, {"", "", 1}, {"www.example.org", "evil.example", 1},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tt.host
		if tt.xfh != "" {
			r.RemoteAddr = "10.0.0.5:1234"
			r.Header.Set("X-Forwarded-Host", tt.xfh)
		}
		w := &nopWriter{h: http.Header{}}
		if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n > tt.max {
			t.Errorf("Host %q, X-Forwarded-Host %q: the middleware allocates %v times per request, budget %v", tt.host, tt.xfh, n, tt.max)
		}
	}
}

func ExampleGuard_Handler() {
	g, err := New(Options{AllowedHosts: []string{"example.com", ".example.org", "10.0.0.0/8"}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	h := g.Handler(mux) // pass h to http.ListenAndServe

	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "www.example.org:8443"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output: 200 hello
}

func ExampleGuard_Allow() {
	g, _ := New(Options{AllowedHosts: []string{"example.com", ".example.org", "10.0.0.0/8"}})
	for _, h := range []string{"www.example.org:8443", "EXAMPLE.com.", "10.0.1.23:80", "example.com.evil.net", "example.com@evil.net"} {
		fmt.Println(h, g.Allow(h))
	}
	// Output:
	// www.example.org:8443 true
	// EXAMPLE.com. true
	// 10.0.1.23:80 true
	// example.com.evil.net false
	// example.com@evil.net false
}

func ExampleGuard_Check() {
	g, _ := New(Options{AllowedHosts: []string{".example.org", "lhy.kr:8443"}})
	for _, h := range []string{"API.Example.Org.", "lhy.kr", "a..b"} {
		d := g.Check(h)
		fmt.Printf("%q allowed=%v host=%q entry=%q reason=%q\n", h, d.Allowed(), d.Host, d.Entry, d.Reason)
	}
	// Output:
	// "API.Example.Org." allowed=true host="api.example.org" entry=".example.org" reason="accepted"
	// "lhy.kr" allowed=false host="lhy.kr" entry="" reason="host not in allow list"
	// "a..b" allowed=false host="" entry="" reason="empty label (\"a..b\", a leading dot or a lone dot)"
}

func ExampleNew_badEntry() {
	_, err := New(Options{AllowedHosts: []string{"https://example.com/"}})
	fmt.Println(err)
	// Output: hostguard: invalid allow-list entry "https://example.com/": a URL is not a host; give the host name alone, for example "example.com"
}

// A server other than net/http checks a request through CheckRequest.
func ExampleGuard_CheckRequest() {
	g, _ := New(Options{AllowedHosts: []string{"example.com"}, Logger: slog.New(slog.DiscardHandler)})
	for _, r := range []Request{
		{Host: "example.com", Path: "/", RemoteAddr: "203.0.113.9:5555", ForwardedHost: []string{"evil.example"}},
		{Host: "evil.example", Path: "/", RemoteAddr: "203.0.113.9:5555"},
	} {
		v := g.CheckRequest(&r)
		if !v.Passes() {
			fmt.Printf("reject %q: %v (answer %d)\n", v.Value, v.Reason, RejectStatus)
			continue
		}
		fmt.Printf("pass %s, drop forwarded headers: %v\n", r.Host, v.DropForwarded)
	}
	// Output:
	// pass example.com, drop forwarded headers: true
	// reject "evil.example": host not in allow list (answer 400)
}

// A RejectHandler finds why the request was rejected; Reason.Label is
// the name to count it by, Reason.String the text to log.
func ExampleVerdictFromContext() {
	g, _ := New(Options{
		AllowedHosts: []string{"example.com"},
		Logger:       slog.New(slog.DiscardHandler),
		RejectHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, _ := VerdictFromContext(r.Context())
			fmt.Printf("rejected %q: label %s, text %q\n", v.Value, v.Reason.Label(), v.Reason)
			http.Error(w, "misdirected request", http.StatusMisdirectedRequest)
		}),
	})
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "evil.example"
	w := httptest.NewRecorder()
	g.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
	fmt.Println(w.Code)
	// Output:
	// rejected "evil.example": label not_allowed, text "host not in allow list"
	// 421
}

// TestReportOnly: every decision is made and logged as when enforcing, but
// a request that would be rejected is served; forwarded headers from an
// untrusted peer are still removed.
func TestReportOnly(t *testing.T) {
	var logs bytes.Buffer
	g := mustNew(t, Options{AllowedHosts: []string{"lhy.kr"}, Logger: newLogger(&logs), ReportOnly: true,
		RejectHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("the RejectHandler ran in report-only mode") })})
	type seenVerdict struct {
		v  Verdict
		ok bool
	}
	var seen []seenVerdict
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := VerdictFromContext(r.Context())
		seen = append(seen, seenVerdict{v, ok})
		if r.Header.Get("X-Forwarded-Host") != "" {
			t.Errorf("an untrusted peer's X-Forwarded-Host reached the handler: %q", r.Header.Get("X-Forwarded-Host"))
		}
	}))
	for _, host := range []string{"lhy.kr", "10.0.1.23:80", "a..b"} {
		r := httptest.NewRequest("GET", "/health", nil)
		r.Host = host
		r.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
		r.Header.Set("X-Forwarded-Host", "evil.example")
		if w := serve(h, r); w.Code != 200 {
			t.Errorf("%s: %d, want 200 in report-only mode", host, w.Code)
		}
	}
	// The allowed host carries no verdict; the two rejected ones carry
	// theirs, unenforced.
	want := []seenVerdict{
		{Verdict{}, false},
		{Verdict{Reason: ReasonNotAllowed, Value: "10.0.1.23:80", DropForwarded: true}, true},
		{Verdict{Reason: ReasonEmptyLabel, Value: "a..b", DropForwarded: true}, true},
	}
	if !slices.Equal(seen, want) {
		t.Errorf("verdicts seen by the handler:\n got %+v\nwant %+v", seen, want)
	}
	log := logs.String()
	for _, want := range []string{"load-balancer health check rejected (report-only: served anyway)", "enforced=false", "add @self", `host=a..b`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	v := g.CheckRequest(&Request{Host: "evil.example", Path: "/"})
	if v.Allowed() || v.Enforced || !v.Passes() {
		t.Errorf("CheckRequest in report-only mode: %+v", v)
	}
}
