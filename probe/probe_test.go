package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// app is a fake application with Django's allow-list behaviour.
func app(allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		for _, a := range allowed {
			ok = ok || strings.Split(r.Host, ":")[0] == a
		}
		if !ok {
			w.WriteHeader(400)
			fmt.Fprint(w, "<!doctype html><html><body><h1>Bad Request (400)</h1></body></html>")
			return
		}
		switch r.URL.Path {
		case "/health/":
			fmt.Fprint(w, "ok")
		case "/redirect/":
			http.Redirect(w, r, "https://lhy.kr/redirect/", http.StatusMovedPermanently)
		case "/boom/":
			w.WriteHeader(500)
		default:
			http.NotFound(w, r)
		}
	})
}

type seenReq struct{ host, ua, conn string }

func serve(t *testing.T, h http.Handler) (string, *[]seenReq) {
	var seen []seenReq
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn := "keep-alive"
		if r.Close {
			conn = "close"
		}
		seen = append(seen, seenReq{r.Host, r.UserAgent(), conn})
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &seen
}

func TestHealthyAndWhatIsSent(t *testing.T) {
	u, seen := serve(t, app("lhy.kr", "127.0.0.1"))
	port := u[strings.LastIndex(u, ":")+1:]
	for _, tt := range []struct {
		as       Checker
		host, ua string
	}{
		{ELB, "127.0.0.1:" + port, "ELB-HealthChecker/2.0"},
		{ClassicELB, "127.0.0.1:" + port, "ELB-HealthChecker/1.0"},
		{Kubernetes, "127.0.0.1:" + port, "kube-probe/1.31"},
		{GCE, "127.0.0.1", "GoogleHC/1.0"},
		{AzureAppGW, "127.0.0.1", ""},
	} {
		res, err := Run(context.Background(), Options{URL: u + "/health/", As: tt.as})
		if err != nil || !res.Healthy {
			t.Fatalf("%s: %v %+v", tt.as, err, res)
		}
		last := (*seen)[len(*seen)-1]
		if last.host != tt.host || last.ua != tt.ua || last.conn != "close" {
			t.Errorf("%s sent %+v, want Host %q UA %q Connection: close", tt.as, last, tt.host, tt.ua)
		}
	}
}

func TestAllowListDiagnosis(t *testing.T) {
	u, _ := serve(t, app("lhy.kr"))
	res, err := Run(context.Background(), Options{URL: u + "/health/", Host: "lhy.kr"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.Comparison == nil || res.Comparison.Status != 200 ||
		!strings.Contains(res.Cause, "allow-list problem") || !strings.Contains(res.Cause, "Django") || !strings.Contains(res.Fix, "@self") {
		t.Errorf("%+v", res)
	}
	// Without a name to compare, the Django page still names the cause.
	res, _ = Run(context.Background(), Options{URL: u + "/health/"})
	if res.Comparison != nil || !strings.Contains(res.Cause, "allow-list problem") || !strings.Contains(res.Fix, "--host") {
		t.Errorf("no comparison: %+v", res)
	}
	// Rejected with both Hosts: not the allow list.
	u2, _ := serve(t, app("other.example"))
	res, _ = Run(context.Background(), Options{URL: u2 + "/health/", Host: "lhy.kr"})
	if !strings.Contains(res.Cause, "not about the load balancer's Host") {
		t.Errorf("both rejected: %+v", res)
	}
}

// TestRejectionThenAnotherFailure: the app answers 400 to the load
// balancer's Host and 404 to the real name (a wrong health path behind the
// allow list). Both problems are named, each with its own status; the 404
// is not reported as a second 400.
func TestRejectionThenAnotherFailure(t *testing.T) {
	u, _ := serve(t, app("lhy.kr"))
	res, err := Run(context.Background(), Options{URL: u + "/wrong-path/", Host: "lhy.kr"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Healthy || res.Comparison == nil || res.Comparison.Status != 404 {
		t.Fatalf("%+v", res)
	}
	for _, want := range []string{"allow-list problem", "answered 400 to the load balancer's Host", `but 404 to Host "lhy.kr"`, "the health path does not exist (404)"} {
		if !strings.Contains(res.Cause, want) {
			t.Errorf("cause lacks %q: %s", want, res.Cause)
		}
	}
	if strings.Contains(res.Cause, "to both") || strings.Contains(res.Cause, "not about the load balancer's Host") {
		t.Errorf("wrong diagnosis: %s", res.Cause)
	}
	if !strings.Contains(res.Fix, "@self") || !strings.Contains(res.Fix, "health check path") {
		t.Errorf("fix: %s", res.Fix)
	}

	// 400 to the load balancer's Host, 403 to the name: refused whatever
	// the Host, and the message gives each status.
	u2, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "lhy.kr" {
			w.WriteHeader(403)
			return
		}
		w.WriteHeader(400)
	}))
	res, _ = Run(context.Background(), Options{URL: u2 + "/health/", Host: "lhy.kr"})
	if !strings.Contains(res.Cause, `answered 400 to Host`) || !strings.Contains(res.Cause, `403 to Host "lhy.kr"`) {
		t.Errorf("400 then 403: %s", res.Cause)
	}
}

func TestOtherFailures(t *testing.T) {
	u, _ := serve(t, app("127.0.0.1"))
	for path, want := range map[string]string{
		"/redirect/": "SECURE_SSL_REDIRECT",
		"/boom/":     "fails (500)",
		"/missing/":  "does not exist",
	} {
		res, err := Run(context.Background(), Options{URL: u + path})
		if err != nil || res.Healthy || !strings.Contains(res.Cause+" "+res.Fix, want) {
			t.Errorf("%s: %v %+v", path, err, res)
		}
	}
	res, _ := Run(context.Background(), Options{URL: u + "/redirect/", Expect: "200-399"})
	if !res.Healthy {
		t.Error("--expect 200-399 must accept a 301")
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + l.Addr().String() + "/health/"
	l.Close()
	res, _ = Run(context.Background(), Options{URL: closed})
	if res.Healthy || !strings.Contains(res.Cause, "connection refused") {
		t.Errorf("refused: %+v", res)
	}

	hang, _ := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	defer hang.Close()
	res, _ = Run(context.Background(), Options{URL: "http://" + hang.Addr().String() + "/", Timeout: 300 * time.Millisecond})
	if res.Healthy || !strings.Contains(res.Cause, "no answer in time") {
		t.Errorf("hang: %+v", res)
	}
}

func TestParse(t *testing.T) {
	if _, err := ParseChecker("alb"); err == nil || !strings.Contains(err.Error(), `"alb"`) {
		t.Errorf("ParseChecker: %v", err)
	}
	for _, bad := range []string{"", "abc", "99", "200-100", "600", "200-"} {
		if _, err := ParseCodes(bad); err == nil {
			t.Errorf("ParseCodes(%q) accepted", bad)
		}
	}
	c, err := ParseCodes("200-299, 301")
	if err != nil || !c.Match(204) || !c.Match(301) || c.Match(302) {
		t.Errorf("ParseCodes: %v %v", c, err)
	}
	if _, err := Run(context.Background(), Options{URL: "10.0.0.1/health"}); err == nil {
		t.Error("URL without scheme accepted")
	}
}

// TestHTTPS: an HTTPS target is checked without verifying its certificate,
// as load balancers do; plain HTTP on the TLS port and TLS on a plain port
// are each explained.
func TestHTTPS(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(app("lhy.kr", "127.0.0.1")) // a certificate nobody trusts
	t.Cleanup(tlsSrv.Close)
	plainURL, _ := serve(t, app("lhy.kr", "127.0.0.1"))
	for _, tt := range []struct {
		name, url string
		healthy   bool
		cause     string
	}{
		{"https, untrusted certificate", tlsSrv.URL + "/health/", true, ""},
		{"https to a plain port", strings.Replace(plainURL, "http://", "https://", 1) + "/health/", false, "speaks plain HTTP"},
		{"http to a TLS port", strings.Replace(tlsSrv.URL, "https://", "http://", 1) + "/health/", false, "speaks TLS"},
	} {
		res, err := Run(context.Background(), Options{URL: tt.url, Host: "lhy.kr"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Healthy != tt.healthy || !strings.Contains(res.Cause, tt.cause) {
			t.Errorf("%s: healthy %v, cause %q", tt.name, res.Healthy, res.Cause)
		}
	}

	// A handshake the target refuses: it serves TLS 1.3 only, the checker
	// speaks at most 1.2 (as an old load balancer policy).
	strict := httptest.NewUnstartedServer(app("127.0.0.1"))
	strict.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	strict.StartTLS()
	t.Cleanup(strict.Close)
	ex := send(context.Background(), 5*time.Second, mustURL(t, strict.URL+"/health/"), "127.0.0.1", "x", &tls.Config{MaxVersion: tls.VersionTLS12})
	res := &Result{Check: ex}
	if cause, _ := diagnose(res, Codes{{Lo: 200, Hi: 200}}, ""); !strings.Contains(cause, "TLS handshake") {
		t.Errorf("a refused handshake: %q (%v)", cause, ex.Err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
