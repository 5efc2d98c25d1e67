package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/netip"
	"sync/atomic"
	"time"
)

// A TLS listener, for load balancers that speak HTTPS to their targets
// (ALB and NLB target groups of protocol HTTPS, end-to-end encryption).
// They do not verify the target's certificate: a self-signed one serves.
// The Host is checked as on plain HTTP; the TLS server name (SNI) is not
// the Host and plays no part in the decision.

// Certificate is the certificate a TLS listener presents. It can be
// replaced while serving (a renewed file, new addresses): connections
// already open keep theirs, new handshakes get the new one.
type Certificate struct {
	cert atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads a PEM certificate (chain) and key.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{}
	return c, c.Load(certFile, keyFile)
}

// Load replaces the certificate with the one in the files; on error the
// certificate in use stays.
func (c *Certificate) Load(certFile, keyFile string) error {
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	c.cert.Store(&kp)
	return nil
}

// SelfSigned replaces the certificate with a new self-signed one (ECDSA
// P-256, valid for a year) for the names and addresses given: what a load
// balancer that does not verify its targets needs.
func (c *Certificate) SelfSigned(names []string, addrs []netip.Addr) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hostguard self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
	}
	for _, a := range addrs {
		tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	c.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf})
	return nil
}

// TLSConfig returns a server configuration that presents the current
// certificate: TLS 1.2 or later, HTTP/1.1 only (the proxy speaks
// HTTP/1.1; load balancers speak it to their targets).
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert := c.cert.Load()
			if cert == nil {
				return nil, fmt.Errorf("no TLS certificate loaded")
			}
			return cert, nil
		},
	}
}
