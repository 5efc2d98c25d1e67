package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostguard/hostguard/internal/netwait"
	"github.com/hostguard/hostguard/internal/syncbuf"
)

func TestProxyCheck(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "proxy", "--allow", "lhy.kr,@self", "--upstream", "http://127.0.0.1:8000", "--check")
	if code != exitOK || !strings.Contains(stdout, `canonical host "lhy.kr"`) {
		t.Errorf("%d %q %q", code, stdout, stderr)
	}
	var out, errb bytes.Buffer
	e := testEnv("", &out, &errb, map[string]string{"HOSTGUARD_ALLOW": "lhy.kr", "HOSTGUARD_UPSTREAM": "http://app:8000", "HOSTGUARD_LISTEN": ":9000"})
	if code := run(e, []string{"proxy", "--check"}); code != exitOK || !strings.Contains(out.String(), "serve http on :9000 for http://app:8000") {
		t.Errorf("from env: %d %q %q", code, out.String(), errb.String())
	}
}

func TestProxyUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"proxy"}, nil, "no allow list"},
		{[]string{"proxy", "--allow", "lhy.kr", "--upstream", "127.0.0.1:8000"}, nil, `"127.0.0.1:8000"`},
		{[]string{"proxy", "--allow", "lhy.kr/x"}, nil, `"lhy.kr/x"`},
		{[]string{"proxy", "--allow", ".lhy.kr,@self"}, nil, "--canonical-host"},
		{[]string{"proxy", "--allow", "lhy.kr", "--trusted-proxy", "10.0.0.0/99"}, nil, `"10.0.0.0/99"`},
		{[]string{"proxy", "--allow", "lhy.kr", "--log-format", "xml"}, nil, `"xml"`},
		{[]string{"proxy", "--allow", "lhy.kr"}, map[string]string{"HOSTGUARD_GRACE": "forever"}, "HOSTGUARD_GRACE"},
		{[]string{"proxy", "--allow", "lhy.kr"}, map[string]string{"HOSTGUARD_ALLOW_MISSING": "maybe"}, "HOSTGUARD_ALLOW_MISSING"},
		{[]string{"proxy", "--allow", "lhy.kr", "--platform", "mars"}, nil, `"mars"`},
		{[]string{"proxy", "--allow", "lhy.kr", "--tls-cert", "c.pem"}, nil, "--tls-key go together"},
		{[]string{"proxy", "--allow", "lhy.kr", "--tls-cert", "missing.pem", "--tls-key", "k.pem"}, nil, "missing.pem"},
		{[]string{"proxy", "--allow", "lhy.kr", "--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, "exclude each other"},
	} {
		var out, errb bytes.Buffer
		if code := run(testEnv("", &out, &errb, tt.env), tt.args); code != exitUsage || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%q %v: %d %q", tt.args, tt.env, code, errb.String())
		}
	}
}

func TestProxyRefusesWithoutSelf(t *testing.T) {
	vars := map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closedURL(t)}
	var out, errb bytes.Buffer
	code := run(testEnv("", &out, &errb, vars), []string{"proxy", "--allow", "lhy.kr,@self", "--platform", "ec2", "--listen", "127.0.0.1:0", "--timeout", "1s"})
	if code != exitFail || !strings.Contains(errb.String(), "not starting") || !strings.Contains(errb.String(), "--allow-missing") {
		t.Errorf("%d %q", code, errb.String())
	}
}

// startProcess runs the test binary as hostguard and waits until addr
// accepts connections.
func startProcess(t *testing.T, addr string, args ...string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HOSTGUARD_TEST_MAIN=1")
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := netwait.Listening(addr, 15*time.Second); err != nil {
		t.Fatalf("hostguard: %v: %s", err, logs.String())
	}
	return cmd, logs
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestProxyProcessDrainsOnSIGTERM runs the real command: a request in
// flight when SIGTERM arrives completes, and the process exits 0.
func TestProxyProcessDrainsOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		fmt.Fprintf(w, "app saw %s", r.Host)
	}))
	defer up.Close()
	addr := freeAddr(t)
	metrics := freeAddr(t)
	cmd, logs := startProcess(t, addr, "proxy", "--listen", addr, "--upstream", up.URL, "--allow", "lhy.kr,@self",
		"--platform", "none", "--self", "127.0.0.1", "--metrics", metrics)

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "hostguard_self_addresses 1") {
		t.Errorf("metrics: %s", m)
	}
	// The proxy's own liveness, on the same listener, without the app.
	if resp, err := http.Get("http://" + metrics + "/livez"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/livez: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// SIGHUP rediscovers @self: the address is logged a second time.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), `msg="hostguard proxy: @self"`) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh after SIGHUP:\n%s", logs)
		}
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: %s\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n", addr)
	<-started
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v\n%s", err, logs)
	}
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || string(body) != "app saw lhy.kr" {
		t.Errorf("in-flight request: %d %q", r.StatusCode, body)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs)
	}
	for _, want := range []string{"hostguard proxy: serving", "@self", "stopped after draining"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestProxyProcessTLS runs the command with a self-signed certificate for
// @self and the canonical host, as an HTTPS target group would check it.
func TestProxyProcessTLS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app saw %s %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer up.Close()
	addr := freeAddr(t)
	startProcess(t, addr, "proxy", "--listen", addr, "--upstream", up.URL, "--allow", "lhy.kr,@self",
		"--platform", "none", "--self", "127.0.0.1", "--tls-self-signed")
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "lhy.kr" || len(leaf.IPAddresses) == 0 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("self-signed certificate for %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	// @self holds 127.0.0.1, which loopback adds again: each name once.
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("certificate addresses %v, want [127.0.0.1 ::1]", leaf.IPAddresses)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/health/", nil)
	req.Host = addr // as the load balancer: the target's address
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "app saw lhy.kr https" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
}
