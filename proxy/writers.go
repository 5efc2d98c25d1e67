package proxy

import (
	"net/http"
	"strconv"
)

// The heads and short answers that Proxy.Serve writes: the request head for
// the upstream, the response head for the client, and the proxy's own
// plain-text answers.

// writeSimple writes a short plain-text response of the proxy's own.
func (c *clientConn) writeSimple(code int, text string, keep bool) {
	b := append(c.out[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)), 10)
	if !keep {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, text...)
	c.out = b
	_, _ = c.conn.Write(b)
	if c.p.access != nil {
		c.logAccess(code, int64(len(text)))
	}
}

// appendRequestHead appends the head the upstream receives: the request
// line in origin form under the upstream's path, the client's fields but
// the hop-by-hop, framing and forwarding ones, then Host, the forwarding
// fields and the framing the proxy decided.
func (p *Proxy) appendRequestHead(b []byte, h *requestHead, fw *forwarding) []byte {
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, p.up.prefix...)
	if h.slash {
		b = append(b, '/')
	}
	b = append(b, h.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, fw.host...)
	b = append(b, "\r\n"...)
	for i := range h.fields {
		f := &h.fields[i]
		if !p.passesUpstream(f.kind, fw) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = appendField(b, "X-Forwarded-For", fw.xff)
	if fw.xfh != "" {
		b = appendField(b, "X-Forwarded-Host", fw.xfh)
	}
	b = appendField(b, "X-Forwarded-Proto", fw.xfp)
	switch {
	case h.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case h.contentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, h.contentLength, 10)
		b = append(b, "\r\n"...)
	}
	switch {
	case h.upgrade:
		b = append(b, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	case string(h.method) == http.MethodHead:
		// The connection ends after the answer (see responseHead.bodyless):
		// say so.
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendResponseHead appends the head the client receives: the upstream's
// status and fields but the hop-by-hop and framing ones, then the framing
// and connection fields of this hop.
func appendResponseHead(b []byte, resp *responseHead, frame int, keep bool, minor int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.status), 10)
	b = append(b, ' ')
	if len(resp.reason) > 0 {
		b = append(b, resp.reason...)
	} else {
		b = append(b, http.StatusText(resp.status)...)
	}
	b = append(b, "\r\n"...)
	switching := resp.status == http.StatusSwitchingProtocols
	for i := range resp.fields {
		f := &resp.fields[i]
		switch f.kind {
		case kindConnection, kindHop, kindTransferEncoding:
			continue
		case kindUpgrade:
			if !switching {
				continue
			}
		case kindContentLength:
			// Kept where the proxy sends no body of its framing: HEAD
			// and 304 describe the body they would have had.
			if frame != frameNone || resp.status < 200 || resp.status == 204 {
				continue
			}
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	switch frame {
	case frameLength:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, resp.contentLength, 10)
		b = append(b, "\r\n"...)
	case frameChunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	switch {
	case switching:
		b = append(b, "Connection: Upgrade\r\n"...)
	case !keep:
		b = append(b, "Connection: close\r\n"...)
	case minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}
