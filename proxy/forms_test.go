package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
)

// TestFormsForwardAlike holds the two server forms to one forwarding
// policy: every request of the differential suite, from an untrusted and
// from a trusted peer, must reach the upstream alike through Proxy.Serve
// and through the net/http form: same method, target, Host, fields (names
// compared case-insensitively, order ignored), forwarding values and body.
// No nginx is needed. The documented differences (docs/proxy.md, "The
// net/http form") are listed in readersDiffer.
func TestFormsForwardAlike(t *testing.T) {
	cases := diffCases()
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			g := testGuard(t)
			if trusted {
				var err error
				g, err = hostguard.New(hostguard.Options{AllowedHosts: []string{allowed, selfIP}, TrustedProxies: []string{"127.0.0.0/8"}, Logger: quiet()})
				if err != nil {
					t.Fatal(err)
				}
			}
			got := make([][][]upstreamRequest, len(serverForms)) // [form][case]
			sem := make(chan struct{}, 48)
			var wg sync.WaitGroup
			for f, form := range serverForms {
				got[f] = make([][]upstreamRequest, len(cases))
				for i, d := range cases {
					up := newRawUpstream(t)
					addr := serveProxy(t, g, form, up.addr(), Options{})
					wg.Add(1)
					sem <- struct{}{}
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						send(addr, d)
						got[f][i] = up.received()
					}()
				}
			}
			wg.Wait()
			for i, d := range cases {
				serve, nethttp := got[0][i], got[1][i]
				if readersDiffer[d.name] != "" {
					continue
				}
				if len(serve) != len(nethttp) {
					if d.netHTTPMore == "" && d.moreThanNginx == "" {
						t.Errorf("%s: the upstream received %d requests through Serve, %d through net/http", d.name, len(serve), len(nethttp))
					}
					continue
				}
				for k := range serve {
					a, b := forwardedView(serve[k]), forwardedView(nethttp[k])
					if a != b && d.netHTTPMore == "" {
						t.Errorf("%s: request %d differs\nServe:    %s\nnet/http: %s", d.name, k, a, b)
					}
				}
			}
		})
	}
}

// readersDiffer are the differential cases that net/http's reader and
// ReverseProxy treat otherwise than Serve's parser, each with why
// (docs/proxy.md, "The net/http form").
var readersDiffer = map[string]string{
	"empty lines before the request":   "net/http's reader refuses them; RFC 9112 §2.2 lets a server skip them, as Serve and nginx do",
	"bare LF lines before the request": "as above",
	"300 fields":                       "net/http limits the header's bytes only; Serve also limits fields to 256",
	"chunk size trailing space":        "net/http's chunked reader trims it; Serve refuses it",
	"trailer folded":                   "net/http's reader joins folded trailer lines; Serve refuses obs-fold",
	"UTF-8 in target":                  "ReverseProxy sends the target re-encoded (%C3%A4); Serve as the client sent it",
	"fragment in target":               "ReverseProxy sends '#' as %23; Serve as the client sent it",
	"bad escape in the query":          "ReverseProxy drops a query it cannot parse (cleanQueryParams); Serve passes it on",
}

// forwardedView is what the upstream received, in a form two forms can be
// compared by.
func forwardedView(r upstreamRequest) string {
	var fields []string
	for name, values := range r.req.Header {
		if strings.EqualFold(name, "Connection") && len(values) == 1 && values[0] == "close" {
			// A documented difference: the net/http form opens a connection
			// per request and says so to every one; Serve pools, and asks
			// the upstream to close only after a HEAD.
			continue
		}
		fields = append(fields, strings.ToLower(name)+": "+strings.Join(values, ", "))
	}
	slices.Sort(fields)
	return fmt.Sprintf("%s %s Host=%q %q body=%q", r.req.Method, r.req.RequestURI, r.req.Host, fields, r.body)
}

// TestEchoAlike: the built-in backend shows the same through both forms:
// what an upstream would receive, forwarding fields included, from
// untrusted and trusted peers.
func TestEchoAlike(t *testing.T) {
	requests := []string{
		rq("GET /a?b=1 HTTP/1.1", "Host: lhy.kr"),
		rq("GET / HTTP/1.1", "Host: "+selfIP),
		rq("GET http://lhy.kr/x HTTP/1.1", "Host: other.example"),
		rq("GET / HTTP/1.1", "Host: lhy.kr", "X-Forwarded-For: 203.0.113.5", "X-Real-IP: 203.0.113.5",
			"X-Forwarded-Proto: https", "X-Forwarded-Port: 443", "Forwarded: for=203.0.113.5"),
		rq("GET / HTTP/1.1", "Host: lhy.kr", "X-Forwarded-Host: lhy.kr", "X-Forwarded-For: 203.0.113.5, 198.51.100.7"),
		rq("HEAD / HTTP/1.1", "Host: LHY.KR."),
		rq("GET / HTTP/1.0"), // no Host: the canonical one, no X-Forwarded-Host
	}
	for _, trusted := range []bool{false, true} {
		o := hostguard.Options{AllowedHosts: []string{allowed, "@self"}, AllowEmptyHost: true, Logger: quiet()}
		if trusted {
			o.TrustedProxies = []string{"127.0.0.0/8"}
		}
		g, err := hostguard.New(o)
		if err != nil {
			t.Fatal(err)
		}
		g.SetSelf(testGuardSelf())
		var bodies [2][]string
		for f, form := range serverForms {
			p, err := New(Options{Guard: g, Logger: quiet()}) // no upstream: the echo
			if err != nil {
				t.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- form.serve(p, ctx, l) }()
			for _, raw := range requests {
				bodies[f] = append(bodies[f], rawAnswer(l.Addr().String(), raw))
			}
			cancel()
			<-done
		}
		for i := range requests {
			if bodies[0][i] != bodies[1][i] {
				t.Errorf("trusted=%v, %q:\nServe:    %s\nnet/http: %s", trusted, requests[i], bodies[0][i], bodies[1][i])
			}
		}
	}
}

func testGuardSelf() []netip.Addr { return []netip.Addr{netip.MustParseAddr(selfIP)} }

// rawAnswer sends raw on a new connection and returns the answer's status
// and body.
func rawAnswer(addr, raw string) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(4 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return err.Error()
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}
