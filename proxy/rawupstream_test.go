package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawUpstream is an application on a raw socket that records every request
// it receives whole, with its head as sent, and answers by path:
//
//	/ws        101 to a WebSocket handshake, then echoes bytes
//	/h2c-101   101 to h2c whatever was asked (an application that misbehaves)
//	/chunked   a chunked response
//	/close     a response that ends the connection
//	anything   200 "ok"
//
// A request whose body does not arrive whole (the proxy broke it off) is
// not recorded: the application never saw a request.
type rawUpstream struct {
	l       net.Listener
	mu      sync.Mutex
	reqs    []upstreamRequest
	garbled []string // what it could not read as a request
}

// upstreamRequest is one request the upstream received whole.
type upstreamRequest struct {
	head   string // request line and fields, as sent
	req    *http.Request
	names  []string // field names as sent
	body   []byte
	tunnel bool
}

func newRawUpstream(t testing.TB) *rawUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{l: l}
	go u.accept()
	t.Cleanup(func() { l.Close() })
	return u
}

func (u *rawUpstream) addr() string { return u.l.Addr().String() }

func (u *rawUpstream) accept() {
	for {
		c, err := u.l.Accept()
		if err != nil {
			return
		}
		go u.serve(c)
	}
}

func (u *rawUpstream) received() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

func (u *rawUpstream) garble(format string, a ...any) {
	u.mu.Lock()
	u.garbled = append(u.garbled, fmt.Sprintf(format, a...))
	u.mu.Unlock()
}

func (u *rawUpstream) serve(c net.Conn) { u.serveAnswering(c, nil, 0, nil) }

// serveAnswering serves c, answering the first request with first when it
// is not nil, written in two parts, split after split bytes, a few
// milliseconds apart; then it closes written (when not nil).
func (u *rawUpstream) serveAnswering(c net.Conn, first []byte, split int, written chan struct{}) {
	defer c.Close()
	if written != nil {
		defer func() {
			if first != nil {
				close(written) // never answered
			}
		}()
	}
	br := bufio.NewReader(c)
	for {
		head, err := readRawHead(br)
		if err != nil {
			// A reset is an end too: on a socket pair the proxy closing a
			// connection whose stray bytes it did not read resets it.
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) || head != "" {
				u.garble("head: %v after %q", err, head)
			}
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			u.garble("request: %v in %q", err, head)
			return
		}
		var names []string
		for _, line := range strings.Split(head, "\r\n")[1:] {
			if name, _, ok := strings.Cut(line, ":"); ok {
				names = append(names, name)
			}
		}
		var body []byte
		switch {
		case len(req.TransferEncoding) > 0:
			body, err = io.ReadAll(httputil.NewChunkedReader(br))
			for err == nil { // the trailer section
				var line string
				line, err = br.ReadString('\n')
				if line == "\r\n" {
					break
				}
			}
		case req.ContentLength > 0:
			body = make([]byte, req.ContentLength)
			_, err = io.ReadFull(br, body)
		}
		if err != nil {
			return // broken off: the application saw no request
		}
		rec := upstreamRequest{head: head, req: req, names: names, body: body}
		upgrade := strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
		var answer string
		switch req.URL.Path {
		case "/ws":
			if upgrade {
				answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
				rec.tunnel = true
			}
		case "/h2c-101":
			answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
			rec.tunnel = true
		case "/chunked":
			answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
		case "/close":
			answer = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok"
		}
		if req.URL.Path == "/second" {
			answer = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nanswer:/second"
		}
		if answer == "" {
			answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
			if req.Method == http.MethodHead {
				answer = strings.TrimSuffix(answer, "ok")
			}
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, rec)
		u.mu.Unlock()
		if first != nil {
			split = min(split, len(first))
			if _, err := c.Write(first[:split]); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
			if _, err := c.Write(first[split:]); err != nil {
				return
			}
			first = nil
			if written != nil {
				close(written)
			}
			continue
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		if rec.tunnel {
			_, _ = io.Copy(c, br) // echo
			return
		}
		if req.URL.Path == "/close" {
			return
		}
	}
}

// readRawHead reads a request line and header fields up to the empty
// line, as sent.
func readRawHead(br *bufio.Reader) (string, error) {
	var b bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return b.String(), nil
		}
		if b.Len() > 128<<10 {
			return b.String(), errors.New("head over 128 KiB")
		}
	}
}
