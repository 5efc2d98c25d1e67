package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The fast path forwards plain HTTP/1.1 requests to an http:// upstream
// over a pool of kept-alive connections, writing the request and reading
// the answer in the handler's own goroutine. http.Transport spends most of
// a small request's cost handing it between its per-connection goroutines;
// this does not. Upgrades (WebSocket), "Expect: 100-continue" and https
// upstreams take httputil.ReverseProxy instead.

// hopHeaders are removed on the way through (RFC 9110, section 7.6.1),
// together with the headers the Connection header names.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// upstreamConn is one kept-alive connection to the upstream.
type upstreamConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// connPool keeps idle upstream connections, most recently used first.
type connPool struct {
	addr    string
	dial    time.Duration
	max     int
	mu      sync.Mutex
	idle    []*upstreamConn
	readers sync.Pool
	writers sync.Pool
}

func (p *connPool) get() (*upstreamConn, bool, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		uc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return uc, true, nil
	}
	p.mu.Unlock()
	c, err := net.DialTimeout("tcp", p.addr, p.dial)
	if err != nil {
		return nil, false, err
	}
	uc := &upstreamConn{c: c}
	if br, ok := p.readers.Get().(*bufio.Reader); ok {
		br.Reset(c)
		uc.br = br
	} else {
		uc.br = bufio.NewReaderSize(c, 4096)
	}
	if bw, ok := p.writers.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		uc.bw = bw
	} else {
		uc.bw = bufio.NewWriterSize(c, 4096)
	}
	return uc, false, nil
}

func (p *connPool) put(uc *upstreamConn) {
	p.mu.Lock()
	if len(p.idle) < p.max {
		p.idle = append(p.idle, uc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.discard(uc)
}

func (p *connPool) discard(uc *upstreamConn) {
	uc.c.Close()
	uc.br.Reset(nil)
	uc.bw.Reset(nil)
	p.readers.Put(uc.br)
	p.writers.Put(uc.bw)
}

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Header["Upgrade"] == nil && r.Header["Expect"] == nil
}

// smallBody is the largest body read under the response-header deadline.
const smallBody = 64 << 10

// errRetryable marks a failure on a reused connection before the upstream
// sent anything: the connection had been closed while idle.
var errRetryable = errors.New("idle connection closed by the upstream")

// forward sends r to the upstream and copies the answer to w.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	host, xff, xfh, xfp, keepForwarded := p.outboundHeaders(r)
	// A request without a body can be sent again if a pooled connection
	// turns out to be dead; one with a body cannot.
	replayable := r.Body == nil || r.Body == http.NoBody
	for attempt := 0; ; attempt++ {
		uc, reused, err := p.pool.get()
		if err != nil {
			p.upstreamError(w, r, err)
			return
		}
		err = p.exchange(w, r, uc, reused, host, xff, xfh, xfp, keepForwarded)
		if errors.Is(err, errRetryable) && replayable && attempt == 0 {
			continue
		}
		if err != nil && !errors.Is(err, errAnswered) {
			p.upstreamError(w, r, err)
		}
		return
	}
}

// errAnswered marks a failure after the response started: nothing more can
// be sent to the client.
var errAnswered = errors.New("response already started")

func (p *Proxy) exchange(w http.ResponseWriter, r *http.Request, uc *upstreamConn, reused bool,
	host, xff, xfh, xfp string, keepForwarded bool) error {
	ok := false
	defer func() {
		if !ok {
			p.pool.discard(uc)
		}
	}()
	if err := writeRequest(uc.bw, r, host, xff, xfh, xfp, keepForwarded); err != nil {
		if reused {
			return fmt.Errorf("%w: %v", errRetryable, err)
		}
		return err
	}
	if err := uc.bw.Flush(); err != nil {
		if reused {
			return fmt.Errorf("%w: %v", errRetryable, err)
		}
		return err
	}
	// The response timeout bounds the wait for the headers, and a client
	// that goes away (or a forced shutdown) ends it at once, closing the
	// upstream request as nginx does.
	start := time.Now()
	_ = uc.c.SetReadDeadline(start.Add(p.respTimeout))
	stop := context.AfterFunc(r.Context(), func() { _ = uc.c.SetReadDeadline(time.Unix(1, 0)) })
	if reused {
		if _, err := uc.br.Peek(1); err != nil {
			stop()
			if isTimeout(err) || r.Context().Err() != nil {
				return err
			}
			return fmt.Errorf("%w: %v", errRetryable, err)
		}
	}
	resp, err := http.ReadResponse(uc.br, r)
	// Informational answers (103 Early Hints) come before the real one;
	// skip them. 101 only answers upgrades, which take ReverseProxy.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		resp, err = http.ReadResponse(uc.br, r)
	}
	// Stop the watch before the connection can return to the pool; if it
	// already fired, the deadline it set would break the next request.
	if !stop() {
		if err == nil {
			resp.Body.Close()
		}
		return fmt.Errorf("client went away: %w", r.Context().Err())
	}
	if err != nil {
		return err
	}
	if p.metrics != nil {
		p.metrics.upstreamLatency.Observe(time.Since(start).Seconds())
	}
	if resp.ContentLength < 0 || resp.ContentLength > smallBody {
		// A stream or a large body may take longer than the timeout;
		// a small one is read at once and the next use sets a new
		// deadline, which saves a system call per request.
		_ = uc.c.SetReadDeadline(time.Time{})
	}
	defer resp.Body.Close()

	h := w.Header()
	for k, vs := range resp.Header {
		if hopHeaders[k] {
			continue
		}
		h[k] = vs
	}
	removeConnectionHeaders(h, resp.Header["Connection"])
	if len(resp.Trailer) > 0 {
		return p.answerWithTrailers(w, resp) // rare: let net/http announce trailers
	}
	if resp.ContentLength >= 0 && h["Content-Length"] == nil {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp, p.bufs); err != nil {
		return errAnswered
	}
	if resp.Close {
		return nil
	}
	ok = true
	p.pool.put(uc)
	return nil
}

// answerWithTrailers copies a response with trailers, then drops the
// connection (it is rare enough not to be worth pooling).
func (p *Proxy) answerWithTrailers(w http.ResponseWriter, resp *http.Response) error {
	for k := range resp.Trailer {
		w.Header().Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp, p.bufs); err != nil {
		return errAnswered
	}
	for k, vs := range resp.Trailer {
		w.Header()[http.TrailerPrefix+k] = vs
	}
	return nil
}

// copyBody copies the response body, flushing after every read when the
// answer streams (unknown length or server-sent events).
func copyBody(w http.ResponseWriter, resp *http.Response, bufs *bufferPool) error {
	buf := bufs.Get()
	defer bufs.Put(buf)
	stream := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	var flush func() error
	if stream {
		flush = http.NewResponseController(w).Flush
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush != nil {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func removeConnectionHeaders(h http.Header, connection []string) {
	for _, v := range connection {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
}

// writeRequest writes r as an HTTP/1.1 request for the upstream.
func writeRequest(bw *bufio.Writer, r *http.Request, host, xff, xfh, xfp string, keepForwarded bool) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vs := range r.Header {
		switch k {
		case "Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Content-Length":
			continue
		case "Forwarded":
			if !keepForwarded {
				continue
			}
		}
		if hopHeaders[k] || namedIn(conn, k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	writeHeader(bw, "X-Forwarded-For", xff)
	writeHeader(bw, "X-Forwarded-Host", xfh)
	writeHeader(bw, "X-Forwarded-Proto", xfp)
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	switch {
	case !hasBody:
		if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
			bw.WriteString("Content-Length: 0\r\n")
		}
		_, err := bw.WriteString("\r\n")
		return err
	case r.ContentLength > 0:
		writeHeader(bw, "Content-Length", strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n")
		n, err := io.Copy(bw, r.Body)
		if err == nil && n != r.ContentLength {
			err = fmt.Errorf("request body: read %d of %d bytes", n, r.ContentLength)
		}
		return err
	default:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, r.Body); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		_, err := bw.WriteString("\r\n")
		return err
	}
}

func writeHeader(bw *bufio.Writer, k, v string) {
	if v == "" {
		return
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// namedIn reports whether the Connection header values name k.
func namedIn(connection []string, k string) bool {
	for _, v := range connection {
		for f := range strings.SplitSeq(v, ",") { // runs for every header: no allocation
			if strings.EqualFold(textproto.TrimString(f), k) {
				return true
			}
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
