package hostguard

import (
	"math/bits"
	"net/netip"
	"strings"
)

// Limits from RFC 1035 that a well-formed host name respects.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// Reason says why a Host value was rejected. The zero value, [ReasonNone],
// means the value was accepted.
type Reason uint8

// The reasons a Host value is rejected. The first group are structural
// problems of the value itself; the last ones are decisions of the policy.
const (
	ReasonNone                Reason = iota // accepted
	ReasonEmpty                             // no Host header, or an empty one
	ReasonBadChar                           // a character outside [A-Za-z0-9.-] in a name
	ReasonEmptyLabel                        // "a..b", a leading dot, or only a dot
	ReasonLabelTooLong                      // a label over 63 characters
	ReasonNameTooLong                       // a name over 253 characters
	ReasonNumericName                       // last label numeric, but not a dotted-quad IPv4 address
	ReasonBadPort                           // a port that is empty, not decimal or outside 1-65535
	ReasonSecondPort                        // a second ":" after the port
	ReasonBadIPv6                           // a bracketed literal that is not an IPv6 address
	ReasonZone                              // an IPv6 zone id ("%eth0")
	ReasonUnclosedBracket                   // "[" without "]"
	ReasonNotAllowed                        // well formed, but not in the allow list
	ReasonForwardedMalformed                // a trusted proxy's forwarded host is not well formed
	ReasonForwardedNotAllowed               // a trusted proxy's forwarded host is not in the allow list
	numReasons
)

var reasonText = [numReasons]string{
	ReasonNone:                "accepted",
	ReasonEmpty:               "empty host",
	ReasonBadChar:             "invalid character (a name may hold only a-z, 0-9, '.' and '-')",
	ReasonEmptyLabel:          "empty label (\"a..b\", a leading dot or a lone dot)",
	ReasonLabelTooLong:        "label longer than 63 characters",
	ReasonNameTooLong:         "name longer than 253 characters",
	ReasonNumericName:         "numeric name that is not a dotted-quad IPv4 address",
	ReasonBadPort:             "port is not a number from 1 to 65535",
	ReasonSecondPort:          "more than one :port",
	ReasonBadIPv6:             "bracketed literal is not an IPv6 address",
	ReasonZone:                "IPv6 zone id is not allowed in a Host",
	ReasonUnclosedBracket:     "unclosed '['",
	ReasonNotAllowed:          "host not in allow list",
	ReasonForwardedMalformed:  "forwarded host from trusted proxy is malformed",
	ReasonForwardedNotAllowed: "forwarded host from trusted proxy not in allow list",
}

// reasonLabel holds the labels of the reasons: the constant's name after
// "Reason", in snake_case. They never change; the text may.
var reasonLabel = [numReasons]string{
	ReasonNone:                "none",
	ReasonEmpty:               "empty",
	ReasonBadChar:             "bad_char",
	ReasonEmptyLabel:          "empty_label",
	ReasonLabelTooLong:        "label_too_long",
	ReasonNameTooLong:         "name_too_long",
	ReasonNumericName:         "numeric_name",
	ReasonBadPort:             "bad_port",
	ReasonSecondPort:          "second_port",
	ReasonBadIPv6:             "bad_ipv6",
	ReasonZone:                "zone",
	ReasonUnclosedBracket:     "unclosed_bracket",
	ReasonNotAllowed:          "not_allowed",
	ReasonForwardedMalformed:  "forwarded_malformed",
	ReasonForwardedNotAllowed: "forwarded_not_allowed",
}

// String returns a short human-readable description of the reason, for
// logs and messages; its wording may change. [Reason.Label] is the stable
// name.
func (r Reason) String() string {
	if r < numReasons {
		return reasonText[r]
	}
	return "unknown reason"
}

// Label returns the reason's stable name in snake_case ("not_allowed",
// "bad_port"): the constant's name after "Reason". Use it where a program
// reads the reason back, as in a metric label or a log query; it does not
// change from one release to the next, while [Reason.String] may.
func (r Reason) Label() string {
	if r < numReasons {
		return reasonLabel[r]
	}
	return "unknown"
}

// Malformed reports whether the reason is a structural problem of the Host
// value (as opposed to a well-formed host that the policy does not allow).
func (r Reason) Malformed() bool {
	return r >= ReasonBadChar && r <= ReasonUnclosedBracket
}

// Byte classes used by the parser for IPv6 literals and numeric labels;
// names are checked eight bytes at a time instead.
const (
	clsDigit = 1 << 0
	clsHex   = 1 << 1 // 0-9 a-f A-F
	clsDot   = 1 << 2
	clsColon = 1 << 3
)

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = clsDigit | clsHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= clsHex
		t[c-'a'+'A'] |= clsHex
	}
	t['.'] = clsDot
	t[':'] = clsColon
	return t
}()

// host is a parsed, well-formed Host value. It refers to the parsed string,
// so parsing allocates nothing.
type host struct {
	name string     // the name without one trailing dot; empty for IP literals
	addr netip.Addr // the address when the host is an IP literal
	port uint16     // 0 when the value carries no port
}

// isIP reports whether the host is an IP literal.
func (h *host) isIP() bool { return h.addr.IsValid() }

// parse checks s against the Host grammar and splits it into h. It never
// allocates. The grammar is Django's
//
//	^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$
//
// applied after lower-casing, with one trailing dot dropped from names, plus
// the structural rules documented on [Reason]: a bracketed IPv6 literal or
// a name (a dotted-quad IPv4 address is a name by the grammar), then an
// optional port.
func (h *host) parse(s string) Reason {
	if s == "" {
		return ReasonEmpty
	}
	var rest string
	var r Reason
	if s[0] == '[' {
		rest, r = h.parseBracketed(s)
	} else {
		rest, r = h.parseName(s)
	}
	if r != ReasonNone || rest == "" {
		return r
	}
	if rest[0] != ':' {
		return ReasonBadChar // "[::1]x"
	}
	h.port, r = parsePort(rest[1:])
	return r
}

// parseBracketed reads the IPv6 literal "[...]" at the start of s and
// returns what follows it.
func (h *host) parseBracketed(s string) (rest string, r Reason) {
	end := strings.IndexByte(s, ']')
	lit := s[1:]
	if end >= 0 {
		lit = s[1:end]
	}
	for i := 0; i < len(lit); i++ {
		if c := lit[i]; byteClass[c]&(clsHex|clsDot|clsColon) == 0 {
			if c == '%' {
				return "", ReasonZone
			}
			return "", ReasonBadIPv6
		}
	}
	if end < 0 {
		return "", ReasonUnclosedBracket
	}
	// Django requires a colon inside the brackets; ParseAddr then decides
	// whether it is a real IPv6 address.
	a, err := netip.ParseAddr(lit)
	if err != nil || !a.Is6() || strings.IndexByte(lit, ':') < 0 {
		return "", ReasonBadIPv6
	}
	h.addr = a
	return s[end+1:], ReasonNone
}

// parseName reads the name at the start of s, which runs to the end of s
// or to a ':', and returns what follows it. A name whose last label is a
// number must be a dotted-quad IPv4 address, and becomes h.addr.
func (h *host) parseName(s string) (rest string, r Reason) {
	end, start, r := scanName(s)
	if r != ReasonNone {
		return "", r
	}
	rest = s[end:]
	if rest != "" && rest[0] != ':' {
		return "", ReasonBadChar
	}
	if end-start > maxLabelLen {
		return "", ReasonLabelTooLong
	}
	n := end // length of the name without one trailing dot
	last := s[start:end]
	if end == start {
		if end == 0 {
			if rest == "" {
				return "", ReasonEmpty
			}
			return "", ReasonEmptyLabel // ":80"
		}
		// A trailing dot: the last label is the one before it.
		n--
		last = s[strings.LastIndexByte(s[:n], '.')+1 : n]
	}
	if n > maxNameLen {
		return "", ReasonNameTooLong
	}
	if !isNumber(last) {
		h.name = s[:n]
		return rest, ReasonNone
	}
	// Browsers read a name whose last label is a number as an IPv4 address
	// ("010.1" is 8.0.0.1), so only a dotted quad passes, as an address.
	a, k, ok := parseIPv4(s[:n])
	if !ok || k != n {
		return "", ReasonNumericName
	}
	h.addr = netip.AddrFrom4(a)
	return rest, ReasonNone
}

// scanName reads the bytes of s that may form a name (a-z, A-Z, 0-9, '.'
// and '-') eight at a time, checking the labels as it goes. It returns
// where those bytes end and where the last label starts.
func scanName(s string) (end, start int, r Reason) {
	i := 0 // bytes of s known to be name bytes
	for i < len(s) {
		// The last word overlaps the one before it (or is read byte by
		// byte when s is short) and is shifted so that it holds only the
		// bytes not read yet, zero-extended.
		var w uint64
		n := len(s) - i // bytes of s in w
		switch {
		case n >= 8:
			w, n = load64(s, i), 8
		case len(s) >= 8:
			w = load64(s, len(s)-8) >> (64 - 8*n)
		default:
			for j := len(s) - 1; j >= i; j-- {
				w = w<<8 | uint64(s[j])
			}
		}
		good := between(w, 'a'-1, 'z'+1) | between(w, '0'-1, '9'+1) | between(w, '-'-1, '.'+1) | between(w, 'A'-1, 'Z'+1)
		k := n // name bytes at the start of w
		if bad := ^good & msb; bad != 0 {
			k = min(k, bits.TrailingZeros64(bad)/8)
		}
		keep := ^uint64(0) // the first k bytes
		if k < 8 {
			keep = 1<<(8*k) - 1
		}
		for dots := between(w, '.'-1, '.'+1) & keep; dots != 0; dots &= dots - 1 {
			at := i + bits.TrailingZeros64(dots)/8
			if at == start {
				return 0, 0, ReasonEmptyLabel // leading dot or ".."
			}
			if at-start > maxLabelLen {
				return 0, 0, ReasonLabelTooLong
			}
			start = at + 1
		}
		i += k
		if k < 8 {
			break
		}
	}
	return i, start, ReasonNone
}

func isNumber(label string) bool {
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		for i := 2; i < len(label); i++ {
			if byteClass[label[i]]&clsHex == 0 {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if byteClass[label[i]]&clsDigit == 0 {
			return false
		}
	}
	return len(label) > 0
}

// parseIPv4 reads a dotted-quad IPv4 address at the start of s as
// netip.ParseAddr accepts it (four decimal fields of 0-255, no leading
// zeros) and returns it with the number of bytes it took.
func parseIPv4(s string) (a [4]byte, n int, ok bool) {
	i := 0
	for k := range 4 {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return a, 0, false
			}
			i++
		}
		start, v := i, 0
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if d := i - start; d == 0 || d > 3 || v > 255 || d > 1 && s[start] == '0' {
			return a, 0, false
		}
		a[k] = byte(v)
	}
	return a, i, true
}

// parsePort parses the decimal digits after the colon. Leading zeros are
// allowed, as in Django's grammar.
func parsePort(s string) (uint16, Reason) {
	v := uint64(0)
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			if s[i] == ':' {
				return 0, ReasonSecondPort
			}
			return 0, ReasonBadPort
		}
		// Saturate instead of overflowing on a long run of digits.
		v = min(v*10+uint64(d), 1<<20)
	}
	if v == 0 || v > 65535 {
		return 0, ReasonBadPort // also the empty port
	}
	return uint16(v), ReasonNone
}

// Word-at-a-time helpers (Bit Twiddling Hacks: "determine if a word has a
// byte between m and n").
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 reads s[i:i+8] as a little-endian word; the compiler makes it one
// load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// between sets the high bit of every byte b of w with lo < b < hi, for
// 0 <= lo <= 127 and 0 <= hi <= 128; bytes of 0x80 and above never match.
func between(w uint64, lo, hi uint64) uint64 {
	return (lsb*(127+hi) - w&(lsb*127)) & ^w & (w&(lsb*127) + lsb*(127-lo)) & msb
}
