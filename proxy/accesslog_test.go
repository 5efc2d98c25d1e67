package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
)

// lineBuffer collects access log lines written concurrently.
type lineBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

// waitLines waits (bounded) for n lines and returns them. The line is
// written after the answer, so the client may see the answer first.
func (l *lineBuffer) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		s, writes := l.b.String(), l.writes
		l.mu.Unlock()
		lines := strings.SplitAfter(s, "\n")
		lines = lines[:len(lines)-1] // after the last "\n"
		if len(lines) >= n {
			if writes != len(lines) {
				t.Errorf("%d writes for %d lines: a line must be one Write", writes, len(lines))
			}
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access log lines, want %d: %q", len(lines), n, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// combined matches a text line: nginx's combined format, then the verdict
// and the times. No field may hold a quote or a control byte.
var combined = regexp.MustCompile(`^(127\.0\.0\.1) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "((?:[^"\\\x00-\x1f\x7f-\xff]|\\[ -~])*)" (\d{3}) (\d+) "((?:[^"\\\x00-\x1f\x7f-\xff]|\\[ -~])*)" "((?:[^"\\\x00-\x1f\x7f-\xff]|\\[ -~])*)" host=(?:"((?:[^"\\\x00-\x1f\x7f-\xff]|\\[ -~])*)"|(-)) reason=([a-z_-]+) upstream_ttfb=(-|\d+\.\d{3}) request_time=(\d+\.\d{3})\n$`)

type textLine struct {
	request, status, bytes, referer, ua, host, reason, ttfb string
}

func parseText(t *testing.T, line string) textLine {
	t.Helper()
	m := combined.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("access log line not in the format: %q", line)
	}
	return textLine{request: m[3], status: m[4], bytes: m[5], referer: m[6], ua: m[7], host: m[8] + m[9], reason: m[10], ttfb: m[11]}
}

func TestAccessLogLines(t *testing.T) {
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			var log lineBuffer
			f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{AccessLog: &log}, ServerOptions{})
			if code, _ := get(t, f.url+"/a/b?c=d", "lhy.kr", map[string]string{"User-Agent": "curl/8.5", "Referer": "https://lhy.kr/"}); code != 200 {
				t.Fatalf("allowed: %d", code)
			}
			if code, _ := get(t, f.url+"/wp-login.php", "evil.example", map[string]string{"User-Agent": "scanner"}); code != 400 {
				t.Fatalf("rejected: %d", code)
			}
			lines := log.waitLines(t, 2)
			ok := parseText(t, lines[0])
			want := textLine{request: "GET /a/b?c=d HTTP/1.1", status: "200", bytes: "6", referer: "https://lhy.kr/", ua: "curl/8.5", host: "lhy.kr", reason: "-"}
			if ok.ttfb == "-" {
				t.Errorf("allowed request without the upstream's time to first byte: %q", lines[0])
			}
			ok.ttfb = ""
			if ok != want {
				t.Errorf("allowed request:\n got %+v\nwant %+v", ok, want)
			}
			bad := parseText(t, lines[1])
			want = textLine{request: "GET /wp-login.php HTTP/1.1", status: "400", bytes: fmt.Sprint(len(hostguard.RejectBody)),
				referer: "-", ua: "scanner", host: "evil.example", reason: "not_allowed", ttfb: "-"}
			if bad != want {
				t.Errorf("rejected request:\n got %+v\nwant %+v", bad, want)
			}
		})
	}
}

func TestAccessLogUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			var log lineBuffer
			f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u, AccessLog: &log}, ServerOptions{})
			if code, _ := get(t, f.url+"/", "lhy.kr", nil); code != http.StatusBadGateway {
				t.Fatalf("upstream down: %d", code)
			}
			got := parseText(t, log.waitLines(t, 1)[0])
			if got.status != "502" || got.ttfb != "-" || got.reason != "-" || got.host != "lhy.kr" || got.bytes == "0" {
				t.Errorf("upstream down: %+v", got)
			}
		})
	}
}

// TestAccessLogHostile: what a client controls (the request line, Host,
// Referer, User-Agent) is escaped as the rejection log escapes it; no
// quote, backslash sequence or byte of it can end a field or a line.
func TestAccessLogHostile(t *testing.T) {
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			for _, format := range []string{"text", "json"} {
				var log lineBuffer
				f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{AccessLog: &log, AccessLogJSON: format == "json"}, ServerOptions{})
				ua := "a\"b\\\" \"x\" \tz\xff\xc3\xa4 reason=fake"
				host := "evil\".example\\"
				if name == "net/http" {
					// net/http's server refuses such a Host itself, before
					// any handler: the Guard never sees it.
					host = "evil.example'$(x)"
				}
				referer := "\" 200 0 \"-"
				resp := rawRequest(t, f.addr, "GET /p?q=\"x\"\\ HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: "+ua+"\r\nReferer: "+referer+"\r\nConnection: close\r\n\r\n")
				if resp.StatusCode != 400 {
					t.Fatalf("%s: hostile request answered %d", format, resp.StatusCode)
				}
				line := log.waitLines(t, 1)[0]
				for i := 0; i < len(line)-1; i++ {
					if c := line[i]; c < 0x20 || c >= 0x7f {
						t.Fatalf("%s: raw byte %#x in line %q", format, c, line)
					}
				}
				if format == "json" {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("json line %q: %v", line, err)
					}
					want := map[string]any{"host": string(appendEscaped(nil, host)), "user_agent": string(appendEscaped(nil, ua)),
						"referer": string(appendEscaped(nil, referer))}
					for k, v := range want {
						if m[k] != v {
							t.Errorf("json %s = %q, want %q", k, m[k], v)
						}
					}
					continue
				}
				got := parseText(t, line)
				if got.ua != `a\"b\\\" \"x\" \tz\xff\u00e4 reason=fake` || got.host != string(appendEscaped(nil, host)) || got.referer != `\" 200 0 \"-` {
					t.Errorf("hostile values: %+v", got)
				}
				if got.status != "400" || got.reason == "-" {
					t.Errorf("hostile request: %+v", got)
				}
			}
		})
	}
}

func TestAccessLogJSON(t *testing.T) {
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			var log lineBuffer
			f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{AccessLog: &log, AccessLogJSON: true}, ServerOptions{})
			get(t, f.url+"/x", "lhy.kr", map[string]string{"User-Agent": "ua"})
			get(t, f.url+"/x", "10.1.2.3", map[string]string{"User-Agent": "ELB-HealthChecker/2.0"})
			lines := log.waitLines(t, 2)
			var ok, bad struct {
				RemoteAddr    string   `json:"remote_addr"`
				Time          string   `json:"time"`
				Request       string   `json:"request"`
				Status        int      `json:"status"`
				BodyBytesSent int64    `json:"body_bytes_sent"`
				Referer       string   `json:"referer"`
				UserAgent     string   `json:"user_agent"`
				Host          string   `json:"host"`
				Reason        *string  `json:"reason"`
				UpstreamTTFB  *float64 `json:"upstream_ttfb"`
				RequestTime   *float64 `json:"request_time"`
			}
			for i, v := range []any{&ok, &bad} {
				dec := json.NewDecoder(strings.NewReader(lines[i]))
				dec.DisallowUnknownFields()
				if err := dec.Decode(v); err != nil {
					t.Fatalf("line %q: %v", lines[i], err)
				}
			}
			if _, err := time.Parse(time.RFC3339, ok.Time); err != nil {
				t.Errorf("time %q: %v", ok.Time, err)
			}
			if ok.RemoteAddr != "127.0.0.1" || ok.Request != "GET /x HTTP/1.1" || ok.Status != 200 || ok.BodyBytesSent != 6 ||
				ok.UserAgent != "ua" || ok.Host != "lhy.kr" || ok.Reason != nil || ok.UpstreamTTFB == nil || ok.RequestTime == nil {
				t.Errorf("allowed: %s", lines[0])
			}
			if bad.Status != 400 || bad.Host != "10.1.2.3" || bad.Reason == nil || *bad.Reason != "not_allowed" || bad.UpstreamTTFB != nil ||
				bad.UserAgent != "ELB-HealthChecker/2.0" {
				t.Errorf("rejected: %s", lines[1])
			}
		})
	}
}

// TestAccessLogTunnel: a WebSocket tunnel gets its line when it opens,
// while it is still open.
func TestAccessLogTunnel(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			var log lineBuffer
			f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{Upstream: u, AccessLog: &log}, ServerOptions{})
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: lhy.kr\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", err, resp)
			}
			got := parseText(t, log.waitLines(t, 1)[0])
			if got.status != "101" || got.request != "GET /ws HTTP/1.1" || got.host != "lhy.kr" || got.ttfb == "-" {
				t.Errorf("tunnel line: %+v", got)
			}
		})
	}
}

// TestAccessLogClientError: a request refused for its form gets a line
// with the status it was answered.
func TestAccessLogClientError(t *testing.T) {
	for name, serve := range bothServers {
		t.Run(name, func(t *testing.T) {
			var log lineBuffer
			f := serve(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{AccessLog: &log}, ServerOptions{})
			resp := rawRequest(t, f.addr, "TRACE / HTTP/1.1\r\nHost: lhy.kr\r\n\r\n")
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("TRACE: %d", resp.StatusCode)
			}
			got := parseText(t, log.waitLines(t, 1)[0])
			if got.status != "405" || got.ttfb != "-" || got.reason != "-" || got.bytes == "0" {
				t.Errorf("TRACE: %+v", got)
			}
		})
	}
}
