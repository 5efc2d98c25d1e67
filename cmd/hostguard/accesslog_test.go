package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// getHost sends GET path to the proxy at addr with Host host.
func getHost(t *testing.T, addr, host, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls (bounded) until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

func fileHas(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// TestProxyProcessAccessLogReopen runs the real command with the access log
// in a file named by HOSTGUARD_ACCESS_LOG: a line per request, appended;
// after the file is renamed away (logrotate), SIGHUP makes the proxy write
// to a new file of the same name.
func TestProxyProcessAccessLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	if err := os.WriteFile(path, []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOSTGUARD_ACCESS_LOG", path)
	addr := freeAddr(t)
	cmd, logs := startProcess(t, addr, "proxy", "--listen", addr, "--allow", "lhy.kr")
	if code := getHost(t, addr, "lhy.kr", "/first"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	if code := getHost(t, addr, "evil.example", "/second"); code != 400 {
		t.Fatalf("rejected request: %d", code)
	}
	waitFor(t, "the lines of the first two requests", func() bool { return fileHas(path, `"GET /second HTTP/1.1" 400`) })
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "kept" || !strings.Contains(lines[1], `"GET /first HTTP/1.1" 200 `) ||
		!strings.Contains(lines[2], `host="evil.example" reason=not_allowed`) {
		t.Fatalf("access log (appended to what was there):\n%s", b)
	}

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the access log reopened under its name", func() bool { _, err := os.Stat(path); return err == nil })
	if code := getHost(t, addr, "lhy.kr", "/third"); code != 200 {
		t.Fatalf("third request: %d", code)
	}
	waitFor(t, "the third request's line in the new file", func() bool { return fileHas(path, `"GET /third HTTP/1.1" 200 `) })
	if fileHas(rotated, "/third") {
		t.Errorf("the renamed file got the line written after SIGHUP")
	}
	if strings.Contains(logs.String(), "reopening the access log failed") {
		t.Errorf("logs: %s", logs)
	}
}

// TestProxyProcessAccessLogStderrJSON: --access-log alone writes to
// standard error, as JSON with --log-format json.
func TestProxyProcessAccessLogStderrJSON(t *testing.T) {
	addr := freeAddr(t)
	_, logs := startProcess(t, addr, "proxy", "--listen", addr, "--allow", "lhy.kr", "--access-log", "--log-format", "json")
	if code := getHost(t, addr, "lhy.kr", "/json?x=1"); code != 200 {
		t.Fatalf("request: %d", code)
	}
	waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), `"request":"GET /json?x=1 HTTP/1.1"`) })
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, `"request":`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if m["status"] != 200.0 || m["host"] != "lhy.kr" || m["remote_addr"] != "127.0.0.1" {
			t.Errorf("access log line: %s", line)
		}
	}
}

// TestAccessLogFlagErrors: a file that cannot be opened is a usage error
// that names the flag.
func TestAccessLogFlagErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	e := testEnv("", &stdout, &stderr, nil)
	code := run(e, []string{"proxy", "--allow", "lhy.kr", "--access-log=" + filepath.Join(t.TempDir(), "no", "such", "dir", "a.log"), "--check"})
	if code != exitUsage || !strings.Contains(stderr.String(), "--access-log") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	// --access-log takes its file after "=" only: a file after a space
	// is an argument, and the error says how to write it.
	stderr.Reset()
	code = run(e, []string{"proxy", "--allow", "lhy.kr", "--access-log", "/tmp/a.log", "--check"})
	if code != exitUsage || !strings.Contains(stderr.String(), "--access-log=/tmp/a.log") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
