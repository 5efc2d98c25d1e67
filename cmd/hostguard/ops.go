package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// readiness is what /readyz answers on the metrics listener: 503 with the
// reason until the proxy can serve what the load balancer sends (the list
// loaded, @self discovered or not needed, the listener open, the upstream
// accepting connections), then 200 with the state in words.
type readiness struct {
	up          *url.URL // nil: the built-in echo backend, always ready
	dialTimeout time.Duration
	entries     int

	mu        sync.Mutex
	selfReady bool
	self      string // @self's state in words
	listening string // the proxy's listen address once open
	checked   time.Time
	upErr     error // the upstream's last check, kept for upCacheFor
}

// upCacheFor is how long an upstream check answers /readyz: probes from
// every kubelet, load balancer and operator do not each dial the app.
const upCacheFor = time.Second

func newReadiness(up *url.URL, dialTimeout time.Duration, entries int) *readiness {
	// A readiness probe is short (the kubelet's default timeout is 1 s):
	// the upstream's dial gets at most that.
	return &readiness{up: up, dialTimeout: min(dialTimeout, time.Second), entries: entries, self: "discovering @self"}
}

// setSelf records @self's state: ready (discovered, not needed, or
// missing under --allow-missing) and what it is, in words.
func (r *readiness) setSelf(ready bool, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.selfReady, r.self = ready, state
}

// setListening records that the proxy's listener is open.
func (r *readiness) setListening(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listening = addr
}

// upstream checks that the upstream accepts a TCP connection, at most once
// per upCacheFor; concurrent probes wait for the one check.
func (r *readiness) upstream(ctx context.Context) error {
	if r.up == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.checked.IsZero() && time.Since(r.checked) < upCacheFor {
		return r.upErr
	}
	addr := r.up.Host
	if r.up.Port() == "" {
		port := "80"
		if r.up.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(r.up.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, r.dialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		c.Close()
	}
	r.checked, r.upErr = time.Now(), err
	return err
}

// ServeHTTP answers /readyz.
func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	selfReady, self, listening := r.selfReady, r.self, r.listening
	r.mu.Unlock()
	var reasons, state []string
	state = append(state, fmt.Sprintf("allow list loaded (%d entries)", r.entries))
	if selfReady {
		state = append(state, self)
	} else {
		reasons = append(reasons, self)
	}
	if listening == "" {
		reasons = append(reasons, "the proxy's listener is not open yet")
	} else {
		state = append(state, "listening on "+listening)
	}
	switch err := r.upstream(req.Context()); {
	case r.up == nil:
		state = append(state, "upstream: the built-in echo backend")
	case err != nil:
		reasons = append(reasons, fmt.Sprintf("upstream %s accepts no connection: %v", r.up, err))
	default:
		state = append(state, fmt.Sprintf("upstream %s accepts connections", r.up))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(reasons) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(reasons, "; "))
		return
	}
	fmt.Fprintf(w, "ready: %s\n", strings.Join(state, "; "))
}

// buildInfo is hostguard_build_info: always 1, its labels say which
// hostguard runs.
func buildInfo() prometheus.Collector {
	v, rev := buildVersion()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hostguard_build_info",
		Help: "Always 1; the labels say which hostguard runs: version, VCS revision, Go version, OS and architecture.",
		ConstLabels: prometheus.Labels{
			"version": v, "revision": rev, "goversion": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH,
		},
	}, func() float64 { return 1 })
}
