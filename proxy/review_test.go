package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
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
				for {
					head, err := readRawHead(br)
					if err != nil {
						return
					}
					req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
					if err != nil || !answerPath(c, br, req) {
						return
					}
				}
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
func TestReviewTLSStrayRecord(t *testing.T) {
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
				for {
					head, err := readRawHead(br)
					if err != nil {
						return
					}
					req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
					if err != nil {
						return
					}
					if req.URL.Path == "/c1" {
						// The answer, then the stray answer in a record of
						// its own, in one TCP write: both reach the proxy
						// together, before any next request.
						hc.hold = true
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
						_, _ = io.WriteString(c, strayAnswer)
						if err := hc.flush(); err != nil {
							return
						}
						continue
					}
					if !answerPath(c, br, req) {
						return
					}
				}
			}()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	g := testGuard(t)
	for _, form := range serverForms {
		t.Run(form.name, func(t *testing.T) {
			if form.name == "net/http" && os.Getenv("HOSTGUARD_REVIEW_UNSKIP") == "" {
				t.Skip("review finding: net/http's Transport puts the connection in its pool before its read loop looks at what follows the answer " +
					"(transport.go: tryPutIdleConn, then Peek); a request that takes it in between gets the stray answer " +
					"(about 1 round in 7 under -race, over TLS and plain TCP alike); no small fix, see the review report")
			}
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
