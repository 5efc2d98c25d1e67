package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
)

// TestTLSListener: HTTPS as a load balancer's HTTPS target group speaks it
// (no verification), on both servers: the Host is checked as on plain
// HTTP, the upstream learns the scheme, plain HTTP to the port gets a 400
// that says so, old protocol versions are refused.
func TestTLSListener(t *testing.T) {
	for name, startFn := range bothServers {
		t.Run(name, func(t *testing.T) {
			cert := &Certificate{}
			if err := cert.SelfSigned([]string{"lhy.kr"}, []netip.Addr{netip.MustParseAddr("127.0.0.1")}); err != nil {
				t.Fatal(err)
			}
			f := startFn(t, hostguard.Options{AllowedHosts: []string{"lhy.kr", "@self"}}, Options{}, ServerOptions{TLSConfig: cert.TLSConfig()})
			f.guard.SetSelf([]netip.Addr{netip.MustParseAddr("127.0.0.1")})
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			for _, tt := range []struct {
				host string
				code int
			}{{"lhy.kr", 200}, {"127.0.0.1:443", 200}, {"evil.example", 400}} {
				req, _ := http.NewRequest("GET", "https://"+f.addr+"/health", nil)
				req.Host = tt.host
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.code {
					t.Errorf("Host %s over TLS: %d, want %d", tt.host, resp.StatusCode, tt.code)
				}
				if tt.code == 200 && f.upstream.last().XFP != "https" {
					t.Errorf("the upstream got X-Forwarded-Proto %q over TLS", f.upstream.last().XFP)
				}
			}

			// Plain HTTP to the TLS port.
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: lhy.kr\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("plain HTTP to the TLS port: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			c.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
				t.Errorf("plain HTTP to the TLS port: %d %q", resp.StatusCode, b)
			}

			// TLS 1.1 is refused.
			old, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
			if err == nil {
				old.Close()
				t.Error("a TLS 1.1 handshake succeeded")
			}
		})
	}
}

// TestCertificateReload: a certificate replaced while serving (SIGHUP in
// the command) is the one new handshakes get.
func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(name string) {
		c := &Certificate{}
		if err := c.SelfSigned([]string{name}, nil); err != nil {
			t.Fatal(err)
		}
		kp := c.cert.Load()
		key, err := x509.MarshalPKCS8PrivateKey(kp.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Certificate[0]}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("one.example")
	cert, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, hostguard.Options{AllowedHosts: []string{"lhy.kr"}}, Options{}, ServerOptions{TLSConfig: cert.TLSConfig()})
	served := func() string {
		c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].DNSNames[0]
	}
	if got := served(); got != "one.example" {
		t.Fatalf("served %s", got)
	}
	write("two.example")
	if err := cert.Load(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != "two.example" {
		t.Errorf("after the reload: served %s", got)
	}
	if err := cert.Load(filepath.Join(dir, "missing.pem"), keyFile); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("loading a missing file: %v", err)
	}
	if got := served(); got != "two.example" {
		t.Errorf("a failed reload changed the certificate: %s", got)
	}
}
