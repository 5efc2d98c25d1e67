package bench

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hostguard/hostguard"
	"github.com/unrolled/secure"
)

var sizes = []int{1, 10, 100, 1000}

// entries returns n host names; the hit case uses the last one, the worst
// case for a list that is scanned in order.
func entries(n int) []string {
	e := make([]string, n)
	for i := range e {
		e[i] = fmt.Sprintf("host%d.example.com", i)
	}
	return e
}

// The hosts checked: a hit as browsers send it (lower case, with a port), a
// hit in mixed case, which must be lowered first, and a miss.
var hosts = []struct {
	name string
	host func(n int) string
	hit  bool
}{
	{"hit", func(n int) string { return fmt.Sprintf("host%d.example.com:443", n-1) }, true},
	{"hit-mixedcase", func(n int) string { return fmt.Sprintf("HOST%d.Example.com:443", n-1) }, true},
	{"miss", func(int) string { return "evil.example.net" }, false},
}

// nopWriter is a ResponseWriter that costs nothing, so the benchmarks
// measure the middleware and not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

var next = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

func newGuard(b *testing.B, n int) *hostguard.Guard {
	g, err := hostguard.New(hostguard.Options{AllowedHosts: entries(n), LogLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

func newSecure(n int) *secure.Secure {
	// secure compares r.Host as text, port included, so its list names
	// the port the hit host carries.
	e := entries(n)
	for i := range e {
		e[i] += ":443"
	}
	return secure.New(secure.Options{AllowedHosts: e})
}

// BenchmarkCheck measures the check alone: hostguard's Allow against
// secure's Process, which is the smallest unit secure exposes.
func BenchmarkCheck(b *testing.B) {
	for _, n := range sizes {
		for _, hc := range hosts {
			host, hit := hc.host(n), hc.hit
			name := fmt.Sprintf("n=%d/%s", n, hc.name)
			b.Run("hostguard/"+name, func(b *testing.B) {
				g := newGuard(b, n)
				if g.Allow(host) != hit {
					b.Fatalf("Allow(%q) != %v", host, hit)
				}
				b.ReportAllocs()
				for b.Loop() {
					g.Allow(host)
				}
			})
			b.Run("secure/"+name, func(b *testing.B) {
				s := newSecure(n)
				r := httptest.NewRequest("GET", "/", nil)
				r.Host = host
				w := &nopWriter{h: http.Header{}}
				if (s.Process(w, r) == nil) != hit {
					b.Fatalf("secure disagrees on %q", host)
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = s.Process(w, r)
				}
			})
		}
	}
}

// BenchmarkMiddleware measures each library as net/http middleware.
func BenchmarkMiddleware(b *testing.B) {
	for _, n := range sizes {
		for _, hc := range hosts {
			host := hc.host(n)
			name := fmt.Sprintf("n=%d/%s", n, hc.name)
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = host
			b.Run("hostguard/"+name, func(b *testing.B) {
				h := newGuard(b, n).Handler(next)
				w := &nopWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
			})
			b.Run("secure/"+name, func(b *testing.B) {
				h := newSecure(n).Handler(next)
				w := &nopWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(w, r)
				}
			})
		}
	}
}
