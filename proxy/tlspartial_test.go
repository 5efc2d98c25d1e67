package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestReviewTLSPartialStrayRecord: over an https upstream, the answer's
// last record and the first bytes of a stray record arrive in one read;
// crypto/tls keeps the partial record where neither the look at the
// socket nor a read of crypto/tls shows it, and the rest arrives after the
// connection was reused: the next client would get the stray answer. The
// record framing followed below crypto/tls (recordConn) must refuse the
// connection.
func TestReviewTLSPartialStrayRecord(t *testing.T) {
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
						// The answer's record and the first 8 bytes of the
						// stray record now, the rest 300 ms later.
						hc.hold = false
						whole := append([]byte(nil), hc.buf...)
						hc.buf = hc.buf[:0]
						cut := firstRecordLen(whole) + 8
						if _, err := hc.Conn.Write(whole[:cut]); err != nil {
							return
						}
						time.Sleep(300 * time.Millisecond)
						_, _ = hc.Conn.Write(whole[cut:])
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

// firstRecordLen is the length of the first TLS record in b, header
// included.
func firstRecordLen(b []byte) int { return 5 + int(b[3])<<8 + int(b[4]) }
