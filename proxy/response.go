package proxy

import (
	"bytes"
	"errors"

	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// responseHead is a parsed upstream response: status line and header
// fields. Its slices point into the upstream connection's read buffer.
type responseHead struct {
	minor         int
	status        int
	reason        []byte
	fields        []field
	contentLength int64 // -1: none
	chunked       bool
	close         bool   // the upstream closes its connection after this response
	upgrade       []byte // the Upgrade field of a 101
	connNamed     bool
}

// errUpstreamResponse is a response the proxy cannot pass on: it answers
// 502 instead.
type errUpstreamResponse string

func (e errUpstreamResponse) Error() string { return "invalid response: " + string(e) }

// maxResponseHead bounds the upstream's status line and header fields
// (nginx: proxy_buffer_size, 4 or 8 KiB; more generous here).
const maxResponseHead = 64 << 10

// readResponseHead reads until b holds a complete response head and
// returns its length.
func readResponseHead(b *wire.Reader) (int, error) {
	for {
		if n, ok := b.FindHead(false); ok {
			return n, nil
		}
		if err := b.Fill(); err != nil {
			return 0, err
		}
	}
}

// parse parses a complete response head. The upstream is the application,
// not an attacker, but what it sends goes to the client as it is, so the
// same field grammar applies: a response that breaks it is not passed on.
//
// Its framing rules differ from the request's where RFC 9112 §6.3 makes
// them differ, and where the sender is the proxy's own application rather
// than anyone on the network:
//   - no Content-Length and no Transfer-Encoding: a request has no body,
//     a response's body runs to the connection's end (§6.3 rule 8);
//   - Content-Length twice with the same value: a request is refused
//     (smuggling research used it), a response is read (RFC 9110 §8.6
//     allows it, and applications send it);
//   - a coding other than chunked: 501 for a request (the client's
//     mistake), 502 for a response (the application's);
//   - the status decides as well as the fields: answers to HEAD, 1xx,
//     204 and 304 have no body whatever they say (see bodyless).
//
// Content-Length with Transfer-Encoding is an error either way (400; 502,
// as nginx).
func (h *responseHead) parse(b []byte) error {
	fields := h.fields[:0]
	*h = responseHead{fields: fields, contentLength: -1}
	line, b := wire.NextLine(b)
	if err := h.parseStatusLine(line); err != nil {
		return err
	}
	var seen fieldsSeen
	if err := h.parseFields(b, &seen); err != nil {
		return err
	}
	if seen.teFields > 0 {
		if seen.clFields > 0 {
			// RFC 9112 §6.3: a sign of response splitting, to be handled
			// as an error; nginx answers 502 too.
			return errUpstreamResponse("both Content-Length and Transfer-Encoding")
		}
		if seen.teFields > 1 || !equalFold(trimOWS(seen.te), "chunked") {
			return errUpstreamResponse("a transfer coding other than chunked")
		}
		h.chunked = true
	} else if seen.clFields > 0 {
		n, ok := parseLength(seen.cl)
		if !ok {
			return errUpstreamResponse("invalid Content-Length")
		}
		h.contentLength = n
	}
	// An HTTP/1.0 response with Transfer-Encoding has faulty framing
	// (RFC 9112 §6.3): read it as chunked, then close.
	h.close = seen.close || h.minor == 0 && (!seen.keepAlive || h.chunked)
	if h.connNamed {
		h.dropNamed()
	}
	return nil
}

// parseStatusLine parses HTTP/1.x SP 3DIGIT [SP reason].
func (h *responseHead) parseStatusLine(line []byte) error {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' {
		return errUpstreamResponse("malformed status line")
	}
	h.minor = int(line[7] - '0')
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errUpstreamResponse("malformed status code")
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return errUpstreamResponse("status code below 100")
	}
	if len(line) == 12 {
		return nil
	}
	if line[12] != ' ' {
		return errUpstreamResponse("malformed status line")
	}
	h.reason = line[13:]
	for _, c := range h.reason {
		if !wire.IsValueByte(c) {
			return errUpstreamResponse("invalid character in the reason phrase")
		}
	}
	return nil
}

// parseFields parses the field lines after the status line.
func (h *responseHead) parseFields(b []byte, seen *fieldsSeen) error {
	err := eachField(b, &h.fields, func(f field) error {
		switch f.kind {
		case kindContentLength:
			if seen.clFields > 0 && !bytes.Equal(seen.cl, f.value) {
				return errConflictingLength
			}
			seen.cl = f.value
			seen.clFields++
		case kindTransferEncoding:
			seen.te = f.value
			seen.teFields++
		case kindConnection:
			h.connNamed = connectionTokens(f.value, seen) || h.connNamed
		case kindUpgrade:
			h.upgrade = f.value
		}
		return nil
	})
	if ur, ok := err.(errUpstreamResponse); ok {
		return ur
	}
	if err != nil {
		return errUpstreamResponse(err.Error())
	}
	return nil
}

// errConflictingLength: an upstream's Content-Length fields disagree.
var errConflictingLength = errUpstreamResponse("conflicting Content-Length")

// dropNamed marks the ordinary fields a Connection value names as
// hop-by-hop (RFC 9110 §7.6.1).
func (h *responseHead) dropNamed() {
	markNamedHop(h.fields, func(k fieldKind) bool { return k == kindOther })
}

// bodyless reports whether a response carries no body whatever its
// header says (RFC 9112 §6.3); head says that it answers a HEAD request.
// After such an answer the proxy never reuses the upstream connection:
// nothing frames a body the upstream sends anyway (Debian's gunicorn 20.1
// sends the one a Django view returns for HEAD, in a write after the
// head), so it could arrive after the next request and be read as its
// answer.
func (h *responseHead) bodyless(head bool) bool {
	return head || h.status < 200 || h.status == 204 || h.status == 304
}

var errUpstreamClosed = errors.New("the upstream closed the connection before answering")
