package discover

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hostguard/hostguard/internal/aemm"
)

// BenchmarkDiscoverUndetected is discovery on a machine with no platform
// evidence: sysfs and the real local interfaces, no network.
func BenchmarkDiscoverUndetected(b *testing.B) {
	root := b.TempDir()
	var dials atomic.Int64
	o := Options{SysRoot: root, Getenv: env(), DialContext: func(context.Context, string, string) (c net.Conn, err error) {
		dials.Add(1)
		return nil, io.EOF
	}}
	for b.Loop() {
		if _, err := Discover(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	if dials.Load() != 0 {
		b.Fatalf("%d dials on an undetected machine", dials.Load())
	}
}

// BenchmarkDiscoverMock is full EC2 discovery (token, local-ipv4, every
// interface) against the real metadata mock; BenchmarkFolkFixMock is the
// peer: the settings snippet's single IMDSv1 GET of local-ipv4.
func BenchmarkDiscoverMock(b *testing.B) {
	m := aemm.Start(b, aemm.Config{LocalIPv4: "127.0.0.11"})
	o := Options{Platform: EC2, IMDSEndpoint: m.URL, Getenv: env(), Interfaces: noInterfaces}
	for b.Loop() {
		if _, err := Discover(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFolkFixMock(b *testing.B) {
	m := aemm.Start(b, aemm.Config{LocalIPv4: "127.0.0.11"})
	for b.Loop() {
		resp, err := http.Get(m.URL + "/latest/meta-data/local-ipv4")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
}
