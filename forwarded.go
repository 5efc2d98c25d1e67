package hostguard

import "strings"

// forwardedHosts calls yield with the host= value of every element of a
// Forwarded header value (RFC 7239), quotes removed, in order, and reports
// whether the value is well formed. It stops early when yield returns
// false.
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// Optional whitespace is allowed around "," and ";", not around "=". A
// parameter given twice in one element ("host=a;host=b") is malformed:
// recipients disagree on which one counts. A host value holding a
// quoted-pair ("\") is malformed too, since unescaping it is another point
// where recipients may disagree; no host needs one.
func forwardedHosts(v string, yield func(host string) bool) bool {
	var seen params // parameter names of the current element
	i := 0
	for {
		i = skipOWS(v, i)
		if i == len(v) {
			return true
		}
		switch v[i] {
		case ',':
			seen = params{} // a new element
			i++
			continue
		case ';':
			i++
			continue
		}
		name, val, escaped, next, ok := forwardedPair(v, i)
		if !ok || !seen.add(name) {
			return false
		}
		i = next
		if strings.EqualFold(name, "host") {
			if escaped {
				return false
			}
			if !yield(val) {
				return true
			}
		}
	}
}

// params holds the parameter names of one Forwarded element.
type params struct {
	names [4]string
	n     int
}

// add adds name, and reports false when it was there already, in any case
// (recipients disagree on which of the two counts), or when the element
// holds more than four: RFC 7239 defines four, more is not a real proxy.
func (p *params) add(name string) bool {
	for _, s := range p.names[:p.n] {
		if strings.EqualFold(s, name) {
			return false
		}
	}
	if p.n == len(p.names) {
		return false
	}
	p.names[p.n] = name
	p.n++
	return true
}

// forwardedPair reads the forwarded-pair "token=value" at v[i:] and the
// optional whitespace after it, and returns the name, the value without
// quotes, whether the value held a quoted-pair, and the index after them,
// which is the end of v, a ';' or a ','.
func forwardedPair(v string, i int) (name, val string, escaped bool, next int, ok bool) {
	start := i
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	name = v[start:i]
	if name == "" || i == len(v) || v[i] != '=' {
		return "", "", false, 0, false
	}
	if val, escaped, i, ok = forwardedValue(v, i+1); !ok {
		return "", "", false, 0, false
	}
	i = skipOWS(v, i)
	if i < len(v) && v[i] != ';' && v[i] != ',' {
		return "", "", false, 0, false
	}
	return name, val, escaped, i, true
}

// forwardedValue reads a token or a quoted-string at v[i:] and returns it
// without quotes, whether it held a quoted-pair, and the index after it.
func forwardedValue(v string, i int) (val string, escaped bool, next int, ok bool) {
	if i < len(v) && v[i] == '"' {
		start := i + 1
		for i = start; i < len(v); i++ {
			switch c := v[i]; {
			case c == '"':
				return v[start:i], escaped, i + 1, true
			case c == '\\':
				escaped = true
				i++ // the quoted character
				if i == len(v) || !isQDText(v[i]) && v[i] != '"' && v[i] != '\\' {
					return "", false, 0, false
				}
			case !isQDText(c):
				return "", false, 0, false
			}
		}
		return "", false, 0, false // no closing quote
	}
	start := i
	for i < len(v) && isTchar(v[i]) {
		i++
	}
	if i == start {
		return "", false, 0, false
	}
	return v[start:i], false, i, true
}

func skipOWS(v string, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	return i
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool { return tchar[c] }

// isQDText reports whether c may appear unescaped in a quoted-string
// (RFC 9110 qdtext: HTAB, SP, visible characters but '"' and '\', and
// obs-text).
func isQDText(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c != 0x7f
}

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
