package discover

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faults are what a fakeIMDS gets wrong.
type faults struct {
	v2Required  bool   // GET without a valid token: 401
	tokenStatus int    // answer the token PUT with this status instead of a token
	hangToken   bool   // never answer the token PUT (hop limit 1)
	hangAll     bool   // never answer anything
	status      int    // answer every GET with this status
	body        string // answer local-ipv4 with this body instead of the address
	expireOnce  bool   // reject the first token once as expired
	delay       time.Duration
	values      map[string]string
}

// fakeIMDS is an EC2 metadata service on loopback with switchable faults.
type fakeIMDS struct {
	done     chan struct{}
	mu       sync.Mutex
	tokens   map[string]bool
	expired  bool
	faults   faults
	requests atomic.Int64
}

// set changes the faults while the fake runs.
func (f *fakeIMDS) set(change func(*faults)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.faults)
}

func newFakeIMDS(t *testing.T, fl faults) (*fakeIMDS, string) {
	t.Helper()
	f := &fakeIMDS{faults: fl, tokens: map[string]bool{}}
	if f.faults.values == nil {
		f.faults.values = map[string]string{
			"local-ipv4":              "10.0.1.23",
			"network/interfaces/macs": "0e:49:61:0f:c3:11/\n0e:49:61:0f:c3:22/",
			"network/interfaces/macs/0e:49:61:0f:c3:11/local-ipv4s": "10.0.1.23\n10.0.1.24",
			"network/interfaces/macs/0e:49:61:0f:c3:11/ipv6s":       "2600:1f18::23",
			"network/interfaces/macs/0e:49:61:0f:c3:22/local-ipv4s": "10.0.2.50",
		}
	}
	f.done = make(chan struct{})
	srv := httptest.NewServer(f)
	t.Cleanup(func() { close(f.done); srv.Close() })
	return f, srv.URL
}

// wait blocks a handler until the client gives up or the test ends.
func (f *fakeIMDS) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.done:
	}
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	fl := f.faults
	f.mu.Unlock()
	if fl.hangAll {
		f.wait(r)
		return
	}
	if fl.delay > 0 {
		select {
		case <-time.After(fl.delay):
		case <-r.Context().Done():
			return
		}
	}
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		if fl.hangToken {
			f.wait(r)
			return
		}
		if fl.tokenStatus != 0 {
			w.WriteHeader(fl.tokenStatus)
			return
		}
		ttl := r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds")
		if ttl == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		tok := fmt.Sprintf("token-%d", len(f.tokens))
		f.tokens[tok] = true
		f.mu.Unlock()
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/latest/meta-data/") {
		http.NotFound(w, r)
		return
	}
	tok := r.Header.Get("X-Aws-Ec2-Metadata-Token")
	f.mu.Lock()
	valid := f.tokens[tok]
	if valid && fl.expireOnce && !f.expired {
		f.expired = true
		delete(f.tokens, tok)
		valid = false
	}
	f.mu.Unlock()
	if tok != "" && !valid || fl.v2Required && !valid {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if fl.status != 0 {
		w.WriteHeader(fl.status)
		return
	}
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/latest/meta-data/"), "/")
	if path == "local-ipv4" && fl.body != "" {
		fmt.Fprint(w, fl.body)
		return
	}
	v, ok := fl.values[path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	fmt.Fprint(w, v)
}

// noNetwork is a DialContext that fails the test if discovery dials.
func noNetwork(t *testing.T, dials *atomic.Int64) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		t.Errorf("discovery dialled %s %s", network, addr)
		return nil, fmt.Errorf("test forbids dialling %s", addr)
	}
}

// env returns a Getenv over a fixed map.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}
