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
	var seen [4]string // parameter names of the current element, lower case
	n := 0             // how many of seen are set
	i := 0
	for {
		i = skipOWS(v, i)
		if i == len(v) {
			return true
		}
		switch v[i] {
		case ',':
			n = 0 // a new element
			i++
			continue
		case ';':
			i++
			continue
		}
		// forwarded-pair
		start := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		name := v[start:i]
		if name == "" || i == len(v) || v[i] != '=' {
			return false
		}
		i++
		var val string
		var escaped, ok bool
		if val, escaped, i, ok = forwardedValue(v, i); !ok {
			return false
		}
		for _, s := range seen[:n] {
			if strings.EqualFold(s, name) {
				return false // a parameter given twice in one element
			}
		}
		if n < len(seen) {
			seen[n] = name
			n++
		} else {
			return false // RFC 7239 defines four parameters; more is not a real proxy
		}
		i = skipOWS(v, i)
		if i < len(v) && v[i] != ';' && v[i] != ',' {
			return false
		}
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
