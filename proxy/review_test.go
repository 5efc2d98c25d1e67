package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests written by an independent review of issue 17's fix: each one holds
// a finding of the review.

// TestReviewPoolReusedAfterIdle: a pooled connection idle for longer than
// the proxy's poll interval (the read deadline left by the last exchange
// has passed) is still looked at and reused, not thrown away: otherwise
// the pool only works under load, and every request after a quiet second
// pays a new connection (and a TLS handshake for an https upstream).
func TestReviewPoolReusedAfterIdle(t *testing.T) {
	var dials atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				eachRequest(br, func(req *http.Request) bool { return answerPath(c, br, req) })
			}()
		}
	}()
	addr := serveProxy(t, testGuard(t), serverForms[0], l.Addr().String(), Options{})
	for i, gap := range []time.Duration{0, 1500 * time.Millisecond, 2500 * time.Millisecond} {
		time.Sleep(gap)
		if a := ask(addr, "GET", "/x", ""); a.err != nil || a.status != 200 {
			t.Fatalf("request %d: %v", i, a)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("the proxy dialled the upstream %d times for 3 requests 1.5 s and 2.5 s apart, want 1 (the pooled connection was alive and quiet)", n)
	}
}

// TestReviewTLSStrayRecord: over an https upstream, bytes the upstream
// sends after a framed answer may sit decrypted or undecrypted in the TLS
// layer's buffers, where neither the proxy's reader nor a MSG_PEEK on the
// TCP socket sees them. The next client must still get its own answer.
// Here the stray answer's record comes whole in the answer's TCP write.
func TestReviewTLSStrayRecord(t *testing.T) {
	testTLSStray(t, (*holdingConn).flush)
}

// TestReviewTLSPartialStrayRecord: the answer's last record and the first
// 8 bytes of a stray record arrive in one read; crypto/tls keeps the
// partial record where neither the look at the socket nor a read of
// crypto/tls shows it, and the rest arrives 300 ms later, after the
// connection could have been reused. The record framing followed below
// crypto/tls (recordConn) must refuse the connection.
func TestReviewTLSPartialStrayRecord(t *testing.T) {
	testTLSStray(t, func(hc *holdingConn) error {
		hc.hold = false
		held := append([]byte(nil), hc.buf...)
		hc.buf = hc.buf[:0]
		cut := 5 + int(held[3])<<8 + int(held[4]) + 8 // the first record, and 8 bytes
		if _, err := hc.Conn.Write(held[:cut]); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		_, err := hc.Conn.Write(held[cut:])
		return err
	})
}

// testTLSStray runs two clients in a row, rounds times, through both forms
// to an https upstream that answers the first with its answer and a stray
// one, sent by release from what the TLS layer wrote.
func testTLSStray(t *testing.T, release func(*holdingConn) error) {
	t.Helper()
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	defer ts.Close()
	cfg := ts.TLS.Clone()
	cfg.NextProtos = nil
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		for {
			rc, err := raw.Accept()
			if err != nil {
				return
			}
			hc := &holdingConn{Conn: rc}
			c := tls.Server(hc, cfg)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				eachRequest(br, func(req *http.Request) bool {
					if req.URL.Path != "/c1" {
						return answerPath(c, br, req)
					}
					// The answer, then the stray answer in a record of its
					// own, held until release sends them.
					hc.hold = true
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
					_, _ = io.WriteString(c, strayAnswer)
					return release(hc) == nil
				})
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	g := testGuard(t)
	for _, form := range serverForms {
		t.Run(form.name, func(t *testing.T) {
			u, _ := url.Parse("https://" + raw.Addr().String())
			p, err := New(Options{Guard: g, Upstream: u, Logger: quiet(), TLSConfig: &tls.Config{RootCAs: roots}})
			if err != nil {
				t.Fatal(err)
			}
			addr := serveWith(t, p, form)
			bad, rounds := 0, reviewRounds()
			for i := range rounds {
				first := ask(addr, "GET", "/c1", "")
				second := ask(addr, "GET", "/c2", "")
				msg := crossed(first, second)
				if msg == "" && (first.err != nil || first.body != "first") {
					msg = "the first client got " + first.String()
				}
				if msg != "" {
					if bad == 0 {
						t.Errorf("round %d: %s", i, msg)
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d rounds crossed", bad, rounds)
			}
		})
	}
}

// eachRequest reads requests from br, each head raw then parsed by
// net/http, and hands them to handle until a head does not read or parse
// or handle returns false.
func eachRequest(br *bufio.Reader, handle func(*http.Request) bool) {
	for {
		head, err := readRawHead(br)
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil || !handle(req) {
			return
		}
	}
}

// holdingConn collects what is written while hold is set, for flush to
// write at once.
type holdingConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *holdingConn) Write(b []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *holdingConn) flush() error {
	c.hold = false
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// serveWith serves p in form on a new listener and returns its address.
func serveWith(t *testing.T, p *Proxy, form serverForm) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- form.serve(p, ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// reviewRounds is how many rounds the review's race tests run: 5, or
// HOSTGUARD_REVIEW_ROUNDS.
func reviewRounds() int {
	if n, err := strconv.Atoi(os.Getenv("HOSTGUARD_REVIEW_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// TestReviewConcurrentStray: sixteen clients at once through a pool of two,
// to an application that sends a whole stray answer in the same write as
// some of its answers (a body longer than its Content-Length, bytes after
// the last chunk) and a body on HEAD answers in a write after the head.
// The stray bytes are always in the socket before the answer is passed
// on, so every client must get its own answer: none gets the attacker's
// page, another client's answer, or a 502.
func TestReviewConcurrentStray(t *testing.T) {
	app := rawApp(t, func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
		if req.ContentLength > 0 {
			if _, err := io.CopyN(io.Discard, br, req.ContentLength); err != nil {
				return false
			}
		}
		body := "answer:" + req.URL.Path
		var err error
		switch {
		case req.Method == http.MethodHead:
			if _, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n"); err == nil {
				time.Sleep(time.Millisecond)
				_, err = io.WriteString(c, "attacker's page")
			}
		case strings.HasPrefix(req.URL.Path, "/long"):
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s%s", len(body), body, strayAnswer)
		case strings.HasPrefix(req.URL.Path, "/chunk"):
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n%s", len(body), body, strayAnswer)
		default:
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
		return err == nil
	})
	g := testGuard(t)
	for _, form := range serverForms {
		t.Run(form.name, func(t *testing.T) {
			addr := serveProxy(t, g, form, app, Options{MaxIdleConns: 2})
			var mu sync.Mutex
			var bad []string
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 40 {
						kind := []string{"/long", "/chunk", "/plain", "/post"}[(w+i)%4]
						path := fmt.Sprintf("%s-%d-%d", kind, w, i)
						var a answer
						want := "answer:" + path
						switch {
						case (w+i)%7 == 0:
							a, want = ask(addr, "HEAD", path, ""), ""
						case kind == "/post":
							a = askWith(addr, "POST", path, "Content-Length: 4\r\n", "body")
						default:
							a = ask(addr, "GET", path, "")
						}
						if a.err != nil || a.status != 200 || a.body != want {
							mu.Lock()
							bad = append(bad, fmt.Sprintf("%s got %v", path, a))
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if len(bad) > 0 {
				t.Errorf("%d of 640 clients did not get their own answer, first: %s", len(bad), bad[0])
			}
		})
	}
}

// TestReviewSlowAnswerAfterTimedRead: while the proxy waits for the
// upstream it looks at the client's connection each second (a peek) to
// notice a client that left. That look must not take a client whose read
// deadline (the header timeout of a head that came in two pieces, the body
// timeout of a request body) has passed for one that left: the upstream
// may take up to its own timeout to answer.
func TestReviewSlowAnswerAfterTimedRead(t *testing.T) {
	const slow = 3500 * time.Millisecond // beyond the client's timeouts below, within the upstream's
	app := rawApp(t, func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
		time.Sleep(slow)
		return answerPath(c, br, req) // reads the body
	})
	g := testGuard(t)
	for _, tc := range []struct{ name, first, rest string }{
		{"a head in two pieces", "GET /split HTTP/1.1\r\nHost: " + allowed + "\r\n", "X-A: b\r\n\r\n"},
		{"a request body", "POST /body HTTP/1.1\r\nHost: " + allowed + "\r\nContent-Length: 4\r\n\r\n", "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse("http://" + app)
			p, err := New(Options{Guard: g, Upstream: u, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- p.Serve(ctx, l, ServerOptions{Logger: quiet(), ReadHeaderTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second})
			}()
			defer func() { cancel(); <-done }()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, tc.first)
			time.Sleep(100 * time.Millisecond)
			_, _ = io.WriteString(c, tc.rest)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("a client that stayed got no answer from an upstream %v slow: %v", slow, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
		})
	}
}
