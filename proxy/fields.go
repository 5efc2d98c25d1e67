package proxy

import "bytes"

// What the proxy does with a header field on its way to the upstream or
// back to the client, decided once per field from its name.
type fieldKind uint8

const (
	kindOther            fieldKind = iota // passed on as it is
	kindHost                              // replaced by the host the list allowed
	kindContentLength                     // framing: the proxy frames the body itself
	kindTransferEncoding                  // framing
	kindConnection                        // hop-by-hop, and names more hop-by-hop fields
	kindUpgrade                           // hop-by-hop; kept for a WebSocket upgrade
	kindExpect                            // answered by the proxy (100-continue)
	kindHop                               // other hop-by-hop fields (Keep-Alive, TE, Trailer, Proxy-*)
	kindXFF                               // X-Forwarded-For
	kindXFH                               // X-Forwarded-Host
	kindXFP                               // X-Forwarded-Proto
	kindForwarded                         // Forwarded (RFC 7239)
	kindForwarding                        // other client-address headers: X-Forwarded-*, X-Real-IP
	kindUnderscore                        // a name with '_': dropped unless Options.KeepUnderscoreHeaders
	kindUserAgent                         // passed on; read for the rejection log
	// A name with '_' that reads as a forwarding field with '-' for '_'
	// (X_Forwarded_Host): dropped from every peer, trusted or not. A
	// trusted proxy forwards its client's fields as they are (an ALB
	// passes underscore names by default), and the list never checks a
	// host in one; a CGI or WSGI server reads it as the real field.
	kindDisguised
	// Fields some stacks read as the request's host (X-Host,
	// X-Original-Host): dropped from every peer. The list cannot check
	// them, and a trusted proxy passes on what its client sent.
	kindHostAlias
)

// forwardingKind reports whether k is a header that carries what a proxy
// learned about the client (its address, the Host and scheme it used):
// never passed on from a peer that is not a trusted proxy.
func forwardingKind(k fieldKind) bool {
	return k >= kindXFF && k <= kindForwarding
}

// classify returns the kind of a field name. A name with an underscore is
// classified as its hyphenated spelling would be, and is kindUnderscore
// only when that spelling is an ordinary field: "X_Forwarded_For" is a
// forwarding header to every CGI or WSGI server (both spellings become
// HTTP_X_FORWARDED_FOR), and is dropped whatever the options say.
func classify(name []byte) fieldKind {
	if bytes.IndexByte(name, '_') < 0 {
		return classifyName(name)
	}
	var tmp [64]byte
	if len(name) > len(tmp) {
		return kindUnderscore
	}
	n := copy(tmp[:], name)
	for i := range n {
		if tmp[i] == '_' {
			tmp[i] = '-'
		}
	}
	if k := classifyName(tmp[:n]); k != kindOther && k != kindUserAgent {
		// A framing, hop-by-hop, forwarding or host name in disguise:
		// always dropped (kindHop never reaches the upstream).
		if forwardingKind(k) || k == kindHostAlias {
			return kindDisguised
		}
		return kindHop
	}
	return kindUnderscore
}

// namedFields are the field names the proxy treats specially, in lower
// case, with their kind; X-Forwarded-* is matched by prefix.
var namedFields = [...]struct {
	name string
	kind fieldKind
}{
	{"te", kindHop},
	{"host", kindHost},
	{"expect", kindExpect},
	{"upgrade", kindUpgrade},
	{"trailer", kindHop},
	{"forwarded", kindForwarded},
	{"x-real-ip", kindForwarding},
	{"x-host", kindHostAlias},
	{"x-original-host", kindHostAlias},
	{"connection", kindConnection},
	{"keep-alive", kindHop},
	{"user-agent", kindUserAgent},
	{"content-length", kindContentLength},
	{"proxy-connection", kindHop},
	{"transfer-encoding", kindTransferEncoding},
	{"proxy-authenticate", kindHop},
	{"proxy-authorization", kindHop},
}

// fieldsByLen indexes namedFields by the length of the name, so a name is
// compared with the one or two of the same length only. Built once; never
// written after.
var fieldsByLen = func() (t [20][]uint8) {
	for i, f := range namedFields {
		t[len(f.name)] = append(t[len(f.name)], uint8(i))
	}
	return t
}()

const xForwarded = "x-forwarded-"

// classifyName classifies a name without underscores.
func classifyName(name []byte) fieldKind {
	if len(name) < len(fieldsByLen) {
		for _, i := range fieldsByLen[len(name)] {
			if f := &namedFields[i]; equalFold(name, f.name) {
				return f.kind
			}
		}
	}
	if len(name) <= len(xForwarded) || !equalFold(name[:len(xForwarded)], xForwarded) {
		return kindOther
	}
	switch rest := name[len(xForwarded):]; {
	case equalFold(rest, "for"):
		return kindXFF
	case equalFold(rest, "host"):
		return kindXFH
	case equalFold(rest, "proto"):
		return kindXFP
	}
	return kindForwarding
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring
// the case of b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes reports whether a and b are equal ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// tokens calls yield with every element of a comma-separated list value
// (RFC 9110 §5.6.1), whitespace trimmed, empty elements skipped.
func tokens(v []byte, yield func([]byte) bool) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		if elem = trimOWS(elem); len(elem) > 0 && !yield(elem) {
			return
		}
	}
}

// trimOWS removes spaces and tabs from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
