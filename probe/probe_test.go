package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
