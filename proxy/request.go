package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/hostguard/hostguard/proxy/internal/wire"
)

// The request parser. It accepts what RFC 9112 requires a server to accept
// and rejects the shapes that request-smuggling research has shown to split
// the views of two parsers, each with its own status:
//
//   - The request line is method SP request-target SP HTTP-version, single
//     spaces. The method is upper-case letters, '-' and '_' (as nginx); the
//     target has no control characters or spaces; the version is HTTP/1.0
//     or HTTP/1.1 (505 for any other well-formed version, 400 otherwise).
//   - Lines end in CRLF or a bare LF (RFC 9112 §2.2, as nginx); a CR
//     anywhere else is an error. Empty lines before the request line are
//     skipped.
//   - A field name is an RFC 9110 token directly followed by ':'; a value
//     holds no control character but HTAB; a line folded onto the next
//     (obs-fold) is rejected (RFC 9112 §5.2).
//   - Exactly one Host in HTTP/1.1 (RFC 9112 §3.2); at most one
//     Content-Length, of at most 18 digits; Transfer-Encoding only in
//     HTTP/1.1, only once, only "chunked" (501 for any other coding, as
//     nginx), never with Content-Length (RFC 9112 §6.1, §6.3).
//   - CONNECT is refused (400, as nginx), TRACE too (405, as nginx); the
//     target is origin-form ("/path") or absolute-form with http or https;
//     "*" and authority-form are refused.

// requestHead is a parsed request line and header block. Its slices point
// into the connection's read buffer and are valid until that buffer is read
// again.
type requestHead struct {
	method    []byte
	target    []byte // as sent
	minor     int    // HTTP/1.minor
	absolute  bool   // absolute-form: the authority replaces Host
	authority []byte // of an absolute-form target, as sent
	path      []byte // the origin-form target; for absolute-form what follows the authority
	// slash says that "/" must be sent before path (an absolute-form
	// target with no path: "http://a" or "http://a?q").
	slash bool

	fields []field

	host          []byte // the Host field's value
	hostFields    int
	contentLength int64 // -1: none
	chunked       bool
	expect        bool // Expect: 100-continue
	close         bool // the client's connection ends with this request
	upgrade       bool // a WebSocket upgrade
	connNamed     bool // Connection names fields other than close, keep-alive, upgrade
	forwarding    bool // some client-address field is present
	userAgent     []byte
}

// field is one header field line.
type field struct {
	name, value []byte
	kind        fieldKind
}

// maxFields bounds the header fields of one request or response.
const maxFields = 256

// hasBody reports whether the request carries a body.
func (h *requestHead) hasBody() bool { return h.chunked || h.contentLength > 0 }

// checkedHost is the value the allow list decides on: the authority of an
// absolute-form target as sent (RFC 9112 §3.2.2: it replaces Host), else
// the Host field's value.
func (h *requestHead) checkedHost() []byte {
	if h.absolute {
		return h.authority
	}
	return h.host
}

// checkedPath is the path without the query, for Guard's exempt paths.
func (h *requestHead) checkedPath() []byte {
	p := h.path
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if h.slash {
		return []byte("/")
	}
	return p
}

// parse parses a complete head (as found by readHead) into h.
func (h *requestHead) parse(b []byte) *clientError {
	fields := h.fields[:0]
	*h = requestHead{fields: fields, contentLength: -1}
	line, b := wire.NextLine(b)
	if err := h.parseRequestLine(line); err != nil {
		return err
	}
	var seen fieldsSeen
	if err := h.parseFields(b, &seen); err != nil {
		return err
	}
	if err := h.framing(&seen); err != nil {
		return err
	}
	if err := h.connection(&seen); err != nil {
		return err
	}
	if h.connNamed {
		h.dropNamed()
	}
	return nil
}

// fieldsSeen is what the field lines said about framing and the
// connection, for the checks that need all of them.
type fieldsSeen struct {
	close, keepAlive, upgrade bool   // Connection tokens
	upgradeValue              []byte // the Upgrade field
	expectOther               bool   // an expectation other than 100-continue
	teFields, clFields        int
	te, cl                    []byte // the last Transfer-Encoding and Content-Length
}

// parseFields parses the field lines after the request line.
func (h *requestHead) parseFields(b []byte, seen *fieldsSeen) *clientError {
	err := eachField(b, &h.fields, func(f field) error {
		h.note(f, seen)
		return nil
	})
	switch err {
	case nil:
		return nil
	case wire.ErrObsFold:
		return errObsFold
	case wire.ErrFieldName:
		return errFieldName
	case wire.ErrFieldValue:
		return errFieldValue
	}
	return errTooManyFields
}

// errFieldCount: more fields than maxFields. With the field-line grammar's
// errors (wire.ErrObsFold, ErrFieldName, ErrFieldValue) the request parser
// answers it with its client error, the response parser with 502.
var errFieldCount = errors.New("more than 256 header fields")

// eachField parses the field lines of b, up to the empty line that ends a
// head, calls note with each and appends it to fields. A folded line
// (obs-fold), a malformed field and more than maxFields fields are errors,
// as is what note returns.
func eachField(b []byte, fields *[]field, note func(field) error) error {
	for {
		var line []byte
		line, b = wire.NextLine(b)
		if len(line) == 0 {
			return nil
		}
		f, err := parseField(line)
		if err != nil {
			return err
		}
		if len(*fields) == maxFields {
			return errFieldCount
		}
		if err := note(f); err != nil {
			return err
		}
		*fields = append(*fields, f)
	}
}

// note records what one field says.
func (h *requestHead) note(f field, seen *fieldsSeen) {
	switch f.kind {
	case kindHost:
		h.host = f.value
		h.hostFields++
	case kindContentLength:
		seen.cl = f.value
		seen.clFields++
	case kindTransferEncoding:
		seen.te = f.value
		seen.teFields++
	case kindConnection:
		h.connNamed = connectionTokens(f.value, seen) || h.connNamed
	case kindUpgrade:
		seen.upgradeValue = f.value
	case kindExpect:
		tokens(f.value, func(t []byte) bool {
			if equalFold(t, "100-continue") {
				h.expect = true
			} else {
				seen.expectOther = true
			}
			return true
		})
	case kindUserAgent:
		h.userAgent = f.value
	default:
		if forwardingKind(f.kind) {
			h.forwarding = true
		}
	}
}

// connectionTokens records the close, keep-alive and upgrade tokens of a
// Connection value, and reports whether it names other fields.
func connectionTokens(v []byte, seen *fieldsSeen) (namesFields bool) {
	tokens(v, func(t []byte) bool {
		switch {
		case equalFold(t, "close"):
			seen.close = true
		case equalFold(t, "keep-alive"):
			seen.keepAlive = true
		case equalFold(t, "upgrade"):
			seen.upgrade = true
		default:
			namesFields = true
		}
		return true
	})
	return namesFields
}

// framing checks the Host and the body's framing (RFC 9112 §6.3): one
// Host, at most one Content-Length or one Transfer-Encoding of "chunked",
// never both.
func (h *requestHead) framing(seen *fieldsSeen) *clientError {
	switch {
	case h.hostFields > 1:
		return errManyHosts
	case h.hostFields == 0 && h.minor == 1:
		return errNoHost
	case seen.clFields > 1:
		return errManyLengths
	case seen.teFields > 0 && h.minor == 0:
		return errTransferEncoding10
	case seen.teFields > 1:
		return errManyCodings
	case seen.teFields == 1 && seen.clFields == 1:
		return errLengthAndCoding
	}
	if seen.clFields == 1 {
		n, ok := parseLength(seen.cl)
		if !ok {
			return errBadLength
		}
		h.contentLength = n
	}
	if seen.teFields == 1 {
		if !equalFold(trimOWS(seen.te), "chunked") {
			return errUnknownCoding
		}
		h.chunked = true
	}
	return nil
}

// connection decides persistence, expectations and upgrades.
func (h *requestHead) connection(seen *fieldsSeen) *clientError {
	if h.minor == 0 {
		h.close = seen.close || !seen.keepAlive
		h.expect = false // RFC 9110 §10.1.1: ignored from HTTP/1.0
		return nil
	}
	h.close = seen.close
	if seen.expectOther {
		return errExpectation
	}
	// RFC 6455: a WebSocket handshake is a GET with "Upgrade: websocket"
	// named by Connection. Any other Upgrade (h2c first of all, whose
	// tunnel would carry unchecked HTTP/2 requests) is dropped and the
	// request served as a plain one.
	h.upgrade = seen.upgrade && equalFold(trimOWS(seen.upgradeValue), "websocket") && string(h.method) == http.MethodGet
	return nil
}

// parseRequestLine parses method SP request-target SP HTTP-version.
func (h *requestHead) parseRequestLine(line []byte) *clientError {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errRequestLine
	}
	h.method, line = line[:sp], line[sp+1:]
	if !validMethod(h.method) {
		return errMethod
	}
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errRequestLine
	}
	h.target, line = line[:sp], line[sp+1:]
	if !validTarget(h.target) {
		return errTarget
	}
	minor, err := parseVersion(line)
	if err != nil {
		return err
	}
	h.minor = minor
	switch string(h.method) {
	case http.MethodConnect:
		return errConnect
	case http.MethodTrace:
		return errTrace
	}
	return h.splitTarget()
}

// validMethod: upper-case letters, '-' and '_', at most 32 of them.
func validMethod(m []byte) bool {
	if len(m) > 32 {
		return false
	}
	for _, c := range m {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// validTarget: no control bytes, spaces or DEL; in the path, every '%'
// starts an escape of two hex digits (nginx refuses the rest with 400; Go's
// server, and with it many upstreams, cannot parse them), and none encodes
// NUL, which nginx refuses too: backends that decode paths into C strings
// cut them there. The query is passed on as it is.
func validTarget(t []byte) bool {
	inPath := true
	for i, c := range t {
		if c <= ' ' || c == 0x7f {
			return false
		}
		switch {
		case c == '?':
			inPath = false
		case c != '%':
		case i+2 < len(t) && t[i+1] == '0' && t[i+2] == '0':
			return false
		case inPath && (i+2 >= len(t) || notHex(t[i+1]) || notHex(t[i+2])):
			return false
		}
	}
	return true
}

// notHex reports whether c is not a hex digit.
func notHex(c byte) bool {
	return !('0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f')
}

// parseVersion parses "HTTP/1.0" or "HTTP/1.1" and returns the minor
// version; another well-formed version is unsupported (505).
func parseVersion(v []byte) (int, *clientError) {
	if len(v) != len("HTTP/1.1") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, errVersion
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, errVersionUnsupported
	}
	return int(v[7] - '0'), nil
}

// splitTarget splits the request target into path, and for the absolute
// form ("http://host/path") the authority. Other forms ("*", the
// authority form, other schemes) are refused.
func (h *requestHead) splitTarget() *clientError {
	switch t := h.target; {
	case t[0] == '/':
		h.path = t
	case hasPrefixFold(t, "http://"), hasPrefixFold(t, "https://"):
		rest := t[bytes.IndexByte(t, ':')+3:]
		end := bytes.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		h.absolute, h.authority, h.path = true, rest[:end], rest[end:]
		h.slash = len(h.path) == 0 || h.path[0] != '/'
	default:
		return errTargetForm
	}
	return nil
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFold(b[:len(prefix)], prefix)
}

// parseField parses one field line (wire.FieldLine) and classifies its
// name.
func parseField(line []byte) (field, error) {
	name, value, err := wire.FieldLine(line)
	if err != nil {
		return field{}, err
	}
	return field{name: name, value: value, kind: classify(name)}, nil
}

// parseLength parses a Content-Length value: 1 to 18 decimal digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// dropNamed marks the fields that a Connection value names as hop-by-hop
// (RFC 9110 §7.6.1). It runs only when Connection names any. Framing and
// the Host are the proxy's own and are never dropped this way.
func (h *requestHead) dropNamed() {
	markNamedHop(h.fields, func(k fieldKind) bool {
		return k != kindConnection && k != kindHost && k != kindContentLength && k != kindTransferEncoding
	})
}

// markNamedHop marks as kindHop every field that a Connection field names,
// when its kind may be dropped.
func markNamedHop(fields []field, droppable func(fieldKind) bool) {
	for i := range fields {
		if fields[i].kind != kindConnection {
			continue
		}
		tokens(fields[i].value, func(t []byte) bool {
			for j := range fields {
				if f := &fields[j]; droppable(f.kind) && equalFoldBytes(f.name, t) {
					f.kind = kindHop
				}
			}
			return true
		})
	}
}

// A clientError is a request the proxy refuses because of its form. Its
// text names the rule that was broken and never repeats the client's
// bytes.
type clientError struct {
	status int
	kind   string // the label of hostguard_client_errors_total
	text   string
}

func (e *clientError) Error() string { return e.text }

// body is the text of the answer to a request refused for its form, the
// same from both server forms.
func (e *clientError) body() string {
	return strconv.Itoa(e.status) + " " + http.StatusText(e.status) + ": " + e.text + "\n"
}

// The kinds of client errors, as counted in metrics.
const (
	kindMalformed   = "malformed"   // a head or body that breaks RFC 9110/9112
	kindUnsupported = "unsupported" // a valid request the proxy does not serve
	kindTooLarge    = "too_large"   // a head over the limit
	kindTimeout     = "timeout"     // a head or body that stopped arriving
	kindTLS         = "tls"         // a failed TLS handshake, or plain HTTP to the HTTPS port
)

func badRequest(text string) *clientError {
	return &clientError{http.StatusBadRequest, kindMalformed, text}
}

var (
	errRequestLine        = badRequest("malformed request line")
	errMethod             = badRequest("invalid method")
	errTarget             = badRequest("invalid character in the request target (a control character, a space or %00)")
	errTargetForm         = badRequest("the request target is neither a path nor an http(s) URL")
	errVersion            = badRequest("malformed HTTP version")
	errObsFold            = badRequest("a header line folded onto the next (obs-fold)")
	errFieldName          = badRequest("invalid header field name")
	errFieldValue         = badRequest("invalid character in a header field value")
	errManyHosts          = badRequest("more than one Host header")
	errNoHost             = badRequest("an HTTP/1.1 request without Host")
	errManyLengths        = badRequest("more than one Content-Length")
	errBadLength          = badRequest("Content-Length is not a decimal number of at most 18 digits")
	errManyCodings        = badRequest("more than one Transfer-Encoding")
	errTransferEncoding10 = badRequest("Transfer-Encoding in an HTTP/1.0 request")
	errLengthAndCoding    = badRequest("both Content-Length and Transfer-Encoding")
	errConnect            = badRequest("CONNECT is not served by a reverse proxy")
	errIncomplete         = badRequest("the connection ended inside a request")

	errVersionUnsupported = &clientError{http.StatusHTTPVersionNotSupported, kindUnsupported, "only HTTP/1.0 and HTTP/1.1 are served"}
	errTrace              = &clientError{http.StatusMethodNotAllowed, kindUnsupported, "TRACE is not served"}
	errUnknownCoding      = &clientError{http.StatusNotImplemented, kindUnsupported, "a transfer coding other than chunked"}
	errExpectation        = &clientError{http.StatusExpectationFailed, kindUnsupported, "an expectation other than 100-continue"}
	errTooManyFields      = &clientError{http.StatusRequestHeaderFieldsTooLarge, kindTooLarge, "more than 256 header fields"}
	errHeadTooLarge       = &clientError{http.StatusRequestHeaderFieldsTooLarge, kindTooLarge, "request header larger than the limit"}
	errHeadTimeout        = &clientError{http.StatusRequestTimeout, kindTimeout, "the request header stopped arriving"}
	errPlainHTTP          = &clientError{http.StatusBadRequest, kindTLS, "plain HTTP to the HTTPS port"}
	errHandshake          = &clientError{0, kindTLS, "the TLS handshake failed"}
	errBodyTimeout        = &clientError{http.StatusRequestTimeout, kindTimeout, "the request body stopped arriving"}

	// Errors in a chunked request body.
	errChunkSize    = badRequest("malformed chunk size")
	errChunkLine    = badRequest("malformed chunk line (chunk lines end in CRLF)")
	errChunkData    = badRequest("chunk data longer than its size")
	errTrailer      = badRequest("malformed trailer section")
	errTrailerField = badRequest("a trailer field that only a header may carry (Host, framing, forwarding)")
)

// asClientError maps an error from reading a request body to the client's
// error; ok is false for errors that are not the client's (the connection
// broke: nobody is left to answer).
func asClientError(err error) (*clientError, bool) {
	switch e := err.(type) {
	case *clientError:
		return e, true
	}
	switch {
	case isTimeout(err):
		return errBodyTimeout, true
	case err == io.ErrUnexpectedEOF:
		return errIncomplete, true // answered, should the client still read
	case err == wire.ErrBareLF, err == wire.ErrBareCR, err == wire.ErrLineTooLong, err == wire.ErrChunkLine:
		return errChunkLine, true
	case err == wire.ErrChunkSize:
		return errChunkSize, true
	case err == wire.ErrChunkData:
		return errChunkData, true
	case err == wire.ErrTrailer:
		return errTrailer, true
	}
	return nil, false
}
