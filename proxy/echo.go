package proxy

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Echo is the built-in backend used when no upstream is given: it answers
// with what it received, so the proxy can be tried on its own.
func Echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fwd := map[string][]string{}
	for k, v := range r.Header {
		if forwardingKind(classify([]byte(k))) {
			fwd[strings.ToLower(k)] = v
		}
	}
	_, _ = w.Write([]byte(echoText(r.Method, r.Host, r.URL.RequestURI(), fwd)))
}

// echoText is the built-in backend's answer.
func echoText(method, host, uri string, forwarded map[string][]string) string {
	var b strings.Builder
	fmt.Fprintln(&b, "hostguard built-in backend: this is what an upstream would receive")
	fmt.Fprintf(&b, "method: %s\n", method)
	fmt.Fprintf(&b, "host: %q\n", host)
	fmt.Fprintf(&b, "path: %q\n", uri)
	names := make([]string, 0, len(forwarded))
	for k := range forwarded {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %q\n", strings.ToLower(k), strings.Join(forwarded[k], ", "))
	}
	return b.String()
}

// echo answers with what an upstream would have received: the built-in
// backend of a proxy without one.
func (c *clientConn) echo(h *requestHead, fw *forwarding) bool {
	if h.hasBody() {
		// The echo does not read bodies; end the connection instead of
		// reading one.
		h.close = true
		c.linger = true
	}
	// What the upstream would receive of the forwarding fields: the same
	// shown by Echo behind the net/http form.
	fwd := map[string][]string{"x-forwarded-for": {fw.xff}, "x-forwarded-proto": {fw.xfp}}
	if fw.xfh != "" {
		fwd["x-forwarded-host"] = []string{fw.xfh}
	}
	if fw.keepClientFields {
		for _, f := range h.fields {
			if f.kind == kindForwarded || f.kind == kindForwarding {
				k := string(toLower(f.name))
				fwd[k] = append(fwd[k], string(f.value))
			}
		}
	}
	target := string(h.path)
	if h.slash {
		target = "/" + target
	}
	text := echoText(string(h.method), fw.host, target, fwd)
	b := append(c.out[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	if h.close {
		b = append(b, "\r\nConnection: close"...)
	} else if h.minor == 0 {
		b = append(b, "\r\nConnection: keep-alive"...)
	}
	b = append(b, "\r\n\r\n"...)
	n := 0
	if string(h.method) != http.MethodHead {
		b = append(b, text...)
		n = len(text)
	}
	c.out = b
	_, err := c.conn.Write(b)
	if c.p.access != nil {
		c.logAccess(http.StatusOK, int64(n))
	}
	return err == nil && !h.close && !c.srv.closing.Load()
}

func toLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return out
}
