package proxy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

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
		fields = append(fields, strings.ToLower(name)+": "+strings.Join(values, ", "))
	}
	slices.Sort(fields)
	return fmt.Sprintf("%s %s Host=%q %q body=%q", r.req.Method, r.req.RequestURI, r.req.Host, fields, r.body)
}
