package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func readyz(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	return w.Code, w.Body.String()
}

// TestReadiness: 503 with the reasons until @self is settled and the
// listener open, the upstream checked when asked and the answer kept for
// a second, the echo backend always ready.
func TestReadiness(t *testing.T) {
	echo := newReadiness(nil, time.Second, 2)
	if code, body := readyz(t, echo); code != 503 || body != "not ready: discovering @self; the proxy's listener is not open yet\n" {
		t.Errorf("before discovery: %d %q", code, body)
	}
	echo.setSelf(true, "@self discovered (10.0.1.23)")
	echo.setListening("127.0.0.1:8080")
	if code, body := readyz(t, echo); code != 200 || body != "ready: allow list loaded (2 entries); @self discovered (10.0.1.23); listening on 127.0.0.1:8080; upstream: the built-in echo backend\n" {
		t.Errorf("echo: %d %q", code, body)
	}
	// --allow-missing: ready, and saying what is missing.
	echo.setSelf(true, "@self missing (--allow-missing: serving the listed names only and retrying): discovery failed: x")
	if code, body := readyz(t, echo); code != 200 || !strings.Contains(body, "@self missing") {
		t.Errorf("allow-missing: %d %q", code, body)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &url.URL{Scheme: "http", Host: l.Addr().String()}
	r := newReadiness(up, 5*time.Second, 1)
	r.setSelf(true, "@self not in the list")
	r.setListening("127.0.0.1:8080")
	if code, body := readyz(t, r); code != 200 || !strings.Contains(body, "upstream "+up.String()+" accepts connections") {
		t.Errorf("upstream up: %d %q", code, body)
	}
	l.Close()
	// Within the second, the answer is the last check's.
	r.mu.Lock()
	r.checked = time.Now()
	r.mu.Unlock()
	if code, _ := readyz(t, r); code != 200 {
		t.Errorf("cached: %d", code)
	}
	// Past it, the upstream is asked again.
	r.mu.Lock()
	r.checked = time.Now().Add(-2 * upCacheFor)
	r.mu.Unlock()
	if code, body := readyz(t, r); code != 503 || !strings.Contains(body, "not ready: upstream "+up.String()+" accepts no connection: dial tcp") {
		t.Errorf("upstream down: %d %q", code, body)
	}
	if r.dialTimeout != time.Second {
		t.Errorf("dial timeout %v: a probe's budget is 1 s", r.dialTimeout)
	}
}

func TestCertAddrs(t *testing.T) {
	self := []netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:10.0.1.23")}
	want := []netip.Addr{netip.MustParseAddr("10.0.1.23"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if got := certAddrs(self); !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// TestProxyProcessOperations runs the command with --metrics and JSON
// logs: /readyz before and after the upstream goes away, the build info
// beside the proxy's metrics, and @self as a JSON array in the log.
func TestProxyProcessOperations(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	addr, metrics := freeAddr(t), freeAddr(t)
	_, logs := startProcess(t, addr, "proxy", "--listen", addr, "--upstream", up.URL, "--allow", "lhy.kr,@self",
		"--platform", "none", "--self", "127.0.0.1,10.0.1.23", "--metrics", metrics, "--log-format", "json")

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, "@self discovered (10.0.1.23, 127.0.0.1)") || !strings.Contains(body, "accepts connections") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	_, m := get("/metrics")
	for _, want := range []string{`hostguard_build_info{goarch="`, `goversion="go`, `version="`, "hostguard_self_addresses 2", "hostguard_requests_accepted_total"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}

	up.Close()
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, body = get("/readyz"); code == 503 {
			break
		}
	}
	if code != 503 || !strings.Contains(body, "accepts no connection") {
		t.Errorf("/readyz with the upstream down: %d %q", code, body)
	}

	var serving struct {
		Msg  string
		Self []string `json:"self"`
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"hostguard proxy: serving"`) {
			if err := json.Unmarshal([]byte(line), &serving); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
		}
	}
	if !slices.Equal(serving.Self, []string{"10.0.1.23", "127.0.0.1"}) {
		t.Errorf("self in the JSON log: %q\n%s", serving.Self, logs)
	}
}

// TestProxyProcessReadyzDuringDiscovery: while @self is discovered /readyz
// answers 503 and says so; with --allow-missing a failed discovery is
// ready and says what is missing.
func TestProxyProcessReadyzDuringDiscovery(t *testing.T) {
	release := make(chan struct{})
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "gone", http.StatusForbidden)
	}))
	defer imds.Close()
	addr, metrics := freeAddr(t), freeAddr(t)
	startProcess(t, metrics, "proxy", "--listen", addr, "--allow", "lhy.kr,@self", "--platform", "ec2",
		"--imds-endpoint", imds.URL, "--allow-missing", "--metrics", metrics, "--timeout", "10s")
	get := func() (int, string) {
		resp, err := http.Get("http://" + metrics + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 503 || !strings.Contains(body, "discovering @self") {
		t.Errorf("during discovery: %d %q", code, body)
	}
	close(release) // the metadata service answers 403: discovery fails
	var code int
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if code, body = get(); code == 200 {
			break
		}
	}
	if code != 200 || !strings.Contains(body, "@self missing") || !strings.Contains(body, "upstream: the built-in echo backend") {
		t.Errorf("after a failed discovery with --allow-missing: %d %q", code, body)
	}
}
