package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The access log: one line per request, in both server forms, with the
// fields of nginx's combined format,
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// followed by the verdict and the times:
//
//	host="<Host as received>" reason=<label or -> upstream_ttfb=<s or -> request_time=<s>
//
// or the same fields as one JSON object per line. The request line, Host,
// Referer and User-Agent are escaped as the Guard's rejection log escapes
// them (appendEscaped): nothing a client sends can end a field
// or a line.

// appendEscaped appends s as the Guard's rejection log writes a value it
// received (strconv.QuoteToASCII without the quotes): printable ASCII as it
// is but for '"' and '\\', which are escaped, and control bytes, invalid
// UTF-8 and non-ASCII characters as Go escapes (\r, \x00, \u00e4). The
// result holds no quote and no control byte, so a value written between
// quotes cannot end its field or its line.
func appendEscaped(dst []byte, s string) []byte {
	n := len(dst)
	dst = strconv.AppendQuoteToASCII(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// accessLog writes the lines of one Proxy.
type accessLog struct {
	json bool
	mu   sync.Mutex // serializes the writes: one Write per line
	w    io.Writer
	bufs sync.Pool // *[]byte
}

func newAccessLog(w io.Writer, json bool) *accessLog {
	return &accessLog{w: w, json: json, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// accessRecord is what the line of one request says. Its strings are
// valid until the line is written (Serve's point into its connection's
// buffer).
type accessRecord struct {
	start     time.Time
	remote    string // the client's address, without the port
	request   string // the request line; "" when it could not be read
	host      string // the Host as received (the authority of an absolute-form target)
	referer   string
	userAgent string
	reason    string        // the Guard's reason label when the list rejects the Host
	status    int           // answered to the client
	bytes     int64         // of the response body sent to the client
	ttfb      time.Duration // the upstream's time to its response head; <0: none
}

// write writes r's line, with end as the end of the request.
func (l *accessLog) write(r *accessRecord, end time.Time) {
	bp := l.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	if l.json {
		b = r.appendJSON(b, end)
	} else {
		b = r.appendText(b, end)
	}
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		l.bufs.Put(bp)
	}
}

// appendQuoted appends s escaped between quotes, or "-" for an empty s,
// as nginx writes an absent field.
func appendQuoted(b []byte, s string) []byte {
	if s == "" {
		return append(b, `"-"`...)
	}
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendSeconds appends d in seconds with millisecond resolution, as
// nginx's $request_time.
func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', 3, 64)
}

func (r *accessRecord) appendText(b []byte, end time.Time) []byte {
	b = append(b, orDash(r.remote)...)
	b = append(b, " - - ["...)
	b = r.start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] "...)
	b = appendQuoted(b, r.request)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, ' ')
	b = appendQuoted(b, r.referer)
	b = append(b, ' ')
	b = appendQuoted(b, r.userAgent)
	b = append(b, " host="...)
	b = appendQuoted(b, r.host)
	b = append(b, " reason="...)
	b = append(b, orDash(r.reason)...)
	b = append(b, " upstream_ttfb="...)
	if r.ttfb < 0 {
		b = append(b, '-')
	} else {
		b = appendSeconds(b, r.ttfb)
	}
	b = append(b, " request_time="...)
	b = appendSeconds(b, end.Sub(r.start))
	return append(b, '\n')
}

// appendJSONString appends s escaped (see appendEscaped) as a
// JSON string: the escaped text is printable ASCII in which only '"' and
// '\' need JSON's escape, and Go's quoting gives them the same one.
func appendJSONString(b []byte, s string, scratch []byte) []byte {
	return strconv.AppendQuote(b, string(appendEscaped(scratch[:0], s)))
}

func (r *accessRecord) appendJSON(b []byte, end time.Time) []byte {
	var scratch [256]byte
	b = append(b, `{"remote_addr":`...)
	b = strconv.AppendQuote(b, r.remote)
	b = append(b, `,"time":"`...)
	b = r.start.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","request":`...)
	b = appendJSONString(b, r.request, scratch[:])
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, `,"body_bytes_sent":`...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, r.referer, scratch[:])
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, r.userAgent, scratch[:])
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.host, scratch[:])
	b = append(b, `,"reason":`...)
	if r.reason == "" {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendQuote(b, r.reason)
	}
	b = append(b, `,"upstream_ttfb":`...)
	if r.ttfb < 0 {
		b = append(b, "null"...)
	} else {
		b = appendSeconds(b, r.ttfb)
	}
	b = append(b, `,"request_time":`...)
	b = appendSeconds(b, end.Sub(r.start))
	return append(b, "}\n"...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// accessKey holds the *accessRecord of a request in the net/http form.
type accessKey struct{}

// accessOf returns the access log's record of a request in the net/http
// form, or nil.
func accessOf(r *http.Request) *accessRecord {
	rec, _ := r.Context().Value(accessKey{}).(*accessRecord)
	return rec
}

// logAccess is the net/http form's access log: it writes the line of each
// request that reaches the Proxy when next has answered it, or when the
// connection is hijacked for a WebSocket tunnel. (net/http's server
// answers some malformed requests itself, such as 431 and a request line
// it cannot parse; those never reach a handler and get no line.)
func (p *Proxy) logAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &accessRecord{start: time.Now(), ttfb: -1, remote: r.RemoteAddr,
			request: r.Method + " " + r.RequestURI + " " + r.Proto,
			host:    r.Host, userAgent: r.UserAgent(), referer: r.Header.Get("Referer")}
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			rec.remote = ip
		}
		aw := &accessWriter{ResponseWriter: w, rec: rec, log: p.access}
		r = r.WithContext(context.WithValue(r.Context(), accessKey{}, rec))
		// checkForm sets the Host of an absolute-form target to its
		// authority as sent, as Serve logs it.
		defer func() { aw.done(r.Host) }()
		next.ServeHTTP(aw, r)
	})
}

// accessWriter counts the status and body bytes of a response for the
// access log.
type accessWriter struct {
	http.ResponseWriter
	rec    *accessRecord
	log    *accessLog
	status int
	logged bool
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.rec.bytes += int64(n)
	return n, err
}

// Hijack hands the connection to a WebSocket tunnel, whose line is
// written as it opens.
func (w *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
		w.done("")
	}
	return c, brw, err
}

func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// done writes the line, once; host is the Host as received ("" keeps the
// one recorded).
func (w *accessWriter) done(host string) {
	if w.logged {
		return
	}
	w.logged = true
	if host != "" {
		w.rec.host = host
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.rec.status = w.status
	w.log.write(w.rec, time.Now())
}
