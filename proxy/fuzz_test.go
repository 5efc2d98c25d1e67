package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/proxy/internal/ratelog"
)

// FuzzServe feeds arbitrary bytes, as one client connection, to Serve's
// connection handler in front of a recording upstream, both in memory, and
// checks the differential suite's invariants on every input: what the
// upstream receives is well formed, carries an allowed, normalised Host and
// no forged forwarding field; the client's bytes never earn a 5xx (but 501
// and 505); the exchange ends within 2 s.
func FuzzServe(f *testing.F) {
	for _, d := range diffCases() {
		if len(d.raw) < 4<<10 {
			f.Add([]byte(d.raw))
		}
	}
	g, err := hostguard.New(hostguard.Options{AllowedHosts: []string{allowed, "@self"}, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	g.SetSelf([]netip.Addr{netip.MustParseAddr(selfIP)})
	u, _ := url.Parse("http://app.invalid")
	p, err := New(Options{Guard: g, Upstream: u, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	up := &rawUpstream{}
	p.up.dialer = func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go up.serve(server)
		return client, nil
	}
	o := ServerOptions{Logger: quiet()}
	o.defaults()
	s := &server{p: p, o: o, conns: map[*clientConn]struct{}{}, log: ratelog.New(quiet(), time.Second, 1)}

	f.Fuzz(func(t *testing.T, in []byte) {
		up.mu.Lock()
		up.reqs, up.garbled = nil, nil
		up.mu.Unlock()
		client, conn := net.Pipe()
		cc := s.newConn(conn)
		served := make(chan struct{})
		go func() {
			cc.serve()
			close(served)
		}()
		written := make(chan struct{})
		go func() {
			_, _ = client.Write(in)
			close(written)
		}()
		var got bytes.Buffer
		read := make(chan struct{})
		go func() {
			_, _ = io.Copy(&got, client)
			close(read)
		}()
		// Once the input is in and the handler waits for more (or has
		// ended), every answer has been written; give a handler that
		// waits for the rest of a body a moment, then end the input.
		select {
		case <-written:
		case <-served:
		case <-time.After(2 * time.Second):
		}
		for i := 0; i < 50 && cc.state.Load() != stateIdle; i++ {
			select {
			case <-served:
				i = 50
			case <-time.After(time.Millisecond):
			}
		}
		client.Close()
		select {
		case <-served:
		case <-time.After(2 * time.Second):
			t.Fatalf("the connection handler did not end for %q", in)
		}
		<-read
		reqs := up.received()
		up.mu.Lock()
		garbled := up.garbled
		up.mu.Unlock()
		for _, gb := range garbled {
			t.Fatalf("the upstream could not read what it received for %q: %s", in, gb)
		}
		h2c := false
		for _, r := range reqs {
			if problem := checkForwardedFrom(g, r, "pipe"); problem != "" {
				t.Fatalf("input %q: the upstream received %s:\n%s", in, problem, r.head)
			}
			h2c = h2c || r.req.URL.Path == "/h2c-101"
		}
		for _, code := range parseResponses(got.Bytes(), bytes.HasPrefix(in, []byte("HEAD "))) {
			if code >= 500 && code != 501 && code != 505 && !(code == 502 && h2c) {
				t.Fatalf("input %q: status %d", in, code)
			}
		}
	})
}

// checkForwarded is checkForwardedFrom a client on 127.0.0.1.
func checkForwarded(g *hostguard.Guard, r upstreamRequest) string {
	return checkForwardedFrom(g, r, "127.0.0.1")
}
