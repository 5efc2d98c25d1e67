package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostguard/hostguard"
	"github.com/hostguard/hostguard/proxy/internal/ratelog"
)

// FuzzServe feeds arbitrary bytes, as one client connection, to Serve's
// connection handler, and arbitrary bytes as the upstream's answer to the
// first request it receives (in two writes, split as the third input says),
// over a real socket pair (so that the pool's
// look before reuse runs as on TCP). It checks the differential suite's
// invariants on every input: what the upstream receives is well formed,
// carries an allowed, normalised Host and no forged forwarding field; the
// client's bytes never earn a 5xx (but 501 and 505) while the upstream
// answers well; the exchange ends within 3 s; and a second client, after
// the first, gets its own answer: never a byte the upstream sent in the
// first exchange.
func FuzzServe(f *testing.F) {
	for _, d := range diffCases() {
		if len(d.raw) < 4<<10 {
			f.Add([]byte(d.raw), []byte(nil), uint16(0))
		}
	}
	for _, c := range answerCases() {
		if len(c.segments) == 1 {
			f.Add([]byte(c.method+" /c1 HTTP/1.1\r\nHost: lhy.kr\r\n\r\n"), []byte(c.segments[0]+c.stray), uint16(len(c.segments[0])))
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
	// The answer to the first request of an input, and where it is split;
	// taken by the first dial.
	type firstAnswer struct {
		b       []byte
		split   int
		written chan struct{} // closed once all of b is sent
	}
	var answer atomic.Pointer[firstAnswer]
	p.up.dialer = func(context.Context, string, string) (net.Conn, error) {
		client, server, err := socketPair()
		if err != nil {
			return nil, err
		}
		var first firstAnswer
		if a := answer.Swap(nil); a != nil {
			first = *a
		}
		go up.serveAnswering(server, first.b, first.split, first.written)
		return client, nil
	}
	// The net/http form, in front of an upstream of its own on TCP (its
	// Transport dials for itself).
	upNet := newRawUpstream(f)
	uNet, _ := url.Parse("http://" + upNet.addr())
	pNet, err := New(Options{Guard: g, Upstream: uNet, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	o := ServerOptions{Logger: quiet()}
	o.defaults()
	s := &server{p: p, o: o, conns: map[*clientConn]struct{}{}, log: ratelog.New(quiet(), time.Second, 1)}

	f.Fuzz(func(t *testing.T, in, first []byte, split uint16) {
		p.up.closeIdle()
		up.mu.Lock()
		up.reqs, up.garbled = nil, nil
		up.mu.Unlock()
		answered := make(chan struct{})
		if len(first) > 0 {
			answer.Store(&firstAnswer{first, int(split), answered})
		} else {
			answer.Store(nil)
		}
		client, conn, err := socketPair() // so that the proxy sees the client leave
		if err != nil {
			t.Fatal(err)
		}
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
		case <-time.After(3 * time.Second):
			t.Fatalf("the connection handler did not end for %q, answered %q", in, first)
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
			if problem := checkForwardedFrom(g, r, cc.clientIP); problem != "" {
				t.Fatalf("input %q: the upstream received %s:\n%s", in, problem, r.head)
			}
			h2c = h2c || r.req.URL.Path == "/h2c-101"
		}
		for _, code := range parseResponses(got.Bytes(), bytes.HasPrefix(in, []byte("HEAD "))) {
			if code >= 500 && code != 501 && code != 505 && !(code == 502 && h2c) && len(first) == 0 {
				t.Fatalf("input %q: status %d", in, code)
			}
		}
		if taken := answer.Swap(nil) == nil; taken && len(first) > 0 {
			// Bytes the upstream sent after the first answer are in the
			// socket before the second client comes: the proxy must see
			// them there. (Bytes that come after the next request is sent
			// cannot be told from its answer; see TestUpstreamAnswers for
			// the shapes where the proxy never reuses the connection.)
			select {
			case <-answered:
			case <-time.After(time.Second):
			}
		}
		if second := secondClient(s); second != "answer:/second" {
			t.Fatalf("input %q, answered %q: the next client got %q", in, first, second)
		}
		fuzzNetHTTP(t, g, pNet, upNet, in)
	})
}

// fuzzNetHTTP feeds an input to the net/http form's handler, each request
// as net/http's reader reads it (http.ReadRequest, the server's reader),
// and checks the same invariants: what the upstream receives carries an
// allowed, normalised Host and no forged forwarding field, and a request
// the upstream answered well never gets a 5xx (but 501 and 505).
func fuzzNetHTTP(t *testing.T, g *hostguard.Guard, p *Proxy, up *rawUpstream, in []byte) {
	up.mu.Lock()
	up.reqs, up.garbled = nil, nil
	up.mu.Unlock()
	br := bufio.NewReader(bytes.NewReader(in))
	for range 16 {
		req, err := http.ReadRequest(br)
		if err != nil {
			break
		}
		req.RemoteAddr = "127.0.0.1:40000"
		before := len(up.received())
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		_, _ = io.Copy(io.Discard, req.Body)
		got := up.received()
		if rec.Code >= 500 && rec.Code != 501 && rec.Code != 505 {
			// 502 is the upstream's: a request the Transport would not
			// send, or a 101 a recorder cannot switch to.
			if rec.Code != 502 || len(got) > before && !got[len(got)-1].tunnel {
				t.Fatalf("net/http form, input %q: status %d", in, rec.Code)
			}
		}
	}
	for _, r := range up.received() {
		if problem := checkForwardedFrom(g, r, "127.0.0.1"); problem != "" {
			t.Fatalf("net/http form, input %q: the upstream received %s:\n%s", in, problem, r.head)
		}
	}
}

// checkForwarded is checkForwardedFrom a client on 127.0.0.1.
func checkForwarded(g *hostguard.Guard, r upstreamRequest) string {
	return checkForwardedFrom(g, r, "127.0.0.1")
}

// secondClient sends a request on a new connection to s, after an input,
// and returns the body of its answer (or what went wrong).
func secondClient(s *server) string {
	client, conn := net.Pipe()
	defer client.Close()
	go s.newConn(conn).serve()
	_ = client.SetDeadline(time.Now().Add(3 * time.Second))
	go func() {
		_, _ = io.WriteString(client, "GET /second HTTP/1.1\r\nHost: lhy.kr\r\nConnection: close\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		return err.Error()
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
