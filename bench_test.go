package hostguard

import (
	"fmt"
	"testing"
)

// The benchmarks here split the check into its parts; bench/ compares the
// whole check and the middleware with a peer library.

var benchHosts = []string{
	"host999.example.com:443",
	"HOST999.Example.com:443",
	"evil.example.net",
	"www.example.org",
	"10.0.1.23:80",
	"[2001:db8::1]:8080",
	"host999.example.com",
	"host999.example.c:1",
	"host999.example:443",
}

func BenchmarkParse(b *testing.B) {
	for _, s := range benchHosts {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var h host
				h.parse(s)
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	entries := make([]string, 0, 1003)
	for i := range 1000 {
		entries = append(entries, fmt.Sprintf("host%d.example.com", i))
	}
	entries = append(entries, ".example.org", "10.0.0.0/8", "2001:db8::/32")
	g, err := New(Options{AllowedHosts: entries})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range benchHosts {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Allow(s)
			}
		})
	}
}
