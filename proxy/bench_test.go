package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/hostguard/hostguard"
)

// BenchmarkForward sends small requests over one kept-alive client
// connection through hostguard's proxy (Proxy.Serve, and the Proxy as an
// http.Handler on net/http) and, as the peer in the same run, through a
// stock httputil.ReverseProxy, to the same loopback upstream. bench/proxy.sh
// measures under load against nginx.
func BenchmarkForward(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from the upstream\n")
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	g, _ := hostguard.New(hostguard.Options{AllowedHosts: []string{"lhy.kr"}, Logger: quiet()})
	hg, err := New(Options{Guard: g, Upstream: u, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	// The same with the access log on, to a writer that costs nothing:
	// the cost of making the lines.
	hgLog, err := New(Options{Guard: g, Upstream: u, Logger: quiet(), AccessLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	onNetHTTP := func(h http.Handler) func(context.Context, net.Listener) error {
		return func(ctx context.Context, l net.Listener) error {
			return ServeHandler(ctx, l, h, ServerOptions{Logger: quiet()})
		}
	}
	for _, tc := range []struct {
		name  string
		serve func(context.Context, net.Listener) error
	}{
		{"hostguard", func(ctx context.Context, l net.Listener) error {
			return hg.Serve(ctx, l, ServerOptions{Logger: quiet()})
		}},
		{"hostguard-nethttp", onNetHTTP(hg)},
		{"hostguard-accesslog", func(ctx context.Context, l net.Listener) error {
			return hgLog.Serve(ctx, l, ServerOptions{Logger: quiet()})
		}},
		{"hostguard-nethttp-accesslog", onNetHTTP(hgLog)},
		{"stock-reverseproxy", onNetHTTP(httputil.NewSingleHostReverseProxy(u))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tc.serve(ctx, l) }()
			defer func() { cancel(); <-done }()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/", nil)
			req.Host = "lhy.kr"
			// What a browser sends; Connection is what most clients add.
			req.Header.Set("Connection", "keep-alive")
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
			req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			req.Header.Set("Accept-Language", "en-US,en;q=0.5")
			req.Header.Set("Cookie", "sessionid=abc123; csrftoken=def456")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
